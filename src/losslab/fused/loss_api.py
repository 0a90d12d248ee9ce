"""Public entry of :func:`linear_loss`: any per-row registered logit loss fused with the
linear head — validation, the loss's options, teacher and extra inputs, row layout, dispatch."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from .._core.block_sizes import LINEAR_LOSS_MIN_ROWS, LOGITS_TILE_BYTES
from .._core.registry import LossInfo, list_losses
from .._core.validation import check_ignore_index, check_number, check_reduction, check_tensor
from .api import linear_cross_entropy
from .inputs import check_head, check_index_target, check_target_range, kept_rows, scatter_rows
from .loss_blocks import (
    Head,
    LinearLossFunction,
    RowLoss,
    SweepConfig,
    finish_loss,
    loss_group_rows,
    sweep,
)
from .strategy import Problem, plan, resolve_budget

FN = "linear_loss"
_TEACHER = "teacher_logits"
_TEACHER_NAMES = ("teacher_hidden", "teacher_weight", "teacher_bias")
#: Options of linear_cross_entropy that loss="ce" passes through (its fused path only).
_CE_OPTIONS = ("impl", "filter_eps")
#: Bytes of one (c, V) compute-precision block of logits (see docs/fused.md).
_BLOCK_BYTES = LOGITS_TILE_BYTES  # losslab._core.block_sizes
_MIN_ROWS = LINEAR_LOSS_MIN_ROWS


def default_loss_rows(vocab: int, dtype: torch.dtype) -> int:
    """Rows per block: a compute-precision (c, V) logits block of about 8 MiB, at least 16
    rows (64 rows at V = 32768 in fp32: 32 rows ran the GEMMs 1.7× slower per row)."""
    per_row = vocab * torch.finfo(torch.promote_types(dtype, torch.float32)).bits // 8
    return max(_MIN_ROWS, _BLOCK_BYTES // max(per_row, 1))


def _budget_rows(budget: int | None, h: Tensor, w: Tensor, y: Tensor, rows: Tensor | None,
                 cap: float | None, b: Tensor | None, teacher: Head | None, t: Tensor) -> int:
    """Rows per block: the default 8 MiB block, or the most that ``budget`` bytes allow."""
    if budget is None:
        return default_loss_rows(w.shape[0], h.dtype)
    compute = torch.promote_types(h.dtype, torch.float32)
    problem = Problem(
        rows=t.numel(), kept=int(y.shape[0]), dim=w.shape[1], vocab=w.shape[0],
        compute_bytes=torch.finfo(compute).bits // 8, storage_bytes=w.element_size(),
        softcap=cap is not None, smoothing=False, filtering=False, gathered=rows is not None,
        bias_grad=b is not None and b.requires_grad, hidden_grad=h.requires_grad,
        threads=torch.get_num_threads() if h.device.type == "cpu" else 1,
        teacher=teacher is not None,
        group_rows=min(loss_group_rows(h.device, w.shape[0]), max(int(y.shape[0]), 1)))
    return plan(problem, ("loss", False, "scalar"), budget, fn=FN,
                forced="loss_sweep").rows_per_block


def resolve_loss(name: object) -> LossInfo:
    """The registry record of a loss linear_loss can fuse, or a ValueError saying why not."""
    if not isinstance(name, str):
        raise TypeError(f"{FN}: loss must be a registered loss name (str), "
                        f"got {type(name).__name__}")
    infos = {i.name: i for i in list_losses()}
    usable = sorted(n for n, i in infos.items() if i.kind == "logits" and not i.batch_level)
    if name not in infos:
        raise ValueError(f"{FN}: unknown loss {name!r}; losses it can fuse: {', '.join(usable)}")
    info = infos[name]
    if info.kind != "logits":
        raise ValueError(
            f"{FN}: loss {name!r} consumes {info.kind}, not logits, so there is no linear head "
            f"to fuse it with; call losslab.get_loss({name!r}) on its own inputs"
        )
    if info.batch_level:
        raise ValueError(
            f"{FN}: loss {name!r} is batch-level (it couples the rows of a batch), so it "
            f"cannot be computed one block of rows at a time; materialise the logits "
            f"(hidden @ weight.T) and call losslab.get_loss({name!r})"
        )
    return info


def _split_options(info: LossInfo, options: dict[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Keyword options → (the loss's hyperparameters, its extra inputs, ce-only options)."""
    hp: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    ce: dict[str, Any] = {}
    row_inputs = [n for n in info.extra_inputs if n != _TEACHER]
    for key, value in options.items():
        if key == _TEACHER:
            raise TypeError(
                f"{FN}: teacher_logits is made block by block from the teacher head; pass "
                "teacher_hidden and teacher_weight (and teacher_bias) instead"
            )
        if key in info.defaults:
            hp[key] = value
        elif key in row_inputs:
            extras[key] = value
        elif info.name == "ce" and key in _CE_OPTIONS:
            ce[key] = value
        else:
            accepted = [*info.defaults, *row_inputs, *(_CE_OPTIONS if info.name == "ce" else ())]
            raise TypeError(
                f"{FN}: loss {info.name!r} has no hyperparameter or input {key!r}; it accepts "
                f"{', '.join(accepted) or 'none'}"
            )
    try:  # the module's constructor validates the hyperparameters' values
        info.module(**hp)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{FN}: loss {info.name!r}: {err}") from err
    return hp, extras, ce


