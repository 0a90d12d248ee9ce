"""Gradient filtering for the fused linear cross-entropy (``filter_eps``).

In a trained language model the softmax is extremely peaked: for most (token, vocabulary)
pairs p_ij is far below the precision of the result. Cut Cross-Entropy (Wijmans et al.,
ICLR 2025, arXiv 2411.09009) skips the backward GEMM work of tiles whose gradient entries
are all below ``filter_eps``.

Here the "tile" is one vocabulary column of a row block: after the softmax of a block the
columns j whose gradient entries satisfy ``|∂ℓ_i/∂z_ij| < ε_f`` for every row i of the block
(and that are nobody's target) are dropped, and the two backward GEMMs run only on the
gathered active columns. With filtering, rows are processed in target order (``api``):
rows predicting the same token share their hot columns, so blocks have fewer of them.
Gathering the active columns is vocabulary sorting taken to its limit: CCE sorts the
vocabulary so that hot entries share tiles; a gather puts every hot entry into one dense
tile, so there is no separate sorting switch.

Error bound (what the tests check). Every skipped gradient entry has magnitude below ε_f
before the upstream weight w_i (w_i = 1/K for ``mean``, 1 for ``sum``, the upstream gradient
for ``none``), hence

    |Δ ∂L/∂h_{i,d}| ≤ |w_i| · ε_f · Σ_{j skipped} |W_{j,d}|,
    |Δ ∂L/∂W_{j,d}| ≤ ε_f · Σ_i |w_i| · |h_{i,d}|,

and the loss and the bias gradient are exact. ``filter_eps="auto"`` is the input dtype's
machine epsilon / 32 (bf16: 2.4e-4, fp16: 3.1e-5, fp32: 3.7e-9), CCE's default.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .blocks import LossOptions

# Gathering only pays when it removes a good part of the two backward GEMMs.
MAX_ACTIVE_SHARE = 0.6


def resolve_filter_eps(fn: str, filter_eps: object, dtype: torch.dtype) -> float | None:
    """None → exact; "auto" → machine epsilon of ``dtype`` / 32; a number ≥ 0 → itself."""
    if filter_eps is None:
        return None
    if isinstance(filter_eps, str):
        if filter_eps != "auto":
            raise ValueError(
                f"{fn}: filter_eps must be None, 'auto' or a number >= 0, got {filter_eps!r}"
            )
        return torch.finfo(dtype).eps / 32.0
    if isinstance(filter_eps, bool) or not isinstance(filter_eps, (int, float)):
        raise TypeError(
            f"{fn}: filter_eps must be None, 'auto' or a number >= 0, "
            f"got {type(filter_eps).__name__}"
        )
    value = float(filter_eps)
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{fn}: filter_eps must be a finite number >= 0, got {value}")
    return value if value > 0.0 else None


def entry_bound(p_max: Tensor, lse: Tensor, opts: LossOptions) -> Tensor:
    """An upper bound on |∂ℓ_i/∂z_ij| (before the row weights) over the rows of a block,
    given p_max = max_i p_ij: the entry is p_ij·a_i − ε/V with a_i = 1 + 2 c_z LSE_i, and
    |p·a − ε/V| ≤ p·|a| + ε/V (a may be negative), so p_max · max_i|a_i| + ε/V."""
    scale = 1.0
    if opts.z_loss > 0.0 and lse.numel() > 0:
        scale = float((1.0 + 2.0 * opts.z_loss * lse).abs().max())
    return p_max * scale + opts.label_smoothing / opts.vocab_total


def active_columns(p: Tensor, lse: Tensor, local_target: Tensor | None, eps: float,
                   opts: LossOptions, max_active: int | None = None) -> Tensor | None:
    """Columns of the probability block ``p`` (c, V) whose gradient may reach ``eps``.

    A column is inactive (conservatively) when max_i p_ij · max_i|1 + 2 c_z LSE_i| + ε/V
    < eps and no row of the block targets it. Returns the sorted active column
    indices, or None when filtering would not pay off or when more than ``max_active``
    columns are hot (the memory budget's room for the gathered operands; None: no limit
    beyond the 60 % share).
    """
    if opts.label_smoothing / opts.vocab_total >= eps:
        return None  # every entry may reach eps
    hot = entry_bound(p.amax(dim=0), lse, opts) >= eps
    if local_target is not None:
        owned = local_target[local_target >= 0]
        hot[owned] = True
    count = int(hot.sum())
    if count > MAX_ACTIVE_SHARE * p.shape[1] or (max_active is not None and count > max_active):
        return None
    return hot.nonzero().squeeze(1)
