"""Block sweep of :func:`losslab.linear_loss`: any per-row registered loss on (c, V) blocks.

Rows are processed in blocks of ``c`` rows against the whole vocabulary. For each block the
logits z' = softcap(h_c Wᵀ + b) are made one vocabulary tile at a time and stored row-major
in one reused (c, V) buffer (:class:`_RowMajorBlock`), and so are the teacher's logits
h_tᶜ W_tᵀ + b_t when the loss takes them. The registered loss function then runs on *loss
groups* of contiguous rows (:func:`loss_group_rows`: ~2¹⁸ logits, ≥ 8 rows per CPU thread) at a time: the loss
and its gradient with respect to the group's logits come from autograd, and that gradient
overwrites the group's logits in the block. The loss's own temporaries are therefore
(r, V)-sized, while the GEMMs run on the larger (c, V) block:

    ∂h_c = G W,   ∂W += Gᵀ h_c,   ∂b += Σ_rows G,   G = ∂(Σ_i w_i ℓ_i)/∂z · (1 − tanh²(z/c))

with w_i the row weights (the upstream gradient times 1/Σ w_y for ``mean``). Extra row-aligned
inputs (``aspect_logits``, ``sample_ids``, ...) are sliced with the rows and get their own
gradient when they require one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._core.autograd import first_order_only
from .._core.block_sizes import LINEAR_LOSS_GROUP_ELEMENTS
from .blocks import BlockBuffers, block_logits, softcap_chain_inplace, vocab_tiles
from .chunked import _accumulate

_LOSS_GROUP_ELEMENTS = LINEAR_LOSS_GROUP_ELEMENTS  # losslab._core.block_sizes


@dataclass(frozen=True)
class RowLoss:
    """A registered loss function bound to its options, called on (r, V) logits with
    in-range targets; returns the (r,) per-row losses, each multiplied by w_y."""

    function: Callable[..., Tensor]
    hyperparameters: Mapping[str, Any]
    class_weight: Tensor | None
    ignore_index: int
    extra_names: tuple[str, ...]  # keyword names of the row-aligned extra inputs

    def __call__(self, z: Tensor, y: Tensor, teacher: Tensor | None,
                 extras: Sequence[Tensor | None]) -> Tensor:
        kw = {**self.hyperparameters}
        kw.update({n: x for n, x in zip(self.extra_names, extras, strict=True) if x is not None})
        if teacher is not None:
            kw["teacher_logits"] = teacher
        return self.function(z, y, weight=self.class_weight, ignore_index=self.ignore_index,
                             reduction="none", **kw)


class Head(NamedTuple):
    """A linear head over flattened rows: (M, D) hidden, (V, D) weight, optional (V,) bias."""

    hidden: Tensor
    weight: Tensor
    bias: Tensor | None


@dataclass(frozen=True)
class SweepConfig:
    loss: RowLoss
    reduction: str
    rows_per_block: int
    softcap: float | None
    denominator: float  # "mean": Σ w_y over the kept rows (1 when that is 0); else 1


class _HeadGrads:
    """Accumulators of (∂h, ∂W, ∂b) for one head; ∂W, ∂b in the compute precision."""

    def __init__(self, head: Head, want: Sequence[bool], compute: torch.dtype, sparse: bool,
                 rows_per_block: int, *, zeroed: bool = False) -> None:
        h, w, b = head
        self.dh = ((torch.zeros if sparse or zeroed else torch.empty)(
            h.shape, dtype=h.dtype, device=h.device) if want[0] else None)
        self.dW = torch.zeros(w.shape, dtype=compute, device=w.device) if want[1] else None
        self.db = (torch.zeros(w.shape[0], dtype=compute, device=w.device)
                   if want[2] and b is not None else None)
        self.dh_buf = (torch.empty(rows_per_block, h.shape[1], dtype=h.dtype, device=h.device)
                       if sparse and self.dh is not None else None)

    def add(self, g: Tensor, h_c: Tensor, weight: Tensor, buf: BlockBuffers,
            rows: Tensor | None, s: int, e: int) -> None:
        if self.db is not None:
            self.db += g.sum(dim=0)
        _accumulate(g, h_c, weight, buf, None, self.dh, self.dh_buf, self.dW, rows, s, e)

    def result(self, weight: Tensor) -> list[Tensor | None]:
        cast = [None if x is None else x.to(weight.dtype) for x in (self.dW, self.db)]
        return [self.dh, *cast]


class _RowMajorBlock:
    """The (c, V) logits of a block stored row-major, made one vocabulary tile at a time.

    :func:`.blocks.block_logits` writes each tile of 1024 vocabulary rows vocabulary-major
    (W streams as the left GEMM operand, the fast layout), and the (c, 1024) tile is copied
    into the row-major block while it is in cache. The loss then runs on contiguous rows
    (copying row groups out of a vocabulary-major block cost 1.6 ms per (8, 32768) group,
    and some losses run 2× slower on the strided view) and the block is held once: at c = 64,
    V = 32768 fp32 the tiled GEMM plus copies take 44 ms against 39 ms for one whole-block
    GEMM plus a blocked transpose, which needs a second 8 MiB block. The gradient overwrites
    the logits in place for the backward GEMMs; ``grad`` also holds the half-precision GEMM
    buffer and the scratch of :func:`.chunked._accumulate`.
    """

    def __init__(self, rows: int, weight: Tensor, *, compute: torch.dtype, storage: torch.dtype,
                 softcap: bool) -> None:
        vocab, device = weight.shape[0], weight.device
        self.tiles = [slice(*t.indices(vocab)[:2]) for t in vocab_tiles(weight)]
        self.tile_bufs = {
            width: BlockBuffers(rows, width, compute=compute, storage=storage, device=device,
                                softcap=softcap)
            for width in {t.stop - t.start for t in self.tiles}
        }
        self.grad = BlockBuffers(rows, vocab, compute=compute, storage=storage, device=device,
                                 softcap=False)
        self.tanh = torch.empty(rows * vocab, dtype=compute, device=device) if softcap else None
        self.vocab = vocab

    def logits(self, h: Tensor, weight: Tensor, bias: Tensor | None,
               softcap: float | None) -> Tensor:
        """z' = softcap(h Wᵀ + b) as a row-major (c, V) view (tanh(z/c) kept for the chain
        rule when soft-capping)."""
        c = h.shape[0]
        z = self.grad.z[: c * self.vocab].view(c, self.vocab)
        for t in self.tiles:
            buf = self.tile_bufs[t.stop - t.start]
            z[:, t].copy_(block_logits(buf, h, weight[t], None if bias is None else bias[t],
                                       softcap))
            if self.tanh is not None:
                self.tanh_view(c)[:, t].copy_(buf.block(buf.t, c))  # type: ignore[arg-type]
        return z

    def tanh_view(self, rows: int) -> Tensor:
        return self.tanh[: rows * self.vocab].view(rows, self.vocab)  # type: ignore[index]


def loss_group_rows(device: torch.device, vocab: int) -> int:
    """Rows per loss call: about 2¹⁸ logits per CPU thread, at least 8 rows per thread.

    At V = 32768 that is 8 rows per thread (at 2 threads 8-row groups ran 1.57× the
    three-GEMM floor, 16-row groups 1.39×). Small vocabularies get more rows: a loss call
    costs a fixed few tens of microseconds of autograd bookkeeping, which 8 rows of a
    1024-entry vocabulary do not amortise (measurements in docs/benchmarks.md, "linear_loss
    at a small vocabulary"). On a GPU the whole
    block (one call per block, as few kernel launches as possible)."""
    if device.type != "cpu":
        return 2**62
    per_thread = max(8, _LOSS_GROUP_ELEMENTS // max(vocab, 1))
    return per_thread * max(1, torch.get_num_threads())


def _gather(x: Tensor, rows: Tensor | None, s: int, e: int, out: Tensor | None) -> Tensor:
    if rows is None:
        return x[s:e]
    return torch.index_select(x, 0, rows[s:e], out=None if out is None else out[: e - s])


def sweep(student: Head, teacher: Head | None, y: Tensor, rows: Tensor | None,
          extras: Sequence[Tensor | None], cfg: SweepConfig, *, row_weight: Tensor | None,
          want: Sequence[bool]) -> tuple[Tensor, list[Tensor | None]]:
    """One pass over the row blocks: the (K,) per-row losses of the kept rows (``rows``:
    their indices among the M rows, None for all) and, with ``row_weight`` (K,), the
    gradients of Σ_i w_i ℓ_i in the order (h, W, b, teacher h, W, b, *extras) — None where
    ``want`` is False or the loss does not depend on that input (a detached teacher)."""
    loss = cfg.loss
    h, weight, bias = student
    k = y.shape[0]
    compute = torch.promote_types(h.dtype, torch.float32)
    device = h.device
    c = max(1, min(cfg.rows_per_block, k))
    r = max(1, min(loss_group_rows(device, weight.shape[0]), c))
    sparse = rows is not None
    block = _RowMajorBlock(c, weight, compute=compute, storage=h.dtype,
                           softcap=cfg.softcap is not None)
    h_buf = torch.empty(c, h.shape[1], dtype=h.dtype, device=device) if sparse else None
    t_compute = compute
    t_block = th_buf = None
    if teacher is not None:
        t_compute = torch.promote_types(teacher.hidden.dtype, torch.float32)
        t_block = _RowMajorBlock(c, teacher.weight, compute=t_compute,
                                 storage=teacher.hidden.dtype, softcap=False)
        th_buf = (torch.empty(c, teacher.hidden.shape[1], dtype=teacher.hidden.dtype,
                              device=device) if sparse else None)
    per_row = torch.empty(k, dtype=compute, device=device)
    grads_on = row_weight is not None
    want = list(want) if grads_on else [False] * (6 + len(extras))
    s_grads = _HeadGrads(student, want[0:3], compute, sparse, c) if any(want[0:3]) else None
    t_want = teacher is not None and any(want[3:6])
    t_grads: _HeadGrads | None = None  # allocated at the first gradient the loss gives
    x_want = [w and x is not None and x.is_floating_point() for w, x in zip(want[6:], extras, strict=True)]
    x_grads: list[Tensor | None] = [torch.zeros_like(x) if w and x is not None else None
                                    for w, x in zip(x_want, extras, strict=True)]
    need_z_grad = s_grads is not None

    for s in range(0, k, c):
        e = min(s + c, k)
        h_c = _gather(h, rows, s, e, h_buf)
        z = block.logits(h_c, weight, bias, cfg.softcap)
        t = th_c = None
        if teacher is not None and t_block is not None:
            th_c = _gather(teacher.hidden, rows, s, e, th_buf)
            t = t_block.logits(th_c, teacher.weight, teacher.bias, None)
        for a in range(0, e - s, r):
            b_ = min(a + r, e - s)
            zs = z[a:b_]
            ts = None if t is None else t[a:b_]
            xs = [None if x is None else _gather(x, rows, s + a, s + b_, None) for x in extras]
            yc = y[s + a:s + b_]
            if not grads_on:
                with torch.no_grad():
                    per_row[s + a:s + b_] = loss(zs, yc, ts, xs)
                continue
            leaves: list[Tensor] = []
            with torch.enable_grad():
                if need_z_grad:
                    zs = zs.detach().requires_grad_()
                    leaves.append(zs)
                if t_want and ts is not None:
                    ts = ts.detach().requires_grad_()
                    leaves.append(ts)
                xs = [x.detach().requires_grad_() if w and x is not None else x
                      for w, x in zip(x_want, xs, strict=True)]
                leaves += [x for w, x in zip(x_want, xs, strict=True) if w and x is not None]
                out = loss(zs, yc, ts, xs)
                found: Sequence[Tensor | None] = [None] * len(leaves)
                if leaves and out.requires_grad:
                    seed = row_weight[s + a:s + b_].to(out.dtype)  # type: ignore[index]
                    found = torch.autograd.grad(out, leaves, seed, allow_unused=True)
            per_row[s + a:s + b_] = out.detach()
            it = iter(found)
            if need_z_grad:
                gz = next(it)
                z[a:b_].copy_(gz) if gz is not None else z[a:b_].zero_()
            if t_want:
                gt = next(it)
                if gt is None:
                    t[a:b_].zero_()  # type: ignore[index]
                else:
                    if t_grads is None:  # zero-initialised: earlier blocks gave none
                        t_grads = _HeadGrads(teacher, want[3:6], t_compute, sparse, c,  # type: ignore[arg-type]
                                             zeroed=True)
                    t[a:b_].copy_(gt)  # type: ignore[index]
            for i, w in enumerate(x_want):
                if w:
                    gx = next(it)
                    if gx is not None:
                        dst = x_grads[i]
                        if rows is None:
                            dst[s + a:s + b_] = gx  # type: ignore[index]
                        else:
                            dst.index_copy_(0, rows[s + a:s + b_], gx.to(dst.dtype))  # type: ignore[union-attr]
        if s_grads is not None:
            if cfg.softcap is not None:
                softcap_chain_inplace(z, block.tanh_view(e - s))
            s_grads.add(z, h_c, weight, block.grad, rows, s, e)
        if t_grads is not None:
            t_grads.add(t, th_c, teacher.weight, t_block.grad, rows, s, e)  # type: ignore[arg-type, union-attr]
    grads: list[Tensor | None] = [None] * 6
    if s_grads is not None:
        grads[0:3] = s_grads.result(weight)
    if t_grads is not None and teacher is not None:
        grads[3:6] = t_grads.result(teacher.weight)
    return per_row, grads + x_grads


def finish_loss(per_row: Tensor, cfg: SweepConfig) -> Tensor:
    """The reduction of the per-row (already class-weighted) losses."""
    if cfg.reduction == "none":
        return per_row
    total = per_row.sum()
    return total / cfg.denominator if cfg.reduction == "mean" else total


def upstream_row_weights(g_loss: Tensor, cfg: SweepConfig, rows: int,
                         dtype: torch.dtype) -> Tensor:
    """w_i of each kept row: the per-row upstream gradient for ``none``, else the scalar
    divided by the mean's denominator (``mean``) or by 1 (``sum``)."""
    if cfg.reduction == "none":
        return g_loss.to(dtype)
    w = g_loss.to(dtype) / (cfg.denominator if cfg.reduction == "mean" else 1.0)
    return w.reshape(()).expand(rows)


class LinearLossFunction(torch.autograd.Function):
    """``apply(cfg, y, rows, h, W, b, teacher h, W, b, *extras)`` → per-row losses (``none``)
    or their reduction.

    Scalar reductions compute the gradients during the forward sweep (three GEMMs per block)
    and backward only scales them by the upstream scalar; ``none`` keeps the inputs and
    recomputes the blocks in backward with the per-row upstream gradient (four GEMMs). A
    second backward through a retained graph also recomputes (the first hands its gradients
    over without a copy).
    """

    @staticmethod
    def forward(ctx: Any, cfg: SweepConfig, y: Tensor, rows: Tensor | None, h: Tensor,
                weight: Tensor, bias: Tensor | None, t_h: Tensor | None, t_w: Tensor | None,
                t_b: Tensor | None, *extras: Tensor | None) -> Tensor:
        ctx.cfg, ctx.loss_name = cfg, "linear_loss"
        ctx.want = list(ctx.needs_input_grad[3:])
        ctx.save_for_backward(y, rows, h, weight, bias, t_h, t_w, t_b, *extras)
        student = Head(h, weight, bias)
        teacher = None if t_h is None else Head(t_h, t_w, t_b)  # type: ignore[arg-type]
        ctx.held = None
        if cfg.reduction == "none":
            per_row, _ = sweep(student, teacher, y, rows, extras, cfg, row_weight=None,
                               want=ctx.want)
            return per_row
        compute = torch.promote_types(h.dtype, torch.float32)
        one = torch.ones((), dtype=compute, device=h.device)
        per_row, ctx.held = sweep(student, teacher, y, rows, extras, cfg,
                                  row_weight=upstream_row_weights(one, cfg, y.shape[0], compute),
                                  want=ctx.want)
        return finish_loss(per_row, cfg)

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, g_loss: Tensor) -> tuple[Tensor | None, ...]:
        cfg: SweepConfig = ctx.cfg
        if ctx.held is not None:
            grads, ctx.held = ctx.held, None
            scale = g_loss.reshape(())
            if not bool(scale == 1.0):
                for grad in grads:
                    if grad is not None:
                        # the 0-dim fp32 scale keeps fp32 arithmetic: a loss scaler's 65536
                        # would itself round to inf in fp16
                        grad.mul_(scale)
        else:
            y, rows, h, weight, bias, t_h, t_w, t_b, *extras = ctx.saved_tensors
            compute = torch.promote_types(h.dtype, torch.float32)
            teacher = None if t_h is None else Head(t_h, t_w, t_b)
            _, grads = sweep(Head(h, weight, bias), teacher, y, rows, extras, cfg,
                             row_weight=upstream_row_weights(g_loss, cfg, y.shape[0], compute),
                             want=ctx.want)
        return (None, None, None, *grads)