def _check_class_weight(class_weight: object, vocab: int, like: Tensor) -> Tensor | None:
    if class_weight is None:
        return None
    cw = check_tensor(FN, "class_weight", class_weight)
    if cw.dim() != 1 or cw.shape[0] != vocab:
        raise ValueError(f"{FN}: class_weight must have shape ({vocab},), one entry per class "
                         f"of the vocabulary, got shape {tuple(cw.shape)}")
    if not cw.is_floating_point():
        raise TypeError(f"{FN}: class_weight must be a floating-point tensor, got {cw.dtype}")
    if bool((cw < 0).any()) or not bool(torch.isfinite(cw).all()):
        raise ValueError(f"{FN}: class_weight must be finite and non-negative")
    if cw.device != like.device:
        raise ValueError(f"{FN}: class_weight is on {cw.device} but hidden is on {like.device}")
    return cw


def _check_teacher(info: LossInfo, hidden: Tensor, vocab: int, shift: bool,
                   given: tuple[object, object, object]) -> Head | None:
    if _TEACHER not in info.extra_inputs:
        passed = [n for n, x in zip(_TEACHER_NAMES, given, strict=True) if x is not None]
        if passed:
            takers = sorted(i.name for i in list_losses(kind="logits")
                            if _TEACHER in i.extra_inputs and not i.batch_level)
            raise ValueError(f"{FN}: loss {info.name!r} takes no teacher, got "
                             f"{', '.join(passed)}; losses with a teacher: {', '.join(takers)}")
        return None
    if given[0] is None or given[1] is None:
        raise ValueError(
            f"{FN}: loss {info.name!r} distils from teacher logits; pass teacher_hidden "
            f"(shape {tuple(hidden.shape[:-1])} + (D_t,)) and teacher_weight (shape "
            f"({vocab}, D_t)), and optionally teacher_bias"
        )
    th, tw, tb = check_head(FN, *given, shift=shift, names=_TEACHER_NAMES)
    if tw.shape[0] != vocab:
        raise ValueError(f"{FN}: teacher_weight has V={tw.shape[0]} classes but weight has "
                         f"V={vocab}; the teacher must score the student's vocabulary")
    if th.shape[:-1] != hidden.shape[:-1]:
        raise ValueError(f"{FN}: teacher_hidden must have shape {tuple(hidden.shape[:-1])} + "
                         f"(D_t,) (hidden's rows), got {tuple(th.shape)}")
    if th.device != hidden.device:
        raise ValueError(f"{FN}: teacher_hidden is on {th.device} but hidden is on "
                         f"{hidden.device}")
    return Head(th.reshape(-1, th.shape[-1]), tw, tb)


def _row_inputs(info: LossInfo, extras: dict[str, Any], target: Tensor, total: int
                ) -> tuple[tuple[str, ...], list[Tensor | None]]:
    """The loss's row-aligned extra inputs, flattened to (M, ...) like the rows of hidden."""
    params = inspect.signature(info.function).parameters
    names = tuple(n for n in info.extra_inputs if n != _TEACHER)
    flat: list[Tensor | None] = []
    for name in names:
        if name not in extras:
            if params[name].default is inspect.Parameter.empty:
                raise TypeError(f"{FN}: loss {info.name!r} needs the extra input {name!r}, a "
                                f"tensor of leading shape {tuple(target.shape)} (target's)")
            flat.append(None)
            continue
        x = check_tensor(FN, name, extras[name])
        lead = tuple(x.shape[: target.dim()])
        if x.dim() < target.dim() or lead != tuple(target.shape):
            raise ValueError(f"{FN}: {name} must have leading shape {tuple(target.shape)} "
                             f"(target's), got shape {tuple(x.shape)}")
        if x.device != target.device:
            raise ValueError(f"{FN}: {name} is on {x.device} but target is on {target.device}")
        flat.append(x.reshape(total, *x.shape[target.dim():]))
    return names, flat


