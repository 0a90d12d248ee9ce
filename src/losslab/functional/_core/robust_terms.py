"""Pieces that the noise-robust losses (RCE, SCE, the Active-Passive pairs, NCE+MAE) share:
the clipped ``log 0`` of the reverse cross-entropy, ``1 - p_y`` and the checks of their mixing
weights."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..._core.validation import check_float32_number, check_number

# log 0 in the reverse cross-entropy, as in the official SCE and APL code (one-hot clamped to
# [1e-4, 1]). The SCE paper reports A = -4 instead.
DEFAULT_LOG_ZERO = math.log(1e-4)


def one_minus_p_y(log_p_y: Tensor) -> Tensor:
    """1 - p_y from log p_y, accurate when p_y is close to 1."""
    return -torch.expm1(log_p_y)


def check_log_zero(fn: str, log_zero: float) -> None:
    check_float32_number(fn, "log_zero", check_number(fn, "log_zero", log_zero, high=0.0,
                                                      high_open=True))


def check_weight_factor(fn: str, name: str, value: float) -> None:
    """A mixing weight ≥ 0 that float32 can hold (1e300 would become inf and inf·0 = NaN)."""
    check_float32_number(fn, name, check_number(fn, name, value, low=0.0))
