"""The power form ``(1 - p^s) / s`` shared by comp-sum (``s = τ - 1``) and GCE (``s = q``), and
comp-sum's per-row loss, whose gradient stays exact when ``p_y^s`` overflows (τ < 1)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from ..._core.logit_loss import RowLoss
from ..._core.validation import values_checkable
from .softmax_row_stats import target_log_prob

# Below this |s| the power form is replaced by its s → 0 limit, -log p_y.
_POWER_CE_SWITCH = 1e-6


def power_log_loss(log_p: Tensor, s: float) -> Tensor:
    r"""``(1 - p^s) / s`` from ``log p``, computed as ``-expm1(s·log p) / s``.

    The shared core of comp-sum (``s = τ - 1``) and GCE (``s = q``); it is accurate for small
    ``|s|`` and equals ``-log p`` (cross-entropy) when ``|s| < 1e-6``. For ``s < 0`` the value
    grows like ``p^s`` and overflows to ``inf`` once ``|s·log p|`` exceeds the dtype's range
    (about 88 in float32): that is the true size of the loss, not a numerical accident.
    """
    if abs(s) < _POWER_CE_SWITCH:
        return -log_p
    return -torch.expm1(s * log_p) / s


class _NegativePowerLoss(torch.autograd.Function):
    """``(1 - p_y^s) / s`` per row for ``s < 0`` (comp-sum with τ < 1), whose gradient
    ``p_y^s·(p - e_y)`` is formed in log space.

    Through :func:`target_log_prob` the chain rule would multiply ``p_y^s`` (``inf`` once
    ``|s·log p_y|`` passes the dtype's range, e.g. ±1e4 logits at τ = 0) by ``p_k`` (0 there):
    ``inf·0 = NaN``. Here each entry is one exponential, ``p_y^s·p_k = exp(s·log p_y + log p_k)``
    and, for the target, ``-p_y^s·(1 - p_y) = -exp(s·log p_y + log(1 - p_y))``: every entry
    is its exact value, ``±inf`` only where that value itself exceeds the dtype (the loss is
    then ``inf`` too), 0 where it underflows, never NaN. Not twice differentiable.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, s: float, loss_name: str) -> Tensor:
        ctx.loss_name = loss_name  # named by first_order_only's error
        log_p = torch.log_softmax(z, dim=1)
        idx = y.unsqueeze(1)
        log_p_y = log_p.gather(1, idx).squeeze(1)
        ctx.save_for_backward(log_p, idx)
        ctx.s = s
        return -torch.expm1(s * log_p_y) / s

    @staticmethod
    @first_order_only
    @once_differentiable  # hand-written first-order backward: double backward raises
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None, None]:
        log_p, idx = ctx.saved_tensors
        s = float(ctx.s)
        log_p_y = log_p.gather(1, idx).squeeze(1)
        log_scale = s * log_p_y  # log p_y^s
        coef = torch.exp(log_scale) * g
        if values_checkable(log_p, coef):
            # Rows whose factor p_y^s·g is finite: p·factor, two passes like cross-entropy's.
            grad = torch.exp(log_p).mul_(coef.unsqueeze(1))
            bad = ~torch.isfinite(coef)
            if bool(bad.any()):  # the rest one exponential per entry, in log space
                rows = bad.nonzero().squeeze(1)
                grad[rows] = (torch.exp(log_p[rows] + log_scale[rows].unsqueeze(1))
                              .mul_(g[rows].unsqueeze(1)))
        else:  # traced or meta: every row in log space
            grad = torch.add(log_p, log_scale.unsqueeze(1)).exp_().mul_(g.unsqueeze(1))
        # log(1 - p_y), accurate on both sides of p_y = 1/2 (-inf where p_y rounds to 1).
        log_rest = torch.where(log_p_y < -math.log(2.0), torch.log1p(-torch.exp(log_p_y)),
                               torch.log(-torch.expm1(log_p_y)))
        target = torch.exp(log_scale + log_rest).mul_(g).neg_()
        grad.scatter_(1, idx, target.unsqueeze(1))
        return grad, None, None, None


def comp_sum_rows(tau: float, loss_name: str = "comp_sum") -> RowLoss:
    """Comp-sum's per-row loss ``(1 - p_y^{τ-1}) / (τ - 1)`` on (K, C) logits and (K,) indices
    (``-log p_y`` when ``|τ - 1| < 1e-6``); ``loss_name`` is the function a refused second
    derivative names."""
    s = float(tau) - 1.0

    def rows(z: Tensor, y: Tensor) -> Tensor:
        if s < -_POWER_CE_SWITCH:  # τ < 1: p_y^s can overflow; its gradient is kept exact
            return _NegativePowerLoss.apply(z, y, s, loss_name)  # type: ignore[no-untyped-call,no-any-return]
        return power_log_loss(target_log_prob(z, y, loss_name), s)

    return rows