#: linear_loss's own keyword options besides the loss's hyperparameters (module construction).
OPTIONS = ("shift", "ignore_index", "reduction", "class_weight", "softcap", "chunk_size",
           "memory_budget")
#: Keywords passed per call to the module form, never at construction.
CALL_INPUTS = ("bias", *_TEACHER_NAMES)


def check_options(owner: str, loss: object, options: dict[str, Any]) -> LossInfo:
    """Validate linear_loss's options without tensors (the module form, at construction):
    the loss, its hyperparameters' names and values, the reduction, ignore_index, softcap,
    chunk_size, shift and the class weights' form (their length is checked at the call)."""
    info = resolve_loss(loss)
    per_call = sorted(set(options) & ({*CALL_INPUTS, _TEACHER} | set(info.extra_inputs)))
    if per_call:
        raise TypeError(f"{owner}: pass {', '.join(per_call)} at call time, not to the "
                        "constructor")
    hp = {k: v for k, v in options.items() if k not in OPTIONS}
    _split_options(info, hp)
    check_reduction(owner, options.get("reduction", "mean"))
    check_ignore_index(owner, options.get("ignore_index", -100))
    if not isinstance(options.get("shift", False), bool):
        raise TypeError(f"{owner}: shift must be a bool, got {type(options['shift']).__name__}")
    if options.get("softcap") is not None:
        check_number(owner, "softcap", options["softcap"], low=0.0, low_open=True)
    _check_chunk_size(owner, options.get("chunk_size"))
    resolve_budget(owner, options.get("memory_budget"), options.get("chunk_size"), 1)
    cw = options.get("class_weight")
    if cw is not None:
        cw = check_tensor(owner, "class_weight", cw)
        _check_class_weight(cw, cw.shape[0] if cw.dim() == 1 else -1, cw)
    return info


def _check_chunk_size(owner: str, chunk_size: object) -> None:
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"{owner}: chunk_size must be a positive int or None, got {chunk_size!r}")


