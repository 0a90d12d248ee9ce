r"""Gaussian naive-Bayes linear probe with a shared diagonal variance (Zheng et al., "Revisiting
Discriminative vs. Generative Classifiers: Theory and Implications", ICML 2023,
arXiv 2302.02334; official ``ML-GSAI/Revisiting-Dis-vs-Gen-Classifiers``).

On frozen features: priors π_k = n_k/n, class means μ_k, per-class biased variances
v_{k,j} = Var(x_j | y = k) + ε, pooled with the priors into one shared diagonal variance
v_j = Σ_k π_k v_{k,j}. Sharing the variance makes the decision rule linear in x:

.. math:: \mathrm{score}_k(x) = \log\pi_k - \tfrac12\sum_j (x_j - \mu_{k,j})^2 / v_j .

This is *not* scikit-learn's ``GaussianNB``, which keeps per-class variances (a quadratic
boundary). Statistics stream over batches with Chan et al.'s pooled mean / sum-of-squares
update, so ``partial_fit`` over any split equals ``fit`` on the concatenation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._core.validation import check_number


class GaussianNaiveBayesProbe(nn.Module):
    """Shared-diagonal-variance Gaussian naive Bayes; ``forward(x)`` returns the linear scores
    (n, K) and ``log_likelihood(x)`` adds the shared ``−½Σ log(2π v_j)`` term.

    Example: X = [[0,0],[1,1],[3,1],[4,3],[5,2]], y = [0,0,1,1,1]: pooled
        v = [0.5, 0.5]; x = [2, 1] scores [−3.4162907, −5.5108256] → class 0.
    """

    count: Tensor
    mean: Tensor
    sq_dev: Tensor

    def __init__(self, num_features: int, num_classes: int, *, eps: float = 1e-9) -> None:
        super().__init__()
        fn = "GaussianNaiveBayesProbe"
        for name, v in (("num_features", num_features), ("num_classes", num_classes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
        self.eps = check_number(fn, "eps", eps, low=0.0)
        self.num_features = num_features
        self.num_classes = num_classes
        f64 = torch.float64
        self.register_buffer("count", torch.zeros(num_classes, dtype=f64))
        self.register_buffer("mean", torch.zeros(num_classes, num_features, dtype=f64))
        self.register_buffer("sq_dev", torch.zeros(num_classes, num_features, dtype=f64))

    def _check(self, fn: str, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"{fn}: features must have shape (n, {self.num_features}), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if labels is not None:
            if labels.is_floating_point() or labels.shape != (x.shape[0],):
                raise ValueError(f"{fn}: labels must be integer class indices of shape "
                                 f"({x.shape[0]},)")
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(f"{fn}: labels must lie in [0, {self.num_classes - 1}]")
            # NaN features would poison the running means and variances for every later batch
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"{fn}: features must be finite, got NaN or inf entries")
        return x.detach().to(torch.float64)

    @torch.no_grad()
    def partial_fit(self, x: Tensor, labels: Tensor) -> GaussianNaiveBayesProbe:
        """Merge one batch into the per-class statistics (Chan et al. 1979)."""
        xs = self._check("GaussianNaiveBayesProbe.partial_fit", x, labels)
        y = labels.long()
        n_b = torch.bincount(y, minlength=self.num_classes).to(torch.float64)
        sums = torch.zeros_like(self.mean).index_add_(0, y, xs)
        mean_b = sums / n_b.clamp_min(1).unsqueeze(1)
        dev = xs - mean_b[y]
        sq_b = torch.zeros_like(self.sq_dev).index_add_(0, y, dev.square())
        total = self.count + n_b
        delta = mean_b - self.mean
        w = (self.count * n_b / total.clamp_min(1)).unsqueeze(1)
        self.sq_dev = self.sq_dev + sq_b + delta.square() * w
        self.mean = self.mean + delta * (n_b / total.clamp_min(1)).unsqueeze(1)
        self.count = total
        return self

    def fit(self, x: Tensor, labels: Tensor) -> GaussianNaiveBayesProbe:
        """Reset and fit on one batch."""
        self.count.zero_()
        self.mean.zero_()
        self.sq_dev.zero_()
        return self.partial_fit(x, labels)

    def _estimates(self) -> tuple[Tensor, Tensor, Tensor]:
        if bool((self.count == 0).any()):
            missing = torch.nonzero(self.count == 0).flatten().tolist()
            raise ValueError(f"GaussianNaiveBayesProbe: classes {missing} have no samples; "
                             f"fit on data containing every class")
        prior = self.count / self.count.sum()
        class_var = self.sq_dev / self.count.unsqueeze(1) + self.eps  # biased, as in the paper
        shared = (prior.unsqueeze(1) * class_var).sum(0)
        return prior, self.mean, shared

    @property
    def shared_variance(self) -> Tensor:
        return self._estimates()[2]

    def forward(self, x: Tensor) -> Tensor:
        xs = self._check("GaussianNaiveBayesProbe.forward", x)
        prior, mean, var = self._estimates()
        quad = ((xs.unsqueeze(1) - mean.unsqueeze(0)).square() / var).sum(-1)
        return prior.log() - 0.5 * quad

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log π_k + log N(x; μ_k, diag(v)): the scores plus the shared normaliser."""
        var = self._estimates()[2]
        return self.forward(x) - 0.5 * (var * 2 * math.pi).log().sum()

    def linear_form(self) -> tuple[Tensor, Tensor]:
        """The equivalent linear classifier (weight (K, d), bias (K,)): scores differ from
        ``x ↦ weight x + bias`` only by a class-independent term."""
        prior, mean, var = self._estimates()
        weight = mean / var
        bias = prior.log() - 0.5 * (mean.square() / var).sum(1)
        return weight, bias
