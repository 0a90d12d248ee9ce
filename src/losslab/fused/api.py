"""Public entry of the fused linear cross-entropy: validation, layout, dispatch."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._core.validation import check_ignore_index, check_number, check_reduction
from . import parallel
from .blocks import LossOptions
from .chunked import ChunkConfig, ChunkedLinearCrossEntropy, forward_loss
from .filtering import resolve_filter_eps
from .inputs import check_head, check_index_target, check_target_range, kept_rows, scatter_rows
from .reference import reference_linear_cross_entropy
from .strategy import Problem, plan, resolve_budget, table_key

FN = "linear_cross_entropy"
IMPLS = ("auto", "chunked", "chunked_forward_grads", "chunked_recompute", "chunked_vocab_major",
         "reference", "triton")


#: impl values that fix the strategy instead of the table (Triton's backward recomputes).
_FORCED = {"chunked_forward_grads": "forward_grads", "chunked_recompute": "recompute",
           "chunked_vocab_major": "vocab_major", "triton": "recompute"}


def _resolve_impl(impl: object, device: torch.device, group: Any) -> str:
    if impl not in IMPLS:
        raise ValueError(f"{FN}: impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")
    if impl == "auto":
        if device.type == "cuda" and group is None:
            from .triton_kernels import triton_available

            return "triton" if triton_available() else "chunked"
        return "chunked"
    if impl in ("reference", "triton") and group is not None:
        raise ValueError(f"{FN}: impl={impl!r} does not support process_group; use 'chunked'")
    if impl == "triton":
        from .triton_kernels import triton_available

        if not triton_available():
            raise ValueError(
                f"{FN}: impl='triton' needs the triton package and a CUDA device (or "
                "TRITON_INTERPRET=1); install losslab[gpu] or use impl='chunked'"
            )
    return str(impl)


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    shift: bool = False,
    impl: str = "auto",
    chunk_size: int | None = None,
    memory_budget: int | float | None = None,
    filter_eps: float | str | None = None,
    return_lse: bool = False,
    process_group: Any = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Cross-entropy of a linear classifier without materialising the (N, V) logits.

    .. math::

        z = h W^\top + b,\quad z' = c\tanh(z/c),\quad
        \ell = (1-\varepsilon)(\mathrm{LSE}(z') - z'_y)
               + \varepsilon\,(\mathrm{LSE}(z') - \tfrac1V\textstyle\sum_j z'_j)
               + c_z\,\mathrm{LSE}(z')^2

    equal to ``losslab.functional.cross_entropy(hidden @ weight.T + bias, target, ...)``.

    Args:
        hidden: (..., D) hidden states, any leading shape.
        weight: (V, D) classifier; with ``process_group``, this rank's contiguous shard.
        target: (...) class indices, hidden's shape without D.
        bias: optional (V,) (or this rank's shard).
        ignore_index: target value that contributes 0 loss and 0 gradient.
        reduction: ``"mean"`` (over kept tokens; all ignored → 0 with zero gradient),
            ``"sum"`` or ``"none"`` (target's shape, 0 at ignored positions).
        label_smoothing: ε in [0, 1]; z_loss: c_z ≥ 0 (PaLM); softcap: c > 0 or None.
        shift: score hidden[..., t, :] against target[..., t+1] without a slicing copy;
            ``none`` output then has shape target[..., 1:].
        impl: ``"auto"`` (Triton on CUDA when installed, else chunked), ``"chunked"``
            (strategy and block shape chosen per call within ``memory_budget`` from the
            table of :mod:`losslab.fused.strategy`), ``"chunked_forward_grads"``,
            ``"chunked_recompute"``, ``"chunked_vocab_major"`` (force that strategy; see
            :mod:`losslab.fused.vocab_major`), ``"triton"``, ``"reference"`` (materialises
            the logits).
        chunk_size: rows per block (the strategy is then the one the default budget picks).
        memory_budget: extra bytes the call may use beyond its inputs, outputs and
            gradients: an int (bytes) or a float in (0, 1] (a fraction of the N×V logits'
            bytes in the compute precision, N = rows of ``hidden``). Default: 2 % of the
            logits, raised to fit a 128-row block, at most 10 %. Not with ``chunk_size``
            (ValueError); too small for a one-row block: ValueError naming the minimum.
        filter_eps: None (exact), ``"auto"`` or a threshold; see :mod:`losslab.fused.filtering`.
        return_lse: also return the per-position LSE(z') (not differentiable; 0 where ignored).
        process_group: vocabulary-parallel group (see :mod:`losslab.fused.parallel`).

    Example:
        >>> import torch, losslab
        >>> h = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); W = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> round(losslab.linear_cross_entropy(h, W, torch.tensor([0, 1])).item(), 6)
        0.220095

    References: Wijmans et al., *Cut Your Losses in Large-Vocabulary Language Models*, ICLR
    2025 (arXiv 2411.09009); PaLM z-loss, Chowdhery et al. 2022 (arXiv 2204.02311).
    """
    if not isinstance(shift, bool):
        raise TypeError(f"{FN}: shift must be a bool, got {type(shift).__name__}")
    h, w, b = check_head(FN, hidden, weight, bias, shift=shift)
    t = check_index_target(FN, target, h)
    reduction = check_reduction(FN, reduction)
    ignore_index = check_ignore_index(FN, ignore_index)
    eps = check_number(FN, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    zl = check_number(FN, "z_loss", z_loss, low=0.0)
    cap = None if softcap is None else check_number(FN, "softcap", softcap, low=0.0, low_open=True)
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"{FN}: chunk_size must be a positive int or None, got {chunk_size!r}")
    compute = torch.promote_types(w.dtype, torch.float32)
    n_rows = t.numel()  # rows of hidden: the logits hidden @ weight.T would have N×V entries
    budget = resolve_budget(FN, memory_budget, chunk_size,
                            n_rows * w.shape[0] * torch.finfo(compute).bits // 8)
    f_eps = resolve_filter_eps(FN, filter_eps, w.dtype)
    if not isinstance(return_lse, bool):
        raise TypeError(f"{FN}: return_lse must be a bool, got {type(return_lse).__name__}")
    impl = _resolve_impl(impl, h.device, process_group)
    if impl == "reference" and budget is not None:
        raise ValueError(f"{FN}: impl='reference' materialises the (N, V) logits; "
                         "memory_budget applies to the chunked and Triton paths")
    if process_group is not None:
        if w.shape[0] == 0:
            raise ValueError(f"{FN}: this rank's weight shard is empty (V_r=0)")
        start, vocab_total = parallel.shard_layout(FN, w, b, t.numel(), process_group)
    else:
        start, vocab_total = 0, w.shape[0]
    check_target_range(FN, t, vocab_total, ignore_index)

    if impl == "reference":
        loss = reference_linear_cross_entropy(
            h, w, t, bias=b, ignore_index=ignore_index, reduction=reduction,
            label_smoothing=eps, z_loss=zl, softcap=cap, shift=shift)
        if not return_lse:
            return loss
        z = (h[..., :-1, :] if shift else h) @ w.T
        z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
        z = z + b if b is not None else z
        lse = torch.logsumexp(z if cap is None else cap * torch.tanh(z / cap), dim=-1)
        keep = (t[..., 1:] if shift else t) != ignore_index
        return loss, torch.where(keep, lse, 0.0).detach()

    h2 = h.reshape(-1, h.shape[-1])
    y, rows, total = kept_rows(t, ignore_index, shift)
    opts = LossOptions(label_smoothing=eps, z_loss=zl, softcap=cap, vocab_total=vocab_total)
    needs_grad = torch.is_grad_enabled() and (
        h.requires_grad or w.requires_grad or (b is not None and b.requires_grad))
    if f_eps is not None and needs_grad and impl != "triton":
        # Rows with the same target tend to share their likely next tokens: blocks of such
        # rows have fewer hot columns, so filtering skips more (on the Shakespeare LM of
        # benchmarks/fused_ce.py the hot share of an 80-row block drops from 0.50 to 0.43).
        order = torch.argsort(y, stable=True)
        rows = order if rows is None else rows.index_select(0, order)
        y = y.index_select(0, order)
    if impl == "chunked_forward_grads" and (reduction == "none" or process_group is not None):
        raise ValueError(
            f"{FN}: impl='chunked_forward_grads' needs a scalar loss and no process_group; "
            f"got reduction={reduction!r}"
            f"{' and a process_group' if process_group is not None else ''}; "
            "use 'chunked' or 'chunked_recompute'"
        )
    problem = Problem(
        rows=n_rows, kept=int(y.shape[0]), dim=w.shape[1], vocab=w.shape[0],
        compute_bytes=torch.finfo(compute).bits // 8, storage_bytes=w.element_size(),
        softcap=cap is not None, smoothing=eps > 0.0, filtering=f_eps is not None and needs_grad,
        gathered=rows is not None, bias_grad=b is not None and b.requires_grad,
        hidden_grad=h.requires_grad,
        threads=torch.get_num_threads() if h.device.type == "cpu" else 1)
    chosen = plan(problem, table_key(w.dtype, f_eps is not None, reduction,
                                     process_group is not None),
                  budget, fn=FN, forced=_FORCED.get(impl))
    cfg = ChunkConfig(
        opts=opts, reduction=reduction, strategy=chosen.strategy,
        rows_per_block=chunk_size or chosen.rows_per_block,
        tile_rows=0 if chunk_size else chosen.tile_rows,
        max_active=None if chunk_size else chosen.max_active,
        filter_eps=f_eps, count=int(y.shape[0]), group=process_group, vocab_start=start)
    if impl == "triton":
        from .triton_kernels import TritonLinearCrossEntropy

        loss, lse = TritonLinearCrossEntropy.apply(h2, w, b, y, rows, cfg)  # type: ignore[no-untyped-call]
    elif needs_grad:
        loss, lse = ChunkedLinearCrossEntropy.apply(h2, w, b, y, rows, cfg)  # type: ignore[no-untyped-call]
    else:
        loss, lse = forward_loss(h2.detach(), w.detach(), None if b is None else b.detach(),
                                 y, rows, cfg)
    out_shape = tuple(t.shape)
    if reduction == "none":
        loss = scatter_rows(loss, rows, total, out_shape, shift)
    if not return_lse:
        return loss
    return loss, scatter_rows(lse.detach(), rows, total, out_shape, shift)