def linear_loss(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    loss: str = "gce",
    *,
    bias: Tensor | None = None,
    shift: bool = False,
    ignore_index: int = -100,
    reduction: str = "mean",
    class_weight: Tensor | None = None,
    softcap: float | None = None,
    chunk_size: int | None = None,
    memory_budget: int | float | None = None,
    teacher_hidden: Tensor | None = None,
    teacher_weight: Tensor | None = None,
    teacher_bias: Tensor | None = None,
    **hyperparameters: Any,
) -> Tensor:
    r"""Any per-row registered logit loss of a linear classifier, without the (N, V) logits.

    .. math::

        z = \mathrm{softcap}(h W^\top + b),\qquad
        \mathcal{L} = \mathrm{loss}(z, y;\ \text{teacher\_logits} = h_t W_t^\top + b_t)

    equal, in value and gradients, to
    ``losslab.get_loss(loss, weight=class_weight, ignore_index=..., reduction=...,
    **hyperparameters)(z, target, **extra_inputs)`` on the materialised logits, where
    ``softcap(z) = c·tanh(z/c)`` (off when None). The logits exist one block of rows at a
    time: (c, V) for the GEMMs and (8·threads, V) for the loss call (:mod:`.loss_blocks`).
    ``loss="ce"`` runs :func:`linear_cross_entropy` (its ``label_smoothing``, ``z_loss``,
    ``impl``, ``filter_eps``) unless class weights or a temperature ≠ 1 need the generic path.

    Args:
        hidden: (..., D) hidden states; weight: (V, D); target: (...) class indices.
        loss: a registered loss of kind ``"logits"`` that is not batch-level.
        bias: optional (V,). shift: score hidden[..., t, :] against target[..., t+1] without a
            slicing copy (``none`` output then has target[..., 1:]'s shape).
        ignore_index, reduction: as in ``F.cross_entropy``; ``mean`` is Σ w_y ℓ / Σ w_y over
            kept rows, 0 with zero gradients when every row is ignored.
        class_weight: optional (V,) class weights (the loss's ``weight``).
        softcap: c > 0 or None. chunk_size: rows per block (default: an 8 MiB block).
        memory_budget: extra bytes the call may use instead of ``chunk_size`` (an int, or a
            float in (0, 1]: a fraction of the N×V logits' bytes in the compute precision);
            rows per block are the most that fit (see :mod:`losslab.fused.strategy`); too
            small for one row: ValueError naming the minimum.
        teacher_hidden, teacher_weight, teacher_bias: the teacher head of losses that take
            ``teacher_logits`` (kd, pld, sce-consistency): (..., D_t), (V, D_t), (V,); the
            teacher logits are made block by block with the student's rows (and shift) and
            are not soft-capped.
        **hyperparameters: the loss's hyperparameters, and its row-aligned extra inputs
            (e.g. ``aspect_logits``, ``sample_ids``) as tensors whose leading shape is
            target's; row i goes with hidden row i (with ``shift``, the last position's is
            unused). Extra inputs that require grad get their gradient.

    Example:
        >>> import torch, losslab
        >>> h = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); W = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> round(losslab.linear_loss(h, W, torch.tensor([0, 1]), "gce", q=0.7).item(), 6)
        0.201373

    References: the loss's own paper (``losslab.list_losses()``); the blocking follows Wijmans
    et al., *Cut Your Losses in Large-Vocabulary Language Models*, ICLR 2025 (arXiv 2411.09009).
    """
    info = resolve_loss(loss)
    if not isinstance(shift, bool):
        raise TypeError(f"{FN}: shift must be a bool, got {type(shift).__name__}")
    h, w, b = check_head(FN, hidden, weight, bias, shift=shift)
    t = check_index_target(FN, target, h)
    reduction = check_reduction(FN, reduction)
    ignore_index = check_ignore_index(FN, ignore_index)
    cap = None if softcap is None else check_number(FN, "softcap", softcap, low=0.0, low_open=True)
    _check_chunk_size(FN, chunk_size)
    vocab = w.shape[0]
    compute = torch.promote_types(h.dtype, torch.float32)
    budget = resolve_budget(FN, memory_budget, chunk_size,
                            t.numel() * vocab * torch.finfo(compute).bits // 8)
    hp, extra_inputs, ce_options = _split_options(info, hyperparameters)
    cw = _check_class_weight(class_weight, vocab, h)
    teacher = _check_teacher(info, h, vocab, shift, (teacher_hidden, teacher_weight, teacher_bias))
    if info.name == "ce":
        if cw is None and float(hp.get("temperature", 1.0)) == 1.0:
            return linear_cross_entropy(  # type: ignore[return-value]
                h, w, t, bias=b, ignore_index=ignore_index, reduction=reduction, softcap=cap,
                shift=shift, chunk_size=chunk_size, memory_budget=memory_budget,
                label_smoothing=hp.get("label_smoothing", 0.0), z_loss=hp.get("z_loss", 0.0),
                **ce_options)
        if ce_options:
            raise ValueError(
                f"{FN}: {', '.join(sorted(ce_options))} apply to the fused cross-entropy, which "
                "has no class weights and temperature 1; drop them, or class_weight/temperature"
            )
    check_target_range(FN, t, vocab, ignore_index)

    y, rows, total = kept_rows(t, ignore_index, shift)
    names, extras = _row_inputs(info, extra_inputs, t, total)
    if reduction == "mean":
        mass = float(y.shape[0]) if cw is None else float(cw.to(compute)[y].sum())
        denominator = mass if mass > 0 else 1.0
    else:
        denominator = 1.0
    cfg = SweepConfig(
        loss=RowLoss(function=info.function, hyperparameters=hp, class_weight=cw,
                     ignore_index=ignore_index, extra_names=names),
        reduction=reduction,
        rows_per_block=chunk_size or _budget_rows(budget, h, w, y, rows, cap, b, teacher, t),
        softcap=cap, denominator=denominator)
    h2 = h.reshape(-1, h.shape[-1])
    inputs = [h2, w, b, *(teacher or (None, None, None)), *extras]
    needs_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in inputs)
    if needs_grad:
        out = LinearLossFunction.apply(cfg, y, rows, *inputs)  # type: ignore[no-untyped-call]
    else:
        detached = [None if x is None else x.detach() for x in inputs]
        student = Head(*detached[0:3])  # type: ignore[arg-type]
        t_head = None if teacher is None else Head(*detached[3:6])  # type: ignore[arg-type]
        per_row, _ = sweep(student, t_head, y, rows, detached[6:], cfg, row_weight=None,
                           want=[False] * len(inputs))
        out = finish_loss(per_row, cfg)
    if reduction == "none":
        out = scatter_rows(out, rows, total, tuple(t.shape), shift)
    return out  # type: ignore[no-any-return]
