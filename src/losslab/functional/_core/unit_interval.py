"""Checking that a tensor holds probabilities: every value in [0, 1].

The test is ``~(0 <= v <= 1)`` rather than ``(v < 0) | (v > 1)``, which lets NaN through (every
comparison with NaN is false). The message reports NaN when there is one, otherwise the range
of values received. Like every check that reads values, it is skipped on meta tensors and
while ``torch.compile`` traces (:func:`losslab._core.validation.values_checkable`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.validation import values_checkable


def check_unit_interval(fn: str, name: str, values: Tensor, *, requirement: str) -> None:
    """Raise ``ValueError`` unless every value of ``values`` lies in [0, 1].

    The message reads ``"{fn}: {name} must {requirement}, got NaN"`` or ``"..., got range
    [lo, hi]"``; ``requirement`` says what was expected in the caller's terms, e.g.
    ``"be probabilities in [0, 1]"``. An empty tensor passes.
    """
    if not values_checkable(values) or values.numel() == 0:
        return
    if bool(((values >= 0) & (values <= 1)).all()):
        return
    if bool(torch.isnan(values).any()):
        got = "NaN"
    else:
        got = f"range [{values.min().item()}, {values.max().item()}]"
    raise ValueError(f"{fn}: {name} must {requirement}, got {got}")
