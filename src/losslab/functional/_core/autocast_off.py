"""Computing a loss's matrix products outside ``torch.autocast``.

Under autocast PyTorch casts matmuls (``@``, ``linalg.vecdot``, ``cdist``'s Gram form) to
bfloat16/float16, while losses are computed in float32 or wider — as PyTorch's own losses are
under autocast (docs/conventions.md). A kernel whose value feeds a loss directly runs its
products through :func:`outside_autocast`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def outside_autocast(compute: Callable[..., Tensor], x: Tensor, *args: Any) -> Tensor:
    """``compute(x, *args)`` with autocast disabled on ``x``'s device when it is enabled there;
    outside autocast, a plain call (the same ops, the same numbers)."""
    device = x.device.type
    if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
        with torch.autocast(device, enabled=False):
            return compute(x, *args)
    return compute(x, *args)
