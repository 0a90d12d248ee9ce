"""Named buffers reused by every block of one call.

Block-wise kernels (the fused linear cross-entropy, the Plackett–Luce loss) work on a few
hundred KiB to a few MiB per block. Allocating those temporaries afresh for each block is
not free on the CPU: glibc serves them from the top of its heap and, once a block frees
more than its trim threshold there, returns the memory to the OS, so the next block
page-faults it back in (the measured cost is in ``docs/benchmarks.md``, "Measurements behind
implementation choices"). A :class:`Scratch` allocates each named buffer once, at its largest
size, and hands out views of it, which ``out=`` arguments and in-place operations then fill.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class Scratch:
    """Flat buffers by name, each viewed at the shape a block asks for."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._flat: dict[str, Tensor] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """A contiguous ``shape`` view of the buffer ``name``. It grows (with a quarter to
        spare) when a block needs more, and is replaced when the dtype changes; a view
        handed out earlier stays valid but no longer aliases the new buffer."""
        need = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None or flat.numel() < need or flat.dtype != dtype:
            flat = torch.empty(need + need // 4, dtype=dtype, device=self.device)
            self._flat[name] = flat
        return flat[:need].view(shape)
