"""Per-block arithmetic of the fused linear cross-entropy, shared by every strategy.

A *block* is ``c`` rows of hidden states times the whole (local) vocabulary: the (c, V)
logits live in one preallocated compute-precision buffer that is overwritten in place
(logits → probabilities → gradient), so a block never allocates anything of size c·V.

Per-row loss (z' = softcap(z), ε = label smoothing, c_z = z-loss coefficient, V = vocabulary):

    ℓ = LSE(z') − (1−ε)·z'_y − (ε/V)·Σ_j z'_j + c_z·LSE(z')²

and its gradient with respect to z' is ``p·(1 + 2·c_z·LSE) − (1−ε)·onehot(y) − ε/V``,
multiplied by ``1 − tanh²(z/c)`` when soft-capping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LossOptions:
    """The loss's options after validation (shared by all strategies)."""

    label_smoothing: float
    z_loss: float
    softcap: float | None
    vocab_total: int  # V of the full vocabulary (differs from the local shard under TP)


class BlockBuffers:
    """Scratch space reused by every block: the (c, V) logits buffer, a second one only when
    soft-capping (it keeps tanh(z/c) for the gradient), and a low-precision GEMM buffer only
    for half-precision inputs."""

    def __init__(self, rows: int, vocab: int, *, compute: torch.dtype, storage: torch.dtype,
                 device: torch.device, softcap: bool) -> None:
        self.z = torch.empty(rows, vocab, dtype=compute, device=device)
        self.t = torch.empty(rows, vocab, dtype=compute, device=device) if softcap else None
        self.low = (
            torch.empty(rows, vocab, dtype=storage, device=device) if storage != compute else None
        )


def block_logits(buf: BlockBuffers, h: Tensor, weight: Tensor, bias: Tensor | None,
                 softcap: float | None) -> Tensor:
    """Write z' = softcap(h @ Wᵀ + b) for the c rows of ``h`` into the buffer; return the view.

    Half-precision inputs use the half-precision GEMM (it accumulates in fp32 inside BLAS and
    rounds once, as ``hidden @ weight.T`` does) and are then widened to the fp32 buffer.
    """
    c = h.shape[0]
    z = buf.z[:c]
    if buf.low is None:
        if bias is None:
            torch.mm(h, weight.t(), out=z)
        else:
            torch.addmm(bias, h, weight.t(), out=z)
    else:
        low = buf.low[:c]
        if bias is None:
            torch.mm(h, weight.t(), out=low)
        else:
            torch.addmm(bias, h, weight.t(), out=low)
        z.copy_(low)
    if softcap is not None:
        t = buf.t[:c]  # type: ignore[index]
        torch.div(z, softcap, out=t)
        t.tanh_()
        torch.mul(t, softcap, out=z)
    return z


def softmax_inplace_lse(z: Tensor) -> Tensor:
    """Overwrite z with softmax(z) row-wise and return the row log-sum-exp.

    The fused softmax kernel is the cheapest pass over the block; the LSE is recovered
    from the row maximum m and the largest probability p_max = exp(m − LSE) ≥ 1/V, whose
    logarithm is well conditioned (unlike log p_y, which can underflow).
    """
    m = z.amax(dim=1)
    torch._softmax(z, 1, False, out=z)
    return m - z.amax(dim=1).log()


def probabilities_inplace(z: Tensor, lse: Tensor) -> Tensor:
    """Overwrite z' with p = exp(z' − LSE) given the (global) row LSE."""
    return z.sub_(lse.unsqueeze(1)).exp_()


def block_loss(lse: Tensor, z_target: Tensor, z_sum: Tensor | None, opts: LossOptions) -> Tensor:
    """ℓ = LSE − (1−ε) z'_y − (ε/V) Σ z' + c_z LSE² for each row."""
    eps = opts.label_smoothing
    loss = lse - (1.0 - eps) * z_target if eps > 0.0 else lse - z_target
    if eps > 0.0 and z_sum is not None:
        loss = loss - (eps / opts.vocab_total) * z_sum
    if opts.z_loss > 0.0:
        loss = loss + opts.z_loss * lse.square()
    return loss


def gradient_inplace(p: Tensor, buf: BlockBuffers, lse: Tensor, row_weight: Tensor,
                     local_target: Tensor | None, opts: LossOptions) -> Tensor:
    """Turn probabilities p (c, V) into ∂(Σ_i w_i ℓ_i)/∂z in place.

    ``row_weight`` is w_i (upstream gradient × reduction scale); ``local_target`` holds the
    column of y_i in this block's vocabulary, or −1 when another rank owns it.
    """
    eps = opts.label_smoothing
    scale = row_weight if opts.z_loss == 0.0 else row_weight * (1.0 + 2.0 * opts.z_loss * lse)
    p.mul_(scale.unsqueeze(1))
    if eps > 0.0:
        p.sub_((eps / opts.vocab_total) * row_weight.unsqueeze(1))
    if local_target is not None:
        owned = local_target >= 0
        rows = torch.arange(p.shape[0], device=p.device)
        if bool(owned.all()):
            p[rows, local_target] -= (1.0 - eps) * row_weight
        else:
            p[rows[owned], local_target[owned]] -= (1.0 - eps) * row_weight[owned]
    if opts.softcap is not None:
        t = buf.t[: p.shape[0]]  # type: ignore[index]
        # d softcap(z)/dz = 1 − tanh²(z/c); t is consumed (squared in place).
        t.mul_(t)
        p.addcmul_(p, t, value=-1.0)
    return p
