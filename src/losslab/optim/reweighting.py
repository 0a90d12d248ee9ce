r"""Decorrelation sample weights: learn per-sample weights under which groups ("clusters") of
representation variables become uncorrelated, to down-weight samples that carry spurious
correlations (stable learning; "Learning to Reweight for Generalizable Graph Neural
Network", 2023 — reference details not re-checked — which decorrelates *clusters* of
variables instead of every pair).

With weights w_i > 0 of mean 1, weighted means and variances, and every variable
standardised by its weighted standard deviation (:math:`\hat z`), the objective is the squared
Frobenius norm of the weighted cross-correlation between every pair of clusters,

.. math:: \mathcal D(w) = \sum_{a<b}\Big\lVert \tfrac1n \sum_i w_i\,\hat z_{i,a}\,
          \hat z_{i,b}^\top \Big\rVert_F^2,

minimised over w = n·softmax(θ) by Adam, plus a small penalty on mean (w − 1)² that keeps
the weights from collapsing on few samples. Use the result as the per-sample weight of any loss:
``(w * loss_fn(input, target, reduction="none")).mean()``.

**Unverified:** the paper's exact objective (it also uses random Fourier features for
nonlinear dependence) was not read; this is the linear cluster-level decorrelation described in
its abstract.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._core.validation import check_number


def weighted_cross_correlation(z: Tensor, weights: Tensor, clusters: Sequence[Sequence[int]]
                               ) -> Tensor:
    """Sum over cluster pairs of the squared weighted cross-correlation (the objective above)."""
    w = weights / weights.mean()
    mean = (w.unsqueeze(1) * z).mean(0)
    centred = z - mean
    var = (w.unsqueeze(1) * centred.square()).mean(0).clamp_min(1e-12)
    scaled = centred / var.sqrt()
    total = z.new_zeros(())
    for a in range(len(clusters)):
        for b in range(a + 1, len(clusters)):
            za, zb = scaled[:, list(clusters[a])], scaled[:, list(clusters[b])]
            cov = (w.unsqueeze(1) * za).T @ zb / z.shape[0]
            total = total + cov.square().sum()
    return total


def decorrelation_weights(
    features: Tensor,
    clusters: Sequence[Sequence[int]] | None = None,
    *,
    steps: int = 300,
    lr: float = 0.05,
    spread_penalty: float = 1e-3,
) -> Tensor:
    """Sample weights (n,), positive with mean 1, that decorrelate the variable clusters.

    Args:
        features: (n, d) representations (detached; e.g. a backbone's features per batch).
        clusters: groups of feature indices; default every variable is its own cluster.
        steps, lr: Adam steps and learning rate on the weight logits.
        spread_penalty: weight of mean((w − 1)²), which stops the weights from collapsing on
            a few samples.

    Example: two variables, each its own cluster, mildly correlated:

        >>> x = torch.tensor([[1., 1.], [2., 2.], [3., 3.5], [1., 3.], [3., 1.], [2., 1.5]])
        >>> ones = torch.ones(6, dtype=torch.float64)
        >>> weighted_cross_correlation(x.double(), ones, [[0], [1]])   # corr² before
        tensor(0.0114, dtype=torch.float64)
        >>> w = decorrelation_weights(x)            # mean 1, all positive
        >>> w
        tensor([0.8950, 1.0081, 0.8777, 1.1037, 1.1073, 1.0082])
        >>> weighted_cross_correlation(x.double(), w.double(), [[0], [1]])   # after: ~6e-9
        tensor(5.6167e-09, dtype=torch.float64)
    """
    fn = "decorrelation_weights"
    if not isinstance(features, Tensor) or features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"{fn}: features must be a (n, d) tensor with n >= 2")
    if not features.is_floating_point() or not bool(torch.isfinite(features).all()):
        raise ValueError(f"{fn}: features must be finite floating-point values, got "
                         f"{features.dtype} with NaN/inf or non-float entries")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{fn}: steps must be a non-negative int, got {steps!r}")
    check_number(fn, "lr", lr, low=0.0, low_open=True)
    check_number(fn, "spread_penalty", spread_penalty, low=0.0)
    d = features.shape[1]
    groups = [[j] for j in range(d)] if clusters is None else [list(c) for c in clusters]
    used = [j for c in groups for j in c]
    if len(groups) < 2 or any(j < 0 or j >= d for j in used) or len(set(used)) != len(used):
        raise ValueError(f"{fn}: clusters must be at least two disjoint groups of feature "
                         f"indices in [0, {d - 1}]")
    z = features.detach().double()
    n = z.shape[0]
    logits = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        w = n * torch.softmax(logits, 0)
        loss = weighted_cross_correlation(z, w, groups) + spread_penalty * (w - 1).square().mean()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    return (n * torch.softmax(logits.detach(), 0)).to(features.dtype)
