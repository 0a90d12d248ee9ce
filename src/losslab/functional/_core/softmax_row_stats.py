"""Per-row statistics of ``log_softmax`` with one hand-written backward pass: ``log p_y``,
``Σ_k log p_k`` and ``Σ_k (1 - p_k^q)``, the three numbers that cross-entropy's relatives (GCE,
comp-sum, MAE, focal, NCE, NGCE) are row-level functions of."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from .row_blocks import row_blocks


class _SoftmaxRowStats(torch.autograd.Function):
    """Per-row ``(log p_y, Σ_k log p_k, Σ_k (1 - p_k^q))`` of ``log p = log_softmax(z)``.

    Every loss in this family is a row-level function of these three numbers, and each has
    a gradient of the form ``a·e_y + b·p + c·1 + d·p^q``; computing it by hand from the saved
    log-probabilities costs one or two passes over (K, C) instead of the half dozen that the
    generic autograd graph (gather, logsumexp, one-hot scatter, accumulation) takes. The last
    two outputs are zeros unless requested (``want_sum`` / ``q``). Not twice differentiable.
    """

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, y: Tensor, want_sum: bool, q: float | None, loss_name: str
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.loss_name = loss_name  # named by first_order_only's error
        log_p = torch.log_softmax(z, dim=1)
        idx = y.unsqueeze(1)
        log_p_y = log_p.gather(1, idx).squeeze(1)
        sum_log = log_p.sum(dim=1) if want_sum else torch.zeros_like(log_p_y)
        # Σ (1 - p_k^q) summed directly (not C - Σ p^q, which cancels for small q).
        gap_sum = torch.zeros_like(log_p_y)
        if q is not None:
            for rows in row_blocks(log_p):
                gap_sum[rows] = log_p[rows].mul(q).expm1_().sum(dim=1).neg_()
        ctx.save_for_backward(log_p, idx)
        ctx.q = q
        return log_p_y, sum_log, gap_sum

    @staticmethod
    @first_order_only
    @once_differentiable  # hand-written first-order backward: double backward raises
    def backward(
        ctx: Any, g_y: Tensor | None, g_sum: Tensor | None, g_gap: Tensor | None
    ) -> tuple[Tensor | None, None, None, None, None]:
        log_p, idx = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        num_classes = log_p.shape[1]
        # d log p_y = e_y - p;  d Σ log p_k = 1 - C·p;  d Σ(1 - p_k^q) = -q·p^q + q·(Σ p^q)·p.
        coef = torch.zeros_like(log_p[:, 0])
        if g_y is not None:
            coef = coef - g_y
        if g_sum is not None:
            coef = coef - num_classes * g_sum
        if g_gap is None or ctx.q is None:  # (torch.compile passes a gradient for every output)
            grad = torch.exp(log_p).mul_(coef.unsqueeze(1))
        else:
            q = float(ctx.q)
            grad = torch.empty_like(log_p)
            for rows in row_blocks(log_p):
                power = log_p[rows].mul(q).exp_()
                c = coef[rows] + q * power.sum(dim=1) * g_gap[rows]
                block = torch.exp(log_p[rows], out=grad[rows]).mul_(c.unsqueeze(1))
                block.addcmul_(power, (-q * g_gap[rows]).unsqueeze(1))
        if g_sum is not None:
            grad.add_(g_sum.unsqueeze(1))
        if g_y is not None:
            grad.scatter_add_(1, idx, g_y.unsqueeze(1))
        return grad, None, None, None, None


def target_log_prob(z: Tensor, y: Tensor, loss_name: str) -> Tensor:
    """log p_y of (K, C) logits, with the fused backward ``g·(e_y - p)``; ``loss_name`` is the
    public loss function that a refused second derivative names."""
    out: tuple[Tensor, Tensor, Tensor] = _SoftmaxRowStats.apply(  # type: ignore[no-untyped-call]
        z, y, False, None, loss_name
    )
    return out[0]


def softmax_row_stats(
    z: Tensor, y: Tensor, loss_name: str, *, want_sum: bool = False, q: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(log p_y, Σ_k log p_k, Σ_k (1 - p_k^q))`` of (K, C) logits, each (K,); the last two
    are zeros unless ``want_sum`` / ``q`` are given. ``loss_name``: as in
    :func:`target_log_prob`."""
    out: tuple[Tensor, Tensor, Tensor] = _SoftmaxRowStats.apply(  # type: ignore[no-untyped-call]
        z, y, want_sum, q, loss_name
    )
    return out[0], out[1], out[2]
