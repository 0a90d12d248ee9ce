"""Vocabulary-major backward of the fused linear cross-entropy (half-precision inputs).

The row-major strategies accumulate ∂W over row blocks, so they keep a (V, D) accumulator for
the whole backward; for bf16/fp16 weights it must be fp32 (adding block products in half
precision drifts), which costs V·D·4 bytes — 512 MiB at V = 131072, D = 1024, as much as the
bf16 logits the fused loss exists to avoid. Here the loops are swapped, as in Cut
Cross-Entropy's backward: the outer loop walks tiles of ``_VOCAB_TILE`` vocabulary rows, the
inner loop row tiles; each (rows × vocabulary) tile recomputes its logits, forms the
gradient from the forward's LSE, adds G·W_t into an fp32 ∂h and G_tᵀ·h into an fp32
accumulator of *that vocabulary tile only*, which is rounded once into the half-precision ∂W
when the tile is done. Extra memory: the ∂h accumulator in the compute precision (N·D·4
bytes; for fp32 inputs it is the returned ∂h itself), one (rows × tile) logits buffer (plus a
half-precision copy and a soft-cap buffer where those apply), one (tile × D) accumulator and,
when rows are ignored, shifted or sorted, a gathered copy of the kept hidden rows — no
O(V·D) or O(N·V) term. The tiles' rows come from the memory budget
(:mod:`.strategy`); with ``chunk_size`` (which sizes the forward sweep's row blocks) they
hold 8 MiB of compute-precision logits.

Cost: four GEMMs (the forward's LSE pass plus logits, ∂h, ∂W here) instead of three; in
half precision the GEMMs run at bf16 speed and the fp32 ∂W GEMM of the row-major path is
gone. The GEMM products are rounded to the input precision before the fp32 accumulation
(CPU PyTorch has no bf16×bf16→fp32 GEMM), as ``hidden @ weight.T`` rounds its product.

With ``filter_eps`` a (rows × tile) tile whose every gradient entry is below the threshold
and that holds no row's target is skipped (Cut Cross-Entropy's tile filtering); the error
bound of :mod:`losslab.fused.filtering` holds as stated there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.block_sizes import CPU_VOCAB_TILE, LOGITS_TILE_BYTES
from .blocks import (
    BlockBuffers,
    block_logits,
    columns_in,
    gradient_inplace,
    probabilities_inplace,
)
from .chunk_config import ChunkConfig
from .filtering import entry_bound

_VOCAB_TILE = CPU_VOCAB_TILE  # vocabulary rows per tile (losslab._core.block_sizes)
_TILE_BYTES = LOGITS_TILE_BYTES  # compute-precision logits of one (rows × vocabulary) tile


def vocab_major_grads(
    h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, rows: Tensor | None,
    cfg: ChunkConfig, lse: Tensor, row_weight: Tensor, grads: tuple[bool, bool, bool],
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """(∂h, ∂W, ∂b) of Σ_i w_i ℓ_i given the global per-kept-row LSE (rows: kept row indices
    into ``h`` or None). ∂h has h's shape and dtype, ∂W the weight's; ∂b is in the compute
    precision (the caller converts it)."""
    want_h, want_w, want_b = grads
    opts = cfg.opts
    k, dim = y.shape[0], h.shape[1]
    vocab = weight.shape[0]
    compute = torch.promote_types(h.dtype, torch.float32)
    tile = min(_VOCAB_TILE, max(vocab, 1))
    step = cfg.tile_rows or _TILE_BYTES // (tile * torch.finfo(compute).bits // 8)
    step = max(1, min(k, step))
    buffers: dict[int, BlockBuffers] = {}  # by tile width (the last tile may be narrower)
    dh32 = torch.zeros(k, dim, dtype=compute, device=h.device) if want_h else None
    dW = torch.empty_like(weight) if want_w else None
    db = torch.zeros(vocab, dtype=compute, device=h.device) if want_b else None
    acc = torch.empty(tile, dim, dtype=compute, device=h.device) if want_w else None
    # Half-precision GEMM operands: the gradient block is formed with row weights scaled to
    # at most 1 and the products are scaled back in the fp32 accumulators, so a large upstream
    # gradient (a loss scaler's 65536) cannot overflow fp16 before the GEMM.
    weight_scale = 1.0
    if weight.dtype in (torch.float16, torch.bfloat16) and row_weight.numel():
        weight_scale = float(row_weight.abs().max()) or 1.0
    inv_scale = 1.0 / weight_scale
    row_blocks = [(s, min(s + step, k)) for s in range(0, k, step)]
    hs = [h[s:e] if rows is None else h.index_select(0, rows[s:e]) for s, e in row_blocks]
    for v0 in range(0, vocab, tile):
        v1 = min(v0 + tile, vocab)
        w_t = weight[v0:v1]
        b_t = None if bias is None else bias[v0:v1]
        if acc is not None:
            acc.zero_()
        buf = buffers.get(v1 - v0)
        if buf is None:
            buf = buffers[v1 - v0] = BlockBuffers(step, v1 - v0, compute=compute,
                                                  storage=h.dtype, device=h.device,
                                                  softcap=opts.softcap is not None)
        for (s, e), h_c in zip(row_blocks, hs, strict=True):
            z = block_logits(buf, h_c, w_t, b_t, opts.softcap)
            lse_c = lse[s:e]
            probabilities_inplace(z, lse_c)
            in_tile = columns_in(y[s:e], cfg.vocab_start + v0, v1 - v0)
            skip = cfg.filter_eps is not None and _skippable(z, lse_c, in_tile, cfg)
            if skip and db is None:
                continue
            g = gradient_inplace(z, buf, lse_c, row_weight[s:e] * inv_scale, in_tile, opts)
            if db is not None:
                db[v0:v1] += g.sum(dim=0) * weight_scale  # exact even for skipped tiles
            if skip:
                continue
            g_low = g if g.dtype == weight.dtype else g.to(weight.dtype)
            if dh32 is not None:
                dh32[s:e].add_(g_low @ w_t, alpha=weight_scale)
            if acc is not None:
                acc[: v1 - v0].add_(g_low.t() @ h_c, alpha=weight_scale)
        if dW is not None and acc is not None:
            dW[v0:v1] = acc[: v1 - v0]
    dh = None
    if dh32 is not None:
        if rows is None:
            dh = dh32 if dh32.dtype == h.dtype else dh32.to(h.dtype)
        else:
            dh = torch.zeros_like(h).index_copy_(0, rows, dh32.to(h.dtype))
    return dh, dW, db


def _skippable(p: Tensor, lse: Tensor, in_tile: Tensor, cfg: ChunkConfig) -> bool:
    """True when no row targets the tile and every gradient entry of the probability tile
    is below filter_eps (the conservative bound of :func:`.filtering.entry_bound`)."""
    if bool((in_tile >= 0).any()):
        return False
    eps = float(cfg.filter_eps)  # type: ignore[arg-type]
    return p.numel() == 0 or float(entry_bound(p.amax(), lse, cfg.opts)) < eps
