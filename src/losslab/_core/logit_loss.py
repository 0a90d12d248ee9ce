"""The shared path of every logit-space loss: validate, flatten, drop ignored rows, compute
per-row losses in float32 or better, weight, reduce.

A loss supplies only ``rows(z, y) -> (K,)``: its per-sample value on (K, C) logits with
(K,) in-range class indices. Everything in the API contract (layouts, weights,
``ignore_index``, reductions, empty batches, half precision, error messages) lives here once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .reduction import reduce_rows
from .validation import (
    check_class_weight,
    check_ignore_index,
    check_index_target,
    check_probability_target,
    check_reduction,
    check_tensor,
    expected_target_shape,
    flatten_logits,
    values_checkable,
)

RowLoss = Callable[[Tensor, Tensor], Tensor]
WeightedRowLoss = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]
SoftRowLoss = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def compute_dtype(x: Tensor) -> torch.dtype:
    """Half-precision inputs are computed in float32; float32 and float64 keep their dtype."""
    return torch.promote_types(x.dtype, torch.float32)


def prepare_logits(
    fn: str,
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
) -> tuple[str, int, Tensor, Tensor | None]:
    """Validate the convention arguments once; return (reduction, ignore_index, logits as
    (M, C) in the compute dtype, class weight or None)."""
    reduction = check_reduction(fn, reduction)
    ignore_index = check_ignore_index(fn, ignore_index)
    check_tensor(fn, "target", target)
    z, num_classes = flatten_logits(fn, input)
    z = z.to(compute_dtype(z))
    return reduction, ignore_index, z, check_class_weight(fn, weight, num_classes, z)


def drop_ignored_rows(
    fn: str, input: Tensor, target: Tensor, z: Tensor, ignore_index: int
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check class-index targets and keep the rows that are not ignored.

    Returns (kept logits, kept indices, mask of kept rows among all M, or ``None`` when every
    row is kept — boolean indexing copies the (M, C) matrix, so it is skipped then).
    """
    y = check_index_target(fn, input, target, ignore_index)
    kept_mask = y != ignore_index
    if bool(kept_mask.all()):
        return z, y, None
    return z[kept_mask], y[kept_mask], kept_mask


def logit_loss(
    fn: str,
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    rows: RowLoss | None = None,
    weighted_rows: WeightedRowLoss | None = None,
    soft_rows: SoftRowLoss | None = None,
) -> Tensor:
    """Apply a per-row loss with the library's conventions.

    Exactly one of ``rows`` (unweighted per-row loss; the class weight ``w_y`` is applied
    here) or ``weighted_rows`` (a loss that applies the class weight itself, e.g. label
    smoothing spreads weight over all classes) must be given. ``soft_rows(z, t, weight)``
    handles probability targets shaped like ``input``; losses without it reject float
    targets. Probability targets have no ignored rows and the mean divides by the row count.
    """
    reduction, ignore_index, z, class_weight = prepare_logits(
        fn, input, target, weight=weight, ignore_index=ignore_index, reduction=reduction
    )

    if target.is_floating_point():
        if soft_rows is None:
            raise TypeError(
                f"{fn}: target must hold class indices (an integer tensor such as int64), "
                f"got dtype {target.dtype}; this loss does not accept probability targets"
            )
        t = check_probability_target(fn, input, target).to(z.dtype)
        per_row = soft_rows(z, t, class_weight)
        return reduce_rows(per_row, reduction=reduction, out_shape=expected_target_shape(input))

    if not values_checkable(z, target):
        return _traced_logit_loss(fn, input, target, z, ignore_index, reduction, class_weight,
                                  rows, weighted_rows)

    z, y, kept = drop_ignored_rows(fn, input, target, z, ignore_index)

    row_weight = class_weight[y] if class_weight is not None else None
    per_row = _weighted_per_row(fn, z, y, class_weight, row_weight, rows, weighted_rows)
    return reduce_rows(
        per_row,
        reduction=reduction,
        row_weight=row_weight,
        kept=kept,
        out_shape=expected_target_shape(input),
    )


def _weighted_per_row(fn: str, z: Tensor, y: Tensor, class_weight: Tensor | None,
                      row_weight: Tensor | None, rows: RowLoss | None,
                      weighted_rows: WeightedRowLoss | None) -> Tensor:
    """Per-row losses times their class weight ``row_weight`` (= class_weight[y]), or the
    loss's own weighting when it applies the class weight itself (``weighted_rows``)."""
    if weighted_rows is not None:
        return weighted_rows(z, y, class_weight)
    if rows is None:
        raise TypeError(f"{fn}: internal error, logit_loss needs rows or weighted_rows")
    per_row = rows(z, y)
    return per_row if row_weight is None else per_row * row_weight


def traced_targets(fn: str, input: Tensor, target: Tensor,
                   ignore_index: int) -> tuple[Tensor, Tensor]:
    """The value-free form of :func:`drop_ignored_rows`, for ``torch.compile`` tracing and
    meta tensors: every row is kept in place, an ignored row's target replaced by class 0.
    Returns (targets (M,), mask of the rows that are not ignored (M,))."""
    y = check_index_target(fn, input, target, ignore_index)
    kept = y != ignore_index
    return torch.where(kept, y, torch.zeros_like(y)), kept


def _traced_logit_loss(
    fn: str,
    input: Tensor,
    target: Tensor,
    z: Tensor,
    ignore_index: int,
    reduction: str,
    class_weight: Tensor | None,
    rows: RowLoss | None,
    weighted_rows: WeightedRowLoss | None,
) -> Tensor:
    """:func:`logit_loss` without value-dependent branches or shapes: ignored rows are computed
    on a stand-in class and masked out, so the result (value and gradient) equals the eager
    path's for per-row losses."""
    y, kept = traced_targets(fn, input, target, ignore_index)
    mask = kept.to(z.dtype)
    class_row_weight = None if class_weight is None else class_weight[y]
    row_weight = mask if class_row_weight is None else class_row_weight * mask
    per_row = _weighted_per_row(fn, z, y, class_weight, class_row_weight, rows, weighted_rows)
    per_row = torch.where(kept, per_row, torch.zeros_like(per_row))
    return reduce_rows(per_row, reduction=reduction, row_weight=row_weight,
                       out_shape=expected_target_shape(input))


def target_logit(z: Tensor, y: Tensor) -> Tensor:
    """z[i, y_i] for (K, C) logits and (K,) indices."""
    return z.gather(1, y.unsqueeze(1)).squeeze(1)


def log_prob_of_target(z: Tensor, y: Tensor) -> Tensor:
    """log p_y = z_y - logsumexp(z), stable at any logit scale."""
    return target_logit(z, y) - torch.logsumexp(z, dim=1)
