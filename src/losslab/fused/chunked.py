"""Chunked CPU/GPU path of the fused linear cross-entropy: a custom ``autograd.Function``.

Rows (tokens) are processed in blocks of ``c`` rows against the whole vocabulary; the (c, V)
logits of a block live in one reused buffer, so nothing of size N·V is ever allocated.

Two strategies:

* ``"forward_grads"`` — the forward pass computes the loss *and* the gradients (three GEMMs
  per block: logits, ∂h, ∂W) and keeps ∂h, ∂W, ∂b for backward, which only multiplies them
  by the scalar upstream gradient. Used for ``mean``/``sum`` when gradients are needed.
* ``"recompute"`` — the forward keeps only the per-row LSE (one GEMM); backward recomputes
  the logits (four GEMMs in all, as in Cut Cross-Entropy). Needed for ``reduction="none"``
  (the per-row upstream gradient is only known in backward), for vocabulary parallelism
  (the global LSE is known only after all blocks), and when asked for.
* ``"vocab_major"`` — the same forward; the backward walks vocabulary tiles in the outer loop
  (:mod:`.vocab_major`), so no (V, D) fp32 accumulator exists: the default for bf16/fp16.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import parallel
from .blocks import (
    BlockBuffers,
    LossOptions,
    block_logits,
    block_loss,
    columns_in,
    gradient_inplace,
    hidden_grad_product,
    probabilities_inplace,
    relog_block,
    softmax_inplace_lse,
)
from .chunk_config import ChunkConfig as ChunkConfig  # also imported from here by api, triton_kernels
from .filtering import active_columns
from .vocab_major import vocab_major_grads


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _run_blocks(
    h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, rows: Tensor | None,
    cfg: ChunkConfig, *, lse: Tensor | None, row_weight: Tensor | None,
    grads: tuple[bool, bool, bool],
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
    """One sweep over the row blocks.

    Without ``lse`` (forward) it returns per-kept-row (local LSE, local target logit, local
    logit sum); with ``row_weight`` it also accumulates gradients, either from the block's own
    softmax (``lse`` None: single-process forward_grads) or from the given global ``lse``.
    Returns (lse, z_target, z_sum, dh, dW, db).
    """
    opts = cfg.opts
    k, dim = y.shape[0], h.shape[1]
    vocab = weight.shape[0]
    compute = _compute_dtype(h.dtype)
    device = h.device
    c = max(1, min(cfg.rows_per_block, k))
    buf = BlockBuffers(c, vocab, compute=compute, storage=h.dtype, device=device,
                       softcap=opts.softcap is not None)
    local_y = columns_in(y, cfg.vocab_start, vocab)
    out_lse = torch.empty(k, dtype=compute, device=device) if lse is None else lse
    z_target = torch.zeros(k, dtype=compute, device=device)
    z_sum = torch.zeros(k, dtype=compute, device=device) if opts.label_smoothing > 0 else None
    want_h, want_w, want_b = grads if row_weight is not None else (False, False, False)
    dh = None
    if want_h:
        dh = (torch.zeros if rows is not None or cfg.group is not None else torch.empty)(
            h.shape[0], dim, dtype=h.dtype, device=device)
    dW = torch.zeros(vocab, dim, dtype=compute, device=device) if want_w else None
    db = torch.zeros(vocab, dtype=compute, device=device) if want_b else None
    h_buf = torch.empty(c, dim, dtype=h.dtype, device=device) if rows is not None else None
    dh_buf = torch.empty(c, dim, dtype=h.dtype, device=device) if rows is not None else None

    factored = opts.softcap is None and opts.z_loss == 0.0
    w_sum = weight.sum(0, dtype=compute) if factored and want_h and opts.label_smoothing else None
    h_sum = torch.zeros(dim, dtype=compute, device=device) if factored else None
    w_total = torch.zeros((), dtype=compute, device=device)
    for s in range(0, k, c):
        e = min(s + c, k)
        h_c = h[s:e] if rows is None else torch.index_select(
            h, 0, rows[s:e], out=h_buf[: e - s])  # type: ignore[index]
        z = block_logits(buf, h_c, weight, bias, opts.softcap)
        yc = local_y[s:e]
        anchor = yc.clamp(min=0)
        tgt = z.gather(1, anchor.unsqueeze(1)).squeeze(1)
        z_target[s:e] = tgt if cfg.group is None else torch.where(yc >= 0, tgt, 0.0)
        if z_sum is not None:
            z_sum[s:e] = z.sum(dim=1)
        if lse is None or cfg.group is None:
            lse_here, lost = softmax_inplace_lse(z, tgt, anchor,
                                                     want_p=row_weight is not None)
            if lost is not None:  # a target probability underflowed: redo the block exactly
                lse_here = relog_block(buf, h_c, weight, bias, opts.softcap, tgt, anchor)
            if lse is None:
                out_lse[s:e] = lse_here
            if row_weight is None:
                continue
        else:  # vocabulary shard: normalise with the global LSE
            probabilities_inplace(z, lse[s:e])
        lse_c = out_lse[s:e]
        w_c = row_weight[s:e]  # type: ignore[index]
        # Filtering decides per block: the hot columns of all its rows are gathered once
        # (smaller row groups skip more columns but pay a gather of W per group; measured
        # slower on a trained LM, and the error is larger).
        act = (None if cfg.filter_eps is None
               else active_columns(z, lse_c, yc, cfg.filter_eps, opts, cfg.max_active))
        if factored:
            _accumulate_factored(z, w_c, yc, h_c, weight, buf, act, dh, dh_buf, dW, db, w_sum,
                                 h_sum, rows, s, e, opts)
            w_total += w_c.sum()
            continue
        g = gradient_inplace(z, buf, lse_c, w_c, yc, opts)
        if db is not None:
            db += g.sum(dim=0)
        _accumulate(g, h_c, weight, buf, act, dh, dh_buf, dW, rows, s, e)
    if factored and opts.label_smoothing > 0.0 and row_weight is not None:
        # The −ε/V term of every gradient entry, applied once: a rank-one update.
        smooth = opts.label_smoothing / opts.vocab_total
        if dW is not None:
            dW.sub_(smooth * h_sum.unsqueeze(0))  # type: ignore[union-attr]
        if db is not None:
            db.sub_(smooth * w_total)
    return out_lse, z_target, z_sum, dh, dW, db


def _to_storage(p: Tensor, weight: Tensor, buf: BlockBuffers, act: Tensor | None) -> Tensor:
    """The gradient block in the GEMM precision: half inputs run the backward GEMMs in half
    precision (like autograd on ``hidden @ weight.T``); converted once, used by both GEMMs."""
    if p.dtype == weight.dtype:
        return p
    if act is None:
        return buf.block(buf.low, p.shape[0]).copy_(p)  # type: ignore[arg-type]
    return p.to(weight.dtype)


def _accumulate_factored(p: Tensor, w_c: Tensor, yc: Tensor, h_c: Tensor, weight: Tensor,
                         buf: BlockBuffers, act: Tensor | None, dh: Tensor | None,
                         dh_buf: Tensor | None, dW: Tensor | None, db: Tensor | None,
                         w_sum: Tensor | None, h_sum: Tensor | None, rows: Tensor | None,
                         s: int, e: int, opts: LossOptions) -> None:
    """Gradients when G = diag(w)·(P − (1−ε)·Y) − (ε/V)·w·1ᵀ (no soft-cap, no z-loss).

    The one-hot part is subtracted from the c target entries of P, the row weights w are
    applied to the (c, D) operands and results, and the smoothing part is a rank-one
    correction applied once at the end, so no full pass over the (c, V) block is spent on
    forming the gradient.
    """
    eps = opts.label_smoothing
    owned = yc >= 0
    r = torch.arange(p.shape[0], device=p.device)
    if bool(owned.all()):
        p[r, yc] -= 1.0 - eps
    else:
        p[r[owned], yc[owned]] -= 1.0 - eps
    pa = p if act is None else _gather_columns(p, act, buf)
    wa = weight if act is None else _gather_rows(weight, act, buf)
    compute = p.dtype
    p_low = _to_storage(pa, weight, buf, act)
    if dh is not None:
        target = dh[s:e] if rows is None else dh_buf[: e - s]  # type: ignore[index]
        room = dh[s:] if rows is None else None  # rows of later blocks: the split's room
        prod = (hidden_grad_product(p_low, wa, target, room) if act is None
                else torch.mm(p_low, wa, out=target))
        corr = prod.to(compute) if prod.dtype != compute else prod
        corr.mul_(w_c.unsqueeze(1))
        if w_sum is not None:
            corr.sub_((eps / opts.vocab_total) * w_c.unsqueeze(1) * w_sum.unsqueeze(0))
        if corr is not target:
            target.copy_(corr)
        if rows is not None:
            dh.index_copy_(0, rows[s:e], target)
    h32 = h_c if h_c.dtype == compute else h_c.to(compute)
    if dW is not None:
        _update_dw(dW, pa, h32 * w_c.unsqueeze(1), act, buf)
        if h_sum is not None and eps > 0.0:
            h_sum += w_c @ h32
    if db is not None:
        db.addmv_(p.t(), w_c)


def _accumulate(g: Tensor, h_c: Tensor, weight: Tensor, buf: BlockBuffers, act: Tensor | None,
                dh: Tensor | None, dh_buf: Tensor | None, dW: Tensor | None,
                rows: Tensor | None, s: int, e: int) -> None:
    """∂h[block] = G @ W and ∂W += Gᵀ @ h from a fully formed gradient block (soft-capping)."""
    if act is not None:
        g = _gather_columns(g, act, buf)
        weight_a = _gather_rows(weight, act, buf)
    else:
        weight_a = weight
    g_low = _to_storage(g, weight, buf, act)
    if dh is not None:
        target = dh[s:e] if rows is None else dh_buf[: e - s]  # type: ignore[index]
        if act is None:
            hidden_grad_product(g_low, weight_a, target, dh[s:] if rows is None else None)
        else:
            torch.mm(g_low, weight_a, out=target)
        if rows is not None:
            dh.index_copy_(0, rows[s:e], target)
    if dW is not None:
        h32 = h_c if h_c.dtype == dW.dtype else h_c.to(dW.dtype)
        _update_dw(dW, g, h32, act, buf)


def _gather_columns(p: Tensor, act: Tensor, buf: BlockBuffers) -> Tensor:
    """The active columns of a (c, V) block as a (c, A) scratch view. Blocks are stored
    vocabulary-major, so this gathers contiguous rows of the (V, c) transpose (a column
    gather of the (c, V) view copies element by element, 3× slower)."""
    out = buf.scratch("columns", (act.shape[0], p.shape[0]), p.dtype)
    return torch.index_select(p.t(), 0, act, out=out).t()


def _gather_rows(weight: Tensor, act: Tensor, buf: BlockBuffers) -> Tensor:
    """The active rows of W as a contiguous (A, D) scratch view."""
    out = buf.scratch("rows", (act.shape[0], weight.shape[1]), weight.dtype)
    return torch.index_select(weight, 0, act, out=out)


def _update_dw(dW: Tensor, g: Tensor, hs: Tensor, act: Tensor | None,
               buf: BlockBuffers) -> None:
    """dW[cols] += gᵀ @ hs in the compute precision (fp32 for half inputs).

    For half-precision inputs this one GEMM runs in fp32: a half-precision product would have
    to be widened and added to the fp32 accumulator, a V·D pass per block that cost more than
    the faster GEMM saved (measured); and the chunk-to-chunk sum never rounds to half
    precision (the loss-curve drift several fused implementations had).
    """
    if act is None:
        dW.addmm_(g.t(), hs)
    else:
        prod = buf.scratch("product", (act.shape[0], hs.shape[1]), dW.dtype)
        dW.index_add_(0, act, torch.mm(g.t(), hs, out=prod))


def upstream_row_weights(g_loss: Tensor, cfg: ChunkConfig, rows: int,
                         dtype: torch.dtype) -> Tensor:
    """w_i of each kept row from the loss's upstream gradient: the per-row gradient for
    ``none``, else the scalar divided by the mean's count (``mean``) or by 1 (``sum``)."""
    if cfg.reduction == "none":
        return g_loss.to(dtype)
    w = g_loss.to(dtype) / (max(cfg.count, 1) if cfg.reduction == "mean" else 1)
    return w.expand(rows)


