"""The shared path of batch-level (set) logit losses: losses that couple the rows of a batch,
such as set-level Dice or a soft confusion matrix, so that they are not means of per-row terms.

A loss supplies ``batch(z, y, class_weight) -> ()``: the batch loss computed from the (K, C)
logits and (K,) class indices of the kept rows (K >= 1). Losses defined per class use
:func:`mean_over_classes`, which combines per-class values ``d_c`` into
``L = sum_c w_c d_c / sum_c w_c`` (plain mean without ``weight``). This module validates
inputs exactly like :func:`losslab._core.logit_loss.logit_loss` and drops ignored rows.

Reductions follow the per-row identities ``none.sum() == sum`` and ``none.mean() == mean``
over the kept rows:

* ``mean`` returns ``L``;
* ``sum`` returns ``K * L`` (K kept rows), so that ``sum / K == mean`` as for per-row losses;
* ``none`` returns ``L`` at every kept position and 0 at ignored ones, in the target's shape.

An empty or fully ignored batch gives 0 with zero gradients under every reduction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..._core.logit_loss import drop_ignored_rows, prepare_logits, traced_targets
from ..._core.validation import expected_target_shape, values_checkable

PerClass = Callable[[Tensor, Tensor], Tensor]
BatchLoss = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def weighted_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """sum w v / sum w (plain mean without weights); 0 when all weights are 0."""
    if weights is None:
        return values.mean()
    total = weights.sum()
    return (values * weights).sum() / torch.where(total > 0, total, torch.ones_like(total))


def mean_over_classes(per_class: PerClass) -> BatchLoss:
    """Batch loss from per-class values (C,), weighted by the class weights."""

    def batch(z: Tensor, y: Tensor, class_weight: Tensor | None) -> Tensor:
        return weighted_mean(per_class(z, y), class_weight)

    return batch


def batch_level_loss(
    fn: str,
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    batch: BatchLoss,
) -> Tensor:
    """Apply a batch-level loss over the kept rows of a batch; see the module docstring."""
    reduction, ignore_index, z, class_weight = prepare_logits(
        fn, input, target, weight=weight, ignore_index=ignore_index, reduction=reduction
    )
    if not values_checkable(z, target):
        return _traced_batch_level_loss(fn, input, target, z, ignore_index, reduction,
                                        class_weight, batch)
    z_kept, y_kept, kept_mask = drop_ignored_rows(fn, input, target, z, ignore_index)
    count = y_kept.shape[0]
    # An empty batch stays connected to the graph so that backward() gives zero gradients.
    loss = z_kept.sum() * 0.0 if count == 0 else batch(z_kept, y_kept, class_weight)
    if reduction == "mean":
        return loss
    if reduction == "sum":
        return loss * count
    full = loss.expand(z.shape[0])
    if kept_mask is not None:
        full = full * kept_mask.to(loss.dtype)
    return full.reshape(expected_target_shape(input))


def _traced_batch_level_loss(
    fn: str,
    input: Tensor,
    target: Tensor,
    z: Tensor,
    ignore_index: int,
    reduction: str,
    class_weight: Tensor | None,
    batch: BatchLoss,
) -> Tensor:
    """:func:`batch_level_loss` without value-dependent shapes, for ``torch.compile`` and meta
    tensors. A batch loss couples its rows, so an ignored row cannot be masked out after the
    fact: under ``torch.compile`` a batch holding one fails a runtime assertion instead of
    giving a different loss than eager mode (meta tensors have no values to check)."""
    y, kept = traced_targets(fn, input, target, ignore_index)
    if not z.is_meta:
        torch._assert_async(
            kept.all(), f"{fn}: under torch.compile a batch-level loss needs every target "
            f"to be a class (no ignore_index={ignore_index} rows); call it eagerly for batches "
            f"with ignored rows"
        )
    count = y.shape[0]
    loss = z.sum() * 0.0 if count == 0 else batch(z, y, class_weight)
    if reduction == "mean":
        return loss
    if reduction == "sum":
        return loss * count
    return loss.expand(z.shape[0]).reshape(expected_target_shape(input))
