"""Public entry of the fused linear cross-entropy: validation, layout, dispatch."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._core.validation import check_ignore_index, check_number, check_reduction, check_tensor
from . import parallel
from .blocks import LossOptions
from .chunked import ChunkConfig, ChunkedLinearCrossEntropy, default_rows_per_block, forward_loss
from .filtering import resolve_filter_eps
from .reference import reference_linear_cross_entropy

FN = "linear_cross_entropy"
IMPLS = ("auto", "chunked", "chunked_forward_grads", "chunked_recompute", "chunked_vocab_major",
         "reference", "triton")


def _check_tensors(hidden: object, weight: object, target: object, bias: object,
                   shift: bool) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    h = check_tensor(FN, "hidden", hidden)
    w = check_tensor(FN, "weight", weight)
    t = check_tensor(FN, "target", target)
    for name, x in (("hidden", h), ("weight", w)):
        if not x.is_floating_point():
            raise TypeError(f"{FN}: {name} must be a floating-point tensor, got dtype {x.dtype}")
    if w.dim() != 2:
        raise ValueError(f"{FN}: weight must have shape (V, D), got shape {tuple(w.shape)}")
    if h.dim() < (2 if shift else 1):
        raise ValueError(
            f"{FN}: hidden must have shape (..., {'T, ' if shift else ''}D), "
            f"got shape {tuple(h.shape)}"
        )
    if h.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{FN}: hidden has D={h.shape[-1]} (shape {tuple(h.shape)}) but weight has "
            f"D={w.shape[1]} (shape {tuple(w.shape)}); expected weight of shape (V, {h.shape[-1]})"
        )
    if h.dtype != w.dtype:
        raise TypeError(
            f"{FN}: hidden and weight must have the same dtype, got {h.dtype} and {w.dtype}"
        )
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(
            f"{FN}: target must hold class indices (an integer tensor such as int64), "
            f"got dtype {t.dtype}"
        )
    if tuple(t.shape) != tuple(h.shape[:-1]):
        raise ValueError(
            f"{FN}: target must have shape {tuple(h.shape[:-1])} (hidden's shape without D), "
            f"got {tuple(t.shape)}"
        )
    b = None
    if bias is not None:
        b = check_tensor(FN, "bias", bias)
        if b.shape != (w.shape[0],):
            raise ValueError(
                f"{FN}: bias must have shape ({w.shape[0]},), got {tuple(b.shape)}"
            )
        if b.dtype != w.dtype:
            raise TypeError(f"{FN}: bias must have weight's dtype {w.dtype}, got {b.dtype}")
    for name, other in (("weight", w), ("target", t), ("bias", b)):
        if other is not None and other.device != h.device:
            raise ValueError(f"{FN}: {name} is on {other.device} but hidden is on {h.device}")
    return h, w, t, b


def _check_targets(y: Tensor, vocab_total: int, ignore_index: int) -> None:
    kept = y[y != ignore_index]
    if kept.numel() == 0:
        return
    low, high = int(kept.min()), int(kept.max())
    if high >= vocab_total or low < 0:
        bad = high if high >= vocab_total else low
        raise ValueError(
            f"{FN}: target has class {bad} but the vocabulary has V={vocab_total} entries; "
            f"targets must lie in [0, {vocab_total - 1}] or equal ignore_index={ignore_index}"
        )


_HALF = (torch.bfloat16, torch.float16)


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
            (strategy chosen per call: vocabulary-major for bf16/fp16 weights without
            filtering, else gradients in the forward pass for scalar losses, else recompute),
            ``"chunked_forward_grads"``, ``"chunked_recompute"``, ``"chunked_vocab_major"`` (see
            :mod:`losslab.fused.vocab_major`), ``"triton"``, ``"reference"`` (materialises
            the logits).
        chunk_size: rows per block (default: blocks of about 10 MiB, at least 32 rows).
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
    h, w, t, b = _check_tensors(hidden, weight, target, bias, shift)
    reduction = check_reduction(FN, reduction)
    ignore_index = check_ignore_index(FN, ignore_index)
    eps = check_number(FN, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    zl = check_number(FN, "z_loss", z_loss, low=0.0)
    cap = None if softcap is None else check_number(FN, "softcap", softcap, low=0.0, low_open=True)
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"{FN}: chunk_size must be a positive int or None, got {chunk_size!r}")
    f_eps = resolve_filter_eps(FN, filter_eps, w.dtype)
    if not isinstance(return_lse, bool):
        raise TypeError(f"{FN}: return_lse must be a bool, got {type(return_lse).__name__}")
    impl = _resolve_impl(impl, h.device, process_group)
    if process_group is not None:
        if w.shape[0] == 0:
            raise ValueError(f"{FN}: this rank's weight shard is empty (V_r=0)")
        start, vocab_total = parallel.shard_layout(FN, w, b, t.numel(), process_group)
    else:
        start, vocab_total = 0, w.shape[0]
    _check_targets(t, vocab_total, ignore_index)

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

    dim = h.shape[-1]
    h2 = h.reshape(-1, dim)
    if shift:
        y_all = torch.full_like(t, ignore_index)
        y_all[..., :-1] = t[..., 1:]
        y_all = y_all.reshape(-1).long()
    else:
        y_all = t.reshape(-1).long()
    kept = y_all != ignore_index
    rows: Tensor | None = None
    if bool(kept.all()):
        y = y_all
    else:
        rows = kept.nonzero().squeeze(1)
        y = y_all.index_select(0, rows)
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
    strategy = "forward_grads"
    # Half precision: the vocabulary-major backward (no (V, D) fp32 accumulator) unless
    # filtering, whose per-block column gathers skip far more than whole vocabulary tiles
    # (bf16 Shakespeare LM at filter_eps=1e-3: 0.93× the floor row-major, 1.86× tiles).
    if impl == "chunked_vocab_major" or (impl == "chunked" and w.dtype in _HALF
                                         and f_eps is None):
        strategy = "vocab_major"
    elif impl == "chunked_recompute" or reduction == "none" or process_group is not None:
        if impl == "chunked_forward_grads":
            raise ValueError(
                f"{FN}: impl='chunked_forward_grads' needs a scalar loss and no process_group; "
                f"got reduction={reduction!r}"
                f"{' and a process_group' if process_group is not None else ''}; "
                "use 'chunked' or 'chunked_recompute'"
            )
        strategy = "recompute"
    cfg = ChunkConfig(
        opts=opts, reduction=reduction, strategy=strategy,
        rows_per_block=chunk_size or default_rows_per_block(w.shape[0], w.dtype, cap is not None),
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
        loss = _scatter_rows(loss, rows, h2.shape[0], out_shape, shift)
    if not return_lse:
        return loss
    return loss, _scatter_rows(lse.detach(), rows, h2.shape[0], out_shape, shift)


def _scatter_rows(values: Tensor, rows: Tensor | None, total: int, shape: tuple[int, ...],
                  shift: bool) -> Tensor:
    """Kept-row values → target-shaped tensor with zeros at ignored positions."""
    full = values if rows is None else values.new_zeros(total).index_put((rows,), values)
    full = full.reshape(shape)
    return full[..., :-1] if shift else full