def _finish_loss(per_row: Tensor, reduction: str, count: int) -> Tensor:
    if reduction == "none":
        return per_row
    total = per_row.sum()
    return total if reduction == "sum" else total / max(count, 1)


def forward_loss(h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor,
                 rows: Tensor | None, cfg: ChunkConfig) -> tuple[Tensor, Tensor]:
    """Loss only (one GEMM per block, nothing kept): returns (loss, per-row LSE)."""
    lse, zt, zs, *_ = _run_blocks(h, weight, bias, y, rows, cfg, lse=None, row_weight=None,
                                  grads=(False, False, False))
    if cfg.group is not None:
        lse, zt, zs = parallel.combine_row_stats(lse, zt, zs, cfg.group)
    return _finish_loss(block_loss(lse, zt, zs, cfg.opts), cfg.reduction, cfg.count), lse


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """autograd.Function over flattened (M, D) hidden states and the kept rows' targets."""

    @staticmethod
    def forward(ctx: Any, h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor,
                rows: Tensor | None, cfg: ChunkConfig) -> tuple[Tensor, Tensor]:
        grads = (ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                 bias is not None and ctx.needs_input_grad[2])
        ctx.cfg, ctx.grads, ctx.h_shape = cfg, grads, h.shape
        ctx.weight_dtype = weight.dtype
        if cfg.strategy == "forward_grads" and cfg.group is None and cfg.reduction != "none":
            w = 1.0 / max(cfg.count, 1) if cfg.reduction == "mean" else 1.0
            row_weight = torch.full((y.shape[0],), w, dtype=_compute_dtype(h.dtype),
                                    device=h.device)
            lse, zt, zs, dh, dW, db = _run_blocks(h, weight, bias, y, rows, cfg, lse=None,
                                                  row_weight=row_weight, grads=grads)
            ctx.held = [dh, dW, db]
            loss = _finish_loss(block_loss(lse, zt, zs, cfg.opts), cfg.reduction, cfg.count)
        else:
            loss, lse = forward_loss(h, weight, bias, y, rows, cfg)
            ctx.held = None
            ctx.save_for_backward(h, weight, bias, y, rows, lse)
        ctx.mark_non_differentiable(lse)
        return loss, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_loss: Tensor, g_lse: Tensor | None) -> tuple[Any, ...]:
        cfg: ChunkConfig = ctx.cfg
        if ctx.held is not None:
            if ctx.held == []:
                raise RuntimeError(
                    "linear_cross_entropy: backward ran twice through the forward_grads "
                    "strategy, whose gradients are handed over (not copied) on the first "
                    "backward; use impl='chunked_recompute' or 'chunked_vocab_major' with "
                    "retain_graph=True"
                )
            dh, dW, db = ctx.held
            ctx.held = []
            scale = g_loss.reshape(())
            out = []
            for grad in (dh, dW, db):
                if grad is not None and not bool(scale == 1.0):
                    # the 0-dim fp32 scale keeps fp32 arithmetic (not .to(grad.dtype)): a loss
                    # scaler's 65536 would itself round to inf in fp16
                    grad.mul_(scale)
                out.append(grad)
            dh, dW, db = out
        else:
            h, weight, bias, y, rows, lse = ctx.saved_tensors
            row_weight = upstream_row_weights(g_loss, cfg, y.shape[0], lse.dtype)
            if cfg.strategy == "vocab_major":
                dh, dW, db = vocab_major_grads(h, weight, bias, y, rows, cfg, lse, row_weight,
                                               ctx.grads)
            else:
                *_, dh, dW, db = _run_blocks(h, weight, bias, y, rows, cfg, lse=lse,
                                             row_weight=row_weight, grads=ctx.grads)
            if dh is not None and cfg.group is not None:
                parallel.all_reduce_sum(dh, cfg.group)
        if dW is not None and dW.dtype != ctx.weight_dtype:
            dW = dW.to(ctx.weight_dtype)
        if db is not None and db.dtype != ctx.weight_dtype:
            db = db.to(ctx.weight_dtype)
        return dh, dW, db, None, None, None
