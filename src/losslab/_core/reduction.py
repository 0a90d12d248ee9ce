"""One tested reduction for every loss: mean / sum / none with class weights and ignored rows.

Conventions (the reduction rows of ``docs/conventions.md``):

* ``mean`` is the weighted mean ``sum_i w_{y_i} l_i / sum_i w_{y_i}`` over kept rows, or the
  plain mean when no weights are given.
* An empty or fully ignored batch gives ``0.0`` under ``mean`` (PyTorch gives NaN), still
  connected to the graph so that ``backward()`` yields zero gradients. This keeps a gradient
  accumulation step with no valid tokens from poisoning the parameters.
* ``none`` keeps the target's shape; ignored positions hold 0.
"""

from __future__ import annotations

import torch
from torch import Tensor


def reduce_rows(
    per_row: Tensor,
    *,
    reduction: str,
    row_weight: Tensor | None = None,
    kept: Tensor | None = None,
    out_shape: tuple[int, ...] | None = None,
) -> Tensor:
    """Reduce per-row losses that are already multiplied by their weight.

    Args:
        per_row: (K,) losses of the kept rows, each already multiplied by ``row_weight``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        row_weight: (K,) weights of the kept rows, the denominator of the weighted mean;
            ``None`` means every row has weight one.
        kept: (M,) boolean mask of kept rows among all M rows, or ``None`` if all are kept.
        out_shape: shape of the ``none`` output (the target's shape); defaults to (M,).
    """
    if reduction == "none":
        if kept is not None:
            full = per_row.new_zeros(kept.shape[0])
            full = full.masked_scatter(kept, per_row)
        else:
            full = per_row
        return full.reshape(out_shape) if out_shape is not None else full
    total = per_row.sum()
    if reduction == "sum":
        return total
    count = per_row.new_tensor(float(per_row.shape[0])) if row_weight is None else row_weight.sum()
    # Division by a zero count happens only when the numerator is an empty or all-zero-weight
    # sum; dividing by one there keeps both the value and the gradient at exactly zero.
    safe = torch.where(count > 0, count, torch.ones_like(count))
    return total / safe
