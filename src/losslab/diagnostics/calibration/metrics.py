"""Calibration metrics as pure functions of ``(probs_or_logits, labels)``.

Every function takes probabilities (N, C) — or, with ``from_logits=True``, logits (N, C) — and
class-index labels (N,). A 1-D input is a binary model's probability (or logit) of class 1.
Computation is in float64 and the result is a 0-dim float64 tensor.

Binning conventions
-------------------
* ``binning="width"``: ``n_bins`` equal-width bins on [0, 1], right-closed ``(lo, hi]`` with 0 in
  the first bin (Guo et al. 2017). torchmetrics uses left-closed bins; the two agree unless a
  confidence lies exactly on an edge.
* ``binning="mass"``: equal-mass (quantile) bins — the samples sorted by confidence are cut into
  ``n_bins`` runs whose sizes differ by at most one, larger runs first as in
  ``numpy.array_split`` (Nguyen & O'Connor 2015; the "AdaECE" of
  Mukhoti et al. 2020). Tied confidences may fall on either side of a cut.

References: Naeini, Cooper, Hauskrecht, AAAI 2015 (ECE, MCE); Guo, Pleiss, Sun, Weinberger,
ICML 2017 (arXiv 1706.04599); Kull et al., NeurIPS 2019 (classwise ECE, arXiv 1910.12656);
Nixon et al., CVPR-W 2019 (SCE, ACE, arXiv 1904.01685); Brier 1950.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..._core.validation import check_choice
from .._inputs import check_bins, probabilities_and_labels

BINNINGS = ("width", "mass")
NORMS = ("l1", "l2", "max")


@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin statistics of a reliability diagram (all tensors have shape (K, n_bins), K = 1
    for top-label binning and K = C for classwise binning).

    ``confidence`` and ``accuracy`` are the bin means (0 in an empty bin), ``count`` the number of
    samples, and ``lower``/``upper`` the bin's confidence range (the fixed edges for width
    binning, the smallest and largest member for mass binning, NaN when empty)."""

    confidence: Tensor
    accuracy: Tensor
    count: Tensor
    lower: Tensor
    upper: Tensor


def _bin_index(conf: Tensor, n_bins: int, binning: str) -> Tensor:
    """Bin of every entry of ``conf`` (N, K), binned column by column."""
    if binning == "width":
        inner = torch.linspace(0.0, 1.0, n_bins + 1, dtype=conf.dtype, device=conf.device)[1:-1]
        return torch.bucketize(conf, inner, right=False)
    n = conf.shape[0]
    rank = torch.empty_like(conf, dtype=torch.long)
    order = conf.argsort(dim=0, stable=True)
    ar = torch.arange(n, device=conf.device).unsqueeze(1).expand_as(order)
    rank.scatter_(0, order, ar)
    # numpy.array_split sizes: the first n % n_bins bins hold one sample more.
    q, rem = divmod(n, n_bins)
    big = rem * (q + 1)
    small = torch.div(rank - big, max(q, 1), rounding_mode="floor") + rem
    return torch.where(rank < big, torch.div(rank, q + 1, rounding_mode="floor"), small)


def bin_statistics(conf: Tensor, hit: Tensor, n_bins: int, binning: str) -> CalibrationBins:
    """Bin float64 confidences ``conf`` (N, K) with outcomes ``hit`` (N, K) per column."""
    k = conf.shape[1]
    idx = _bin_index(conf, n_bins, binning)
    flat = (idx + torch.arange(k, device=conf.device) * n_bins).reshape(-1)
    size = k * n_bins

    def total(src: Tensor) -> Tensor:
        out = torch.zeros(size, dtype=torch.float64, device=conf.device)
        return out.scatter_add_(0, flat, src.reshape(-1)).reshape(k, n_bins)

    count = total(torch.ones_like(conf))
    safe = count.clamp_min(1.0)
    confidence = total(conf) / safe
    accuracy = total(hit.to(torch.float64)) / safe
    if binning == "width":
        edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=conf.device)
        lower = edges[:-1].expand(k, n_bins).clone()
        upper = edges[1:].expand(k, n_bins).clone()
    else:
        inf = torch.full((size,), float("inf"), dtype=torch.float64, device=conf.device)
        flat_conf = conf.reshape(-1)
        lower = inf.scatter_reduce(0, flat, flat_conf, "amin").reshape(k, n_bins)
        upper = (-inf).scatter_reduce(0, flat, flat_conf, "amax").reshape(k, n_bins)
    empty = count == 0
    lower = lower.masked_fill(empty, float("nan")) if binning == "mass" else lower
    upper = upper.masked_fill(empty, float("nan")) if binning == "mass" else upper
    return CalibrationBins(confidence, accuracy, count, lower, upper)


