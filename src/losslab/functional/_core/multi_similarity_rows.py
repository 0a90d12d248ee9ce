"""Fused forward/backward of the Multi-Similarity per-anchor loss on a similarity matrix.

Autograd through the masked log-sum-exp form keeps about a dozen (N, M) temporaries alive.
Its gradient has a closed form (the MS paper's pair weights), so this Function keeps one
(N, M) matrix ``G`` and returns ``dL/dS = G * upstream``:

    dℓ_i/dS_ik = -e^{z⁺_ik} / (1 + Σ_k' e^{z⁺_ik'})   for a kept positive, z⁺ = α(λ - S)
    dℓ_i/dS_ik = +e^{z⁻_ik} / (1 + Σ_k' e^{z⁻_ik'})   for a kept negative, z⁻ = β(S - λ)

The tests compare it with autograd through the plain formula (``gradcheck``) and with
pytorch-metric-learning.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only


def _side(z: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise ``log(1 + Σ_mask e^z)`` and the weights ``e^z / (1 + Σ e^z)`` (0 off-mask)."""
    z = z.masked_fill_(~mask, float("-inf"))
    shift = z.amax(dim=1, keepdim=True).clamp_min_(0.0) if z.shape[1] else z.new_zeros(z.shape[0], 1)
    weights = z.sub_(shift).exp_()
    total = weights.sum(dim=1, keepdim=True).add_(torch.exp(-shift))
    return (shift + total.log()).squeeze(1), weights.div_(total)


class MultiSimilarityRows(torch.autograd.Function):
    """Per-anchor MS loss (N,) from similarities (N, M) and kept-pair masks."""

    @staticmethod
    def forward(
        ctx: Any, sim: Tensor, positive: Tensor, negative: Tensor, alpha: float, beta: float, lam: float
    ) -> Tensor:
        with torch.no_grad():
            pos_loss, pos_w = _side((lam - sim).mul_(alpha), positive)
            neg_loss, neg_w = _side((sim - lam).mul_(beta), negative)
            # Disjoint masks: one matrix holds both weights with their signs.
            grad_sim = neg_w.sub_(pos_w)
        ctx.save_for_backward(grad_sim)
        return pos_loss / alpha + neg_loss / beta

    @staticmethod
    @first_order_only
    @once_differentiable  # hand-written first-order backward: double backward raises
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        (grad_sim,) = ctx.saved_tensors
        return grad_sim * grads[0].unsqueeze(1), None, None, None, None, None


def multi_similarity_rows(
    sim: Tensor, positive: Tensor, negative: Tensor, alpha: float, beta: float, lam: float
) -> Tensor:
    out: Tensor = MultiSimilarityRows.apply(sim, positive, negative, alpha, beta, lam)  # type: ignore[no-untyped-call]
    return out
