r"""Log-loss of an ensemble (a Bayesian mixture) of models: the log of the *mean probability*,
not the mean of the log-losses ("The Universality Lens", 2025; the mixture code length of
universal prediction).

.. math:: \mathcal L_{ens} = -\frac1N\sum_i \log\Big(\sum_m w_m\, p_m(y_i\mid x_i)\Big),
          \qquad \sum_m w_m = 1

computed as a log-sum-exp of the members' log-probabilities, so confident members never
underflow. By Jensen's inequality it is at most the weighted mean of the members' log-losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._inputs import as_labels


def ensemble_log_loss(
    members: Sequence[Tensor] | Tensor,
    labels: Tensor,
    *,
    weights: Sequence[float] | Tensor | None = None,
    from_logits: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Mixture log-loss of M models.

    Args:
        members: M logits tensors (N, C) (or probabilities with ``from_logits=False``), or one
            stacked tensor (M, N, C).
        labels: (N,) class indices.
        weights: (M,) non-negative mixture weights (normalised here); uniform by default.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-sample, shape (N,)).

    Example: two models giving the true class probabilities 0.9 and 0.1 → −log 0.5 = 0.6931,
        while the mean of their log-losses is 1.2040.
    """
    fn = "ensemble_log_loss"
    stacked = members if isinstance(members, Tensor) else torch.stack(list(members))
    if stacked.dim() != 3 or not stacked.is_floating_point():
        raise ValueError(f"{fn}: members must be M float tensors of shape (N, C) (stacked "
                         f"(M, N, C)), got shape {tuple(stacked.shape)}")
    m, n, c = stacked.shape
    y = as_labels(fn, labels, n, c)
    x = stacked.detach().to(torch.float64) if not stacked.requires_grad else stacked.double()
    logp = torch.log_softmax(x, dim=-1) if from_logits else x.clamp_min(1e-300).log()
    picked = logp.gather(2, y.view(1, n, 1).expand(m, n, 1)).squeeze(2)  # (M, N)
    if weights is None:
        logw = torch.full((m, 1), -math.log(m), dtype=torch.float64, device=x.device)
    else:
        w = torch.as_tensor(weights, dtype=torch.float64, device=x.device)
        if w.shape != (m,) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"{fn}: weights must be {m} non-negative numbers with a positive "
                             f"sum, got {w.tolist()}")
        logw = (w / w.sum()).log().unsqueeze(1)
    per_sample = -torch.logsumexp(picked + logw, dim=0)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


__all__ = [
    "ensemble_log_loss",
]
