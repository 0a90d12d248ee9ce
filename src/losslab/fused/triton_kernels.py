"""Triton forward kernel for the fused linear cross-entropy (CUDA; imported lazily).

The kernel computes, for a block of rows, every (rows × vocabulary-tile) logit tile in
on-chip memory — a loop over D of ``tl.dot`` — applies bias and soft-capping, and folds the
tile into an online log-sum-exp (running max m and running sum s·exp(−m)), plus the running
sum of logits for label smoothing. Only O(N) floats reach global memory: the forward of Cut
Cross-Entropy (Wijmans et al., ICLR 2025). The target logit is an O(N·D) gather-dot in
PyTorch. Backward reuses the chunked recompute path with the saved LSE (on a GPU its
blocks are large cuBLAS GEMMs), so gradients are identical in semantics to ``"chunked"``.

This module imports ``triton`` at import time; :mod:`losslab.fused.api` imports it only for
``impl="triton"`` or ``impl="auto"`` on CUDA, so ``import losslab`` never needs Triton.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from .blocks import block_loss
from .chunked import ChunkConfig, _finish_loss, _run_blocks, upstream_row_weights


def triton_available() -> bool:
    """True when Triton imports and a CUDA device (or the interpreter) can run it."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


_KERNEL: Any = None


def _kernel() -> Any:
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import triton
    import triton.language as tl

    @triton.jit  # type: ignore[untyped-decorator]
    def lse_forward(h_ptr, w_ptr, b_ptr, lse_ptr, zsum_ptr, n_rows, vocab, dim,  # type: ignore[no-untyped-def]
                    stride_h, stride_w, softcap,
                    HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr, WANT_SUM: tl.constexpr,
                    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr):
        pid = tl.program_id(0)
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < n_rows
        m = tl.full((BLOCK_N,), float("-inf"), tl.float32)
        s = tl.zeros((BLOCK_N,), tl.float32)
        zsum = tl.zeros((BLOCK_N,), tl.float32)
        for v0 in range(0, vocab, BLOCK_V):
            cols = v0 + tl.arange(0, BLOCK_V)
            col_ok = cols < vocab
            acc = tl.zeros((BLOCK_N, BLOCK_V), tl.float32)
            for d0 in range(0, dim, BLOCK_D):
                ds = d0 + tl.arange(0, BLOCK_D)
                d_ok = ds < dim
                h = tl.load(h_ptr + rows[:, None] * stride_h + ds[None, :],
                            mask=row_ok[:, None] & d_ok[None, :], other=0.0)
                w = tl.load(w_ptr + cols[:, None] * stride_w + ds[None, :],
                            mask=col_ok[:, None] & d_ok[None, :], other=0.0)
                acc += tl.dot(h, tl.trans(w), out_dtype=tl.float32)
            if HAS_BIAS:
                acc += tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            if HAS_SOFTCAP:
                # c·tanh(z/c) with tanh(x) = 2σ(2x) − 1
                acc = softcap * (2.0 * tl.sigmoid(2.0 * acc / softcap) - 1.0)
            if WANT_SUM:
                zsum += tl.sum(tl.where(col_ok[None, :], acc, 0.0), axis=1)
            acc = tl.where(col_ok[None, :], acc, float("-inf"))
            m_new = tl.maximum(m, tl.max(acc, axis=1))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(acc - m_new[:, None]), axis=1)
            m = m_new
        tl.store(lse_ptr + rows, m + tl.log(s), mask=row_ok)
        if WANT_SUM:
            tl.store(zsum_ptr + rows, zsum, mask=row_ok)

    _KERNEL = lse_forward
    return _KERNEL


def triton_row_stats(h: Tensor, weight: Tensor, bias: Tensor | None, softcap: float | None,
                     want_sum: bool, block: tuple[int, int, int] | None = None
                     ) -> tuple[Tensor, Tensor | None]:
    """Per-row LSE(z') and Σ_j z'_j of z' = softcap(h Wᵀ + b) for contiguous (K, D) ``h``."""
    import triton

    n, dim = h.shape
    vocab = weight.shape[0]
    lse = torch.empty(n, dtype=torch.float32, device=h.device)
    zsum = torch.empty(n, dtype=torch.float32, device=h.device) if want_sum else lse
    bn, bv, bd = block or ((16, 32, 16) if h.device.type == "cpu" else (64, 128, 64))
    if n == 0:
        return lse, (zsum if want_sum else None)
    h, weight = h.contiguous(), weight.contiguous()
    _kernel()[(triton.cdiv(n, bn),)](
        h, weight, bias if bias is not None else h, lse, zsum, n, vocab, dim,
        h.stride(0), weight.stride(0), float(softcap or 1.0),
        HAS_BIAS=bias is not None, HAS_SOFTCAP=softcap is not None, WANT_SUM=want_sum,
        BLOCK_N=bn, BLOCK_V=bv, BLOCK_D=bd)
    return lse, (zsum if want_sum else None)


class TritonLinearCrossEntropy(torch.autograd.Function):
    """Forward by the Triton kernel, backward by the chunked recompute sweep."""

    @staticmethod
    def forward(ctx: Any, h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor,
                rows: Tensor | None, cfg: ChunkConfig) -> tuple[Tensor, Tensor]:
        if h.dtype == torch.float64:
            raise TypeError("linear_cross_entropy: impl='triton' supports float16, bfloat16 "
                            "and float32 inputs, got float64; use impl='chunked'")
        opts = cfg.opts
        hk = h if rows is None else h.index_select(0, rows)
        lse, zsum = triton_row_stats(hk, weight, bias, opts.softcap, opts.label_smoothing > 0)
        zt = (hk.float() * weight.index_select(0, y).float()).sum(1)
        if bias is not None:
            zt = zt + bias.index_select(0, y).float()
        if opts.softcap is not None:
            zt = opts.softcap * torch.tanh(zt / opts.softcap)
        loss = _finish_loss(block_loss(lse, zt, zsum, opts), cfg.reduction, cfg.count)
        ctx.cfg = cfg
        ctx.grads = (ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                     bias is not None and ctx.needs_input_grad[2])
        ctx.weight_dtype = weight.dtype
        ctx.save_for_backward(h, weight, bias, y, rows, lse)
        ctx.mark_non_differentiable(lse)
        return loss, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_loss: Tensor, g_lse: Tensor | None) -> tuple[Any, ...]:
        cfg: ChunkConfig = ctx.cfg
        h, weight, bias, y, rows, lse = ctx.saved_tensors
        row_weight = upstream_row_weights(g_loss, cfg, y.shape[0], lse.dtype)
        *_, dh, dW, db = _run_blocks(h, weight, bias, y, rows, cfg, lse=lse,
                                     row_weight=row_weight, grads=ctx.grads)
        if dW is not None:
            dW = dW.to(ctx.weight_dtype)
        if db is not None:
            db = db.to(ctx.weight_dtype)
        return dh, dW, db, None, None, None