def reduce_gap(bins: CalibrationBins, norm: str) -> Tensor:
    """ECE-type reduction per row of the bin tables: (K,) values."""
    gap = (bins.accuracy - bins.confidence).abs()
    weight = bins.count / bins.count.sum(dim=1, keepdim=True)
    if norm == "l1":
        return (weight * gap).sum(dim=1)
    if norm == "l2":
        return (weight * gap.square()).sum(dim=1).sqrt()
    return gap.masked_fill(bins.count == 0, 0.0).amax(dim=1)


def _top_label(p: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    conf, pred = p.max(dim=1)
    return conf.unsqueeze(1), (pred == y).unsqueeze(1)


def calibration_bins(
    probs_or_logits: Tensor,
    labels: Tensor,
    *,
    n_bins: int = 15,
    binning: str = "width",
    classwise: bool = False,
    from_logits: bool = False,
) -> CalibrationBins:
    """Per-bin confidence, accuracy and count: the data behind a reliability diagram.

    Top-label (default): bins the max probability, accuracy is ``argmax == label``.
    ``classwise=True``: bins every column p[:, k] against ``label == k`` (K = C rows).
    """
    return _binned("calibration_bins", probs_or_logits, labels, n_bins, binning, classwise,
                   from_logits)


def _binned(
    fn: str,
    probs_or_logits: Tensor,
    labels: Tensor,
    n_bins: int,
    binning: str,
    classwise: bool,
    from_logits: bool,
    norm: str | None = None,
) -> CalibrationBins:
    """Validate the arguments of the binned metric ``fn`` (``norm`` too when given) and bin:
    the top label against correctness, or (``classwise``) every column against ``label == k``."""
    p, y = probabilities_and_labels(fn, probs_or_logits, labels, from_logits)
    check_bins(fn, n_bins)
    if norm is not None:
        check_choice(fn, "norm", norm, NORMS)
    check_choice(fn, "binning", binning, BINNINGS)
    if classwise:
        hit = torch.nn.functional.one_hot(y, p.shape[1]).bool()
        return bin_statistics(p, hit, n_bins, binning)
    conf, hit = _top_label(p, y)
    return bin_statistics(conf, hit, n_bins, binning)


def expected_calibration_error(
    probs_or_logits: Tensor,
    labels: Tensor,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "width",
    from_logits: bool = False,
) -> Tensor:
    r"""Top-label expected calibration error.

    .. math::

        \mathrm{ECE} = \sum_b \frac{n_b}{N}\,\big|\mathrm{acc}_b - \mathrm{conf}_b\big|

    with ``conf_b`` the mean max-probability and ``acc_b`` the accuracy of bin b. ``norm="l2"``
    gives :math:`\sqrt{\sum_b (n_b/N)(\mathrm{acc}_b-\mathrm{conf}_b)^2}` and ``norm="max"`` the
    maximum calibration error (MCE, max over non-empty bins). ``binning="mass"`` uses
    equal-mass bins (AdaECE).

    Args:
        probs_or_logits: (N, C) probabilities, or logits with ``from_logits=True``; (N,) for binary.
        labels: (N,) class indices.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]); y = torch.tensor([0, 1, 1])
        >>> expected_calibration_error(p, y, n_bins=2)   # bins (.5,1]: conf .7333 acc .6667
        tensor(0.0667, dtype=torch.float64)

    Reference: Naeini et al., AAAI 2015; Guo et al., ICML 2017 (arXiv 1706.04599).
    """
    bins = _binned("expected_calibration_error", probs_or_logits, labels, n_bins, binning,
                   False, from_logits, norm)
    return reduce_gap(bins, norm)[0]


def maximum_calibration_error(
    probs_or_logits: Tensor,
    labels: Tensor,
    *,
    n_bins: int = 15,
    binning: str = "width",
    from_logits: bool = False,
) -> Tensor:
    r"""Maximum calibration error :math:`\max_b |\mathrm{acc}_b - \mathrm{conf}_b|` over
    non-empty bins (Naeini et al., AAAI 2015); same as ``expected_calibration_error(norm="max")``.

    Example: the three samples of :func:`expected_calibration_error` give 0.0667 with 2 bins.
    """
    bins = _binned("maximum_calibration_error", probs_or_logits, labels, n_bins, binning,
                   False, from_logits)
    return reduce_gap(bins, "max")[0]


def classwise_calibration_error(
    probs_or_logits: Tensor,
    labels: Tensor,
    *,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "width",
    from_logits: bool = False,
) -> Tensor:
    r"""Classwise ECE (Kull et al. 2019), the "static calibration error" SCE of Nixon et al.:

    .. math::

        \mathrm{cwECE} = \frac1C\sum_{k}\sum_b \frac{n_{bk}}{N}\,
        \big|\overline{[y=k]}_{bk} - \overline{p_k}_{bk}\big|

    every class column p[:, k] is binned on its own against the indicator ``label == k``.

    Example: p = [[.9,.1],[.6,.4],[.3,.7]], y = [0,1,1], 2 bins → class 0: bins {.3} (acc 0)
    and {.9,.6} (acc .5) give (.3 + 2·.25)/3; class 1 is symmetric; value 0.2667.

    Reference: Kull et al., NeurIPS 2019 (arXiv 1910.12656); Nixon et al. 2019 (arXiv 1904.01685).
    """
    bins = _binned("classwise_calibration_error", probs_or_logits, labels, n_bins, binning,
                   True, from_logits, norm)
    return reduce_gap(bins, norm).mean()


def adaptive_calibration_error(
    probs_or_logits: Tensor,
    labels: Tensor,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
) -> Tensor:
    r"""Adaptive calibration error ACE of Nixon et al. (2019): classwise, equal-mass bins, and an
    unweighted mean over classes and (non-empty) bins,

    .. math:: \mathrm{ACE} = \frac{1}{CR}\sum_k\sum_{r=1}^{R}
              \big|\mathrm{acc}(r,k) - \mathrm{conf}(r,k)\big|.

    For the top-label equal-mass ECE ("AdaECE") use
    ``expected_calibration_error(binning="mass")``.

    Example: p = [[.9,.1],[.6,.4],[.3,.7]], y = [0,1,1], 3 bins → every bin holds one sample;
    class 0 gaps (.3, .6, .1), class 1 gaps (.1, .6, .3): ACE = 2.0/6 = 0.3333.

    Reference: Nixon, Dusenberry, Zhang, Jerfel, Tran, CVPR-W 2019 (arXiv 1904.01685).
    """
    bins = _binned("adaptive_calibration_error", probs_or_logits, labels, n_bins, "mass", True,
                   from_logits)
    gap = (bins.accuracy - bins.confidence).abs()
    filled = bins.count > 0
    return gap[filled].mean()


def brier_score(
    probs_or_logits: Tensor, labels: Tensor, *, from_logits: bool = False
) -> Tensor:
    r"""Multiclass Brier score :math:`\frac1N\sum_i\sum_k (p_{ik} - [y_i = k])^2` (Brier 1950),
    in [0, 2]. For a binary model it is twice scikit-learn's ``brier_score_loss``, which scores
    only the positive class.

    Example: p = [[.9,.1],[.6,.4],[.3,.7]], y = [0,1,1] → (0.02 + 0.72 + 0.18)/3 = 0.3067.
    """
    fn = "brier_score"
    p, y = probabilities_and_labels(fn, probs_or_logits, labels, from_logits)
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)
    return (p - onehot).square().sum(dim=1).mean()


