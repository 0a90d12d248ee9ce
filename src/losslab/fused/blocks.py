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

from .._core.block_sizes import CPU_VOCAB_TILE
from .._core.scratch import Scratch


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
    for half-precision inputs.

    Blocks are stored vocabulary-major: a (c, V) block is the transpose of a contiguous (V, c)
    array, because the logits GEMM ``W @ h_cᵀ`` streams the large W as the left operand and
    runs at full-batch speed (``h_c @ Wᵀ`` re-packs W on every block and is ~20 % slower on
    CPU BLAS); the backward GEMMs take the transposed block at no cost.
    """

    def __init__(self, rows: int, vocab: int, *, compute: torch.dtype, storage: torch.dtype,
                 device: torch.device, softcap: bool) -> None:
        self.vocab = vocab
        n = rows * vocab
        self.z = torch.empty(n, dtype=compute, device=device)
        self.t = torch.empty(n, dtype=compute, device=device) if softcap else None
        self.low = torch.empty(n, dtype=storage, device=device) if storage != compute else None
        #: Named buffers for the gathered operands of filtered blocks, reused across blocks.
        self.scratch = Scratch(device)

    def block(self, flat: Tensor, rows: int) -> Tensor:
        """The (rows, V) view of a buffer; its transpose (V, rows) is contiguous."""
        return flat[: rows * self.vocab].view(self.vocab, rows).t()


# Rows of W per logits GEMM on the CPU: CPU_VOCAB_TILE (losslab._core.block_sizes). With ~80
# rows per block the (V, c) output is 10 MiB; in tiles of 1024 vocabulary rows output and
# operand tiles stay in cache and the GEMM runs at the full-batch speed (docs/benchmarks.md).


def vocab_tiles(weight: Tensor) -> list[slice]:
    """Slices of the vocabulary (rows of W) for one logits GEMM each (one on GPUs)."""
    vocab = weight.shape[0]
    if weight.device.type != "cpu":
        return [slice(0, vocab)]
    return [slice(i, i + CPU_VOCAB_TILE) for i in range(0, vocab, CPU_VOCAB_TILE)] or [slice(0, 0)]


def hidden_grad_product(g: Tensor, weight: Tensor, out: Tensor, room: Tensor | None) -> Tensor:
    """out = g @ W for a (c, V) gradient block (the ∂h GEMM), written into ``out`` (c, D).

    With several CPU threads the (c × D) output of this GEMM is too small for BLAS to split
    well (two threads: 19.3 ms per 80-row block at V=32768, D=512, against 14.5 ms per 80
    rows in the full-batch GEMM). Splitting K = V into one batch entry per thread instead
    (``bmm``, one GEMM per thread) and summing the partial products runs at 16.6 ms. The
    partial products need threads × c rows of D: ``room`` is the ∂h rows from this block's
    first one to the end, whose first c rows are ``out`` and whose later rows belong to blocks
    not computed yet, so the split costs no memory. Where fewer rows are left (the last
    blocks), without ``room`` (gathered rows), on one thread, in half precision (the partials
    would be rounded) or with a non-contiguous W: plain mm.
    """
    parts = torch.get_num_threads() if g.device.type == "cpu" else 1
    vocab = weight.shape[0]
    size = vocab // max(parts, 1)
    rows, dim = out.shape
    plain = (parts < 2 or size == 0 or g.dtype != weight.dtype
             or g.dtype in (torch.bfloat16, torch.float16)
             or not weight.is_contiguous() or not g.t().is_contiguous())
    if plain or room is None or room.shape[0] < parts * rows or not room.is_contiguous():
        return torch.mm(g, weight, out=out)
    head = parts * size
    products = room[: parts * rows].view(parts, rows, dim)  # products[0] is out
    g_parts = g.t()[:head].view(parts, size, rows).transpose(1, 2)
    torch.bmm(g_parts, weight[:head].view(parts, size, dim), out=products)
    for i in range(1, parts):
        out.add_(products[i])
    if head < vocab:
        out.addmm_(g[:, head:], weight[head:])
    return out


def block_logits(buf: BlockBuffers, h: Tensor, weight: Tensor, bias: Tensor | None,
                 softcap: float | None) -> Tensor:
    """Write z' = softcap(h @ Wᵀ + b) for the c rows of ``h`` into the buffer; return the
    (c, V) view.

    Half-precision inputs use the half-precision GEMM (it accumulates in fp32 inside BLAS and
    rounds once, as ``hidden @ weight.T`` does) and are then widened to the fp32 buffer.
    """
    c = h.shape[0]
    z = buf.block(buf.z, c)
    zt = z.t()
    out = zt if buf.low is None else buf.block(buf.low, c).t()
    for t in vocab_tiles(weight):
        if bias is None:
            torch.mm(weight[t], h.t(), out=out[t])
        else:
            torch.addmm(bias[t].unsqueeze(1), weight[t], h.t(), out=out[t])
    if buf.low is not None:
        zt.copy_(out)
    if softcap is not None:
        tt = buf.block(buf.t, c).t()  # type: ignore[arg-type]
        torch.div(zt, softcap, out=tt)
        tt.tanh_()
        torch.mul(tt, softcap, out=zt)
    return z


def softmax_inplace_lse(z: Tensor, anchor_logit: Tensor, anchor_col: Tensor,
                            want_p: bool) -> tuple[Tensor, Tensor | None]:
    """Overwrite the block with softmax (``want_p``) or log-softmax; return the row LSE and
    the rows (indices, or None) whose LSE could not be recovered and must be recomputed.

    The LSE is recovered at one column j per row (the target's, whose logit z_j was read
    before): LSE = z_j − log p_j. With ``want_p`` the block goes straight to probabilities
    with the fused softmax kernel (one exp per entry; log-softmax followed by ``exp_`` costs
    twice the exponentials and one more pass over the block, measured ~4 % of the whole
    fwd+bwd at 32k vocabularies). p_j keeps full relative precision while it is a normal
    number; rows where it underflows (z_j more than ~87 nats below the LSE in fp32, ~708 in
    fp64) are returned for :func:`relog_block`. Without ``want_p`` the log-softmax is exact in
    the log domain and nothing is returned.
    """
    zt = z.t()
    if not want_p:
        torch._log_softmax(zt, 0, False, out=zt)
        return anchor_logit - z.gather(1, anchor_col.unsqueeze(1)).squeeze(1), None
    torch._softmax(zt, 0, False, out=zt)
    p_anchor = z.gather(1, anchor_col.unsqueeze(1)).squeeze(1)
    ok = p_anchor >= torch.finfo(p_anchor.dtype).tiny
    lse = anchor_logit - p_anchor.log()
    if bool(ok.all()):
        return lse, None
    return lse, torch.nonzero(~ok).squeeze(1)


def relog_block(buf: BlockBuffers, h: Tensor, weight: Tensor, bias: Tensor | None,
                softcap: float | None, anchor_logit: Tensor, anchor_col: Tensor) -> Tensor:
    """The rare path after :func:`softmax_inplace_lse` reported rows whose anchor probability
    underflowed (their LSE cannot be recovered from the probabilities): recompute the block's
    logits into the same buffer, take the log-softmax (exact in the log domain) for every
    row's LSE, and exponentiate in place to probabilities again. One more logits GEMM for
    this block, no memory beyond the block's own buffer. Returns the rows' LSE."""
    z = block_logits(buf, h, weight, bias, softcap)
    lse, _ = softmax_inplace_lse(z, anchor_logit, anchor_col, want_p=False)
    z.exp_()
    return lse


def columns_in(y: Tensor, start: int, width: int) -> Tensor:
    """Each target's column within the vocabulary slice [start, start + width), or −1 where
    the slice does not hold it (another rank's shard, another vocabulary tile)."""
    local = y - start
    return torch.where((local >= 0) & (local < width), local, -1)


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
        softcap_chain_inplace(p, buf.block(buf.t, p.shape[0]))  # type: ignore[arg-type]
    return p


def softcap_chain_inplace(g: Tensor, tanh: Tensor) -> Tensor:
    """Turn ∂ℓ/∂z' (c, V) into ∂ℓ/∂z in place: d softcap(z)/dz = 1 − tanh²(z/c), with
    tanh(z/c) as kept by :func:`block_logits` (``buf.t``); ``tanh`` is consumed (squared in
    place)."""
    tanh.mul_(tanh)
    return g.addcmul_(g, tanh, value=-1.0)
