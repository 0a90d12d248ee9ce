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

from .._core.autograd import first_order_only


def _add_target_column(grad: Tensor, y: Tensor, values: Tensor) -> Tensor:
    return grad.scatter_add_(1, y.unsqueeze(1), values.unsqueeze(1))


class _RationalSum(torch.autograd.Function):
    """s_i = sum_c d/(d + g) with d = k (p (1 - p)^alpha)^m, and p_y."""

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, y: Tensor, k: float, m: int, g: float, alpha: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        p = torch.softmax(z, dim=1)
        dominant = p.amax(dim=1) >= 0.5 if z.shape[1] else torch.zeros_like(y, dtype=torch.bool)
        om = None
        v = p
        if alpha != 0.0:
            # 1 - p is exact below 1/2; rows with a class at or above 1/2 are recomputed by the
            # caller in log space, the clamp only keeps their discarded values finite.
            om = (1.0 - p).clamp_(min=0.5)
            v = torch.log(om).mul_(alpha).exp_().mul_(p)
        # In place wherever the tensor is our own (p itself is saved for the backward).
        owned = om is not None
        d = v
        if m == 2:
            d = v.mul_(v) if owned else v * v
            owned = True
        if k != 1.0:
            d = d.mul_(k) if owned else d * k
            owned = True
        den = d + g
        e = d.div_(den) if owned else d / den
        ctx.constants = (m, g, alpha)
        ctx.save_for_backward(p, y, e, den, om)
        ctx.mark_non_differentiable(dominant)
        return e.sum(1), p.gather(1, y.unsqueeze(1)).squeeze(1), dominant

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(
        ctx: Any, g_sum: Tensor, g_py: Tensor, _: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        p, y, e, den, om = ctx.saved_tensors
        m, g, alpha = ctx.constants
        # P = p f'(p) = g m e w / den with w = 1 - alpha p / (1 - p) (1 without alpha).
        big_p = torch.div(e, den).mul_((g * m) * g_sum.unsqueeze(1))
        if om is not None:
            big_p.mul_(torch.add(om, p, alpha=-alpha).div_(om))
        py = p.gather(1, y.unsqueeze(1)).squeeze(1)
        target_part = g_py * py
        total = big_p.sum(1) + target_part
        grad = big_p.addcmul_(p, total.unsqueeze(1), value=-1.0)
        return _add_target_column(grad, y, target_part), None, None, None, None, None


def softmax_rational_sum(
    z: Tensor, y: Tensor, *, k: float, m: int, g: float, alpha: float = 0.0
) -> tuple[Tensor, Tensor, Tensor]:
    """(sum_c d_c/(d_c + g), p_y, dominant) per row of (K, C) logits, d = k (p(1-p)^alpha)^m.

    ``dominant`` marks rows with a class probability >= 1/2: with alpha > 0 their values are
    not accurate (1 - p is not computed in log space) and must be recomputed by the caller.
    """
    out: tuple[Tensor, Tensor, Tensor] = _RationalSum.apply(  # type: ignore[no-untyped-call]
        z, y, float(k), int(m), float(g), float(alpha)
    )
    return out


class _ColumnStats(torch.autograd.Function):
    """colsum_c = sum_i u(p_ic) over the rows, and p_y; u is p, p^2 or sigmoid(L (p - 1/2))."""

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, y: Tensor, transform: str, amp: float
    ) -> tuple[Tensor, Tensor]:
        p = torch.softmax(z, dim=1)
        if transform == "identity":
            u = p
        elif transform == "square":
            u = p * p
        else:
            u = (p - 0.5).mul_(amp).sigmoid_()
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
        return _add_target_column(grad, y, target_part), None, None, None


def softmax_column_stats(
    z: Tensor, y: Tensor, *, transform: str, amp: float = 1.0
) -> tuple[Tensor, Tensor]:
    """(sum over rows of u(p) (C,), p_y (K,)) for (K, C) logits, p = softmax(z).

    transform: ``"identity"`` (u = p), ``"square"`` (u = p²) or ``"amp-sigmoid"``
    (u = sigmoid(amp (p - 1/2)), AnyLoss's amplified sigmoid).
    """
    out: tuple[Tensor, Tensor] = _ColumnStats.apply(z, y, transform, float(amp))  # type: ignore[no-untyped-call]
    return out
