r"""Few-pass sums of functions of softmax probabilities, with hand-written backward passes.

Overlap losses and soft confusion matrices need, per row or per class, sums of an
elementwise function of p = softmax(z) plus the target column p_y. Written with autograd each
elementwise step is a full pass over the (K, C) matrix forward and another backward; here the
forward is a softmax and two or three passes, and the backward uses the softmax Jacobian in
closed form: for an upstream gradient G = dL/dp,

.. math:: \frac{\partial L}{\partial z_{ij}} = P_{ij} - p_{ij}\sum_c P_{ic},\qquad P = p \odot G.

Both functions also return p_y so that a caller can add any function of the target column
with ordinary autograd on (K,) vectors; its gradient is folded into the same pass. The backward
passes are first order only (``once_differentiable``) and are checked against autograd with
float64 ``gradcheck`` in ``tests/functional/test_softmax_fast_paths.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from .row_blocks import Grads, Needs, RowKernel, Rows, run_rows


def _add_target_column(grad: Tensor, y: Tensor, values: Tensor) -> Tensor:
    return grad.scatter_add_(1, y.unsqueeze(1), values.unsqueeze(1))


class _RationalSum(RowKernel):
    """s_i = sum_c d/(d + g) with d = k (p (1 - p)^alpha)^m, and p_y; block by block, nothing
    (K, C) kept: the backward recomputes p and d."""

    def __init__(self, k: float, m: int, g: float, alpha: float) -> None:
        self.k, self.m, self.g, self.alpha = k, m, g, alpha

    def _terms(self, z: Tensor) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """(p, 1 - p clamped or None, e = d / (d + g), d + g)."""
        p = torch.softmax(z, dim=1)
        om = None
        v = p
        if self.alpha != 0.0:
            # 1 - p is exact below 1/2; rows with a class at or above 1/2 are recomputed by the
            # caller in log space, the clamp only keeps their discarded values finite.
            om = (1.0 - p).clamp_(min=0.5)
            v = torch.log(om).mul_(self.alpha).exp_().mul_(p)
        d = v * v if self.m == 2 else v.clone() if v is p else v
        if self.k != 1.0:
            d.mul_(self.k)
        den = d + self.g
        return p, om, d.div_(den), den

    def forward_rows(self, inputs: Rows) -> tuple[Rows, Rows]:
        z, y = inputs
        p, _, e, _ = self._terms(z)
        dominant = p.amax(dim=1) >= 0.5 if z.shape[1] else torch.zeros_like(y, dtype=torch.bool)
        return (e.sum(1), p.gather(1, y.unsqueeze(1)).squeeze(1), dominant), ()

    def backward_rows(self, inputs: Rows, saved: Rows, grads: Rows, needs: Needs) -> Grads:
        z, y = inputs
        g_sum, g_py = grads[0], grads[1]
        p, om, e, den = self._terms(z)
        # P = p f'(p) = g m e w / den with w = 1 - alpha p / (1 - p) (1 without alpha).
        big_p = e.div_(den).mul_((self.g * self.m) * g_sum.unsqueeze(1))
        if om is not None:
            big_p.mul_(torch.add(om, p, alpha=-self.alpha).div_(om))
        py = p.gather(1, y.unsqueeze(1)).squeeze(1)
        target_part = g_py * py
        total = big_p.sum(1) + target_part
        grad = big_p.addcmul_(p, total.unsqueeze(1), value=-1.0)
        return _add_target_column(grad, y, target_part), None


def softmax_rational_sum(
    z: Tensor, y: Tensor, *, k: float, m: int, g: float, alpha: float = 0.0
) -> tuple[Tensor, Tensor, Tensor]:
    """(sum_c d_c/(d_c + g), p_y, dominant) per row of (K, C) logits, d = k (p(1-p)^alpha)^m.

    ``dominant`` marks rows with a class probability >= 1/2: with alpha > 0 their values are
    not accurate (1 - p is not computed in log space) and must be recomputed by the caller.
    """
    total, py, dominant = run_rows(_RationalSum(float(k), int(m), float(g), float(alpha)), z, y)
    return total, py, dominant


class _ColumnStats(torch.autograd.Function):
    """colsum_c = sum_i u(p_ic) over the rows, and p_y; u is p, p^2 or sigmoid(L (p - t))."""

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, y: Tensor, transform: str, amp: float, center: float
    ) -> tuple[Tensor, Tensor]:
        p = torch.softmax(z, dim=1)
        if transform == "identity":
            u = p
        elif transform == "square":
            u = p * p
        else:
            u = (p - center).mul_(amp).sigmoid_()
        ctx.constants = (transform, amp)
        ctx.save_for_backward(p, y, u)
        return u.sum(0), p.gather(1, y.unsqueeze(1)).squeeze(1)

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(
        ctx: Any, g_col: Tensor, g_py: Tensor
    ) -> tuple[Tensor | None, ...]:
        p, y, u = ctx.saved_tensors
        transform, amp = ctx.constants
        # P = p * du/dp * g_col (broadcast over rows); the p_y term is added at the target.
        if transform == "identity":
            big_p = p * g_col
        elif transform == "square":
            big_p = torch.mul(p, p).mul_(2.0 * g_col)
        else:
            big_p = torch.addcmul(u, u, u, value=-1.0).mul_(p).mul_(amp * g_col)
        py = p.gather(1, y.unsqueeze(1)).squeeze(1)
        target_part = g_py * py
        total = big_p.sum(1) + target_part
        grad = big_p.addcmul_(p, total.unsqueeze(1), value=-1.0)
        return _add_target_column(grad, y, target_part), None, None, None, None


def softmax_column_stats(
    z: Tensor, y: Tensor, *, transform: str, amp: float = 1.0, center: float = 0.5
) -> tuple[Tensor, Tensor]:
    """(sum over rows of u(p) (C,), p_y (K,)) for (K, C) logits, p = softmax(z).

    transform: ``"identity"`` (u = p), ``"square"`` (u = p²) or ``"amp-sigmoid"``
    (u = sigmoid(amp (p - center)), AnyLoss's amplified sigmoid).
    """
    out: tuple[Tensor, Tensor] = _ColumnStats.apply(z, y, transform, float(amp), float(center))  # type: ignore[no-untyped-call]
    return out