def negative_log_likelihood(
    probs_or_logits: Tensor, labels: Tensor, *, from_logits: bool = False, eps: float = 1e-12
) -> Tensor:
    r"""Mean negative log-likelihood :math:`-\frac1N\sum_i \log p_{i,y_i}`.

    From logits it is the exact log-softmax (no clamp); from probabilities the probability is
    clamped at ``eps`` so a confident mistake gives a large finite value (-log 1e-12 = 27.6).

    Example: p = [[.9,.1],[.6,.4],[.3,.7]], y = [0,1,1] → (0.1054 + 0.9163 + 0.3567)/3 = 0.4594.
    """
    fn = "negative_log_likelihood"
    p, y = probabilities_and_labels(fn, probs_or_logits, labels, from_logits)
    if from_logits:
        # Exact log-probabilities from the logits: softmax-then-log would underflow to -inf.
        z = probs_or_logits.detach().to(torch.float64)
        logp = torch.log_softmax(torch.stack([torch.zeros_like(z), z], 1) if z.dim() == 1 else z, 1)
        return -logp.gather(1, y.unsqueeze(1)).mean()
    return -p.gather(1, y.unsqueeze(1)).clamp_min(eps).log().mean()


__all__ = [
    "CalibrationBins",
    "adaptive_calibration_error",
    "brier_score",
    "calibration_bins",
    "classwise_calibration_error",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
]
