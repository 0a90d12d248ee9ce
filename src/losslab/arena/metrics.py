"""Test-set measurements of one run: accuracy, ECE, NLL, pass@16 coverage, macro-F1 and the
reliability table.

Calibration comes from :mod:`losslab.diagnostics.calibration` (15 equal-width bins, top label,
Guo et al. 2017), so the arena and the diagnostics agree on what ECE means.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..diagnostics.calibration.metrics import (
    calibration_bins,
    expected_calibration_error,
    negative_log_likelihood,
)

N_BINS = 15
COVERAGE_N = 16


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    ece: float
    nll: float
    coverage: float
    reliability: dict[str, list[float]]


def evaluate(logits: Tensor, labels: Tensor) -> Evaluation:
    """Accuracy, ECE, NLL and the reliability table of ``logits`` (N, C) against ``labels``.

    Non-finite logits (a diverged run) give NaN calibration numbers rather than an error, so
    the run is still recorded."""
    # Counted in Python integers: a float32 mean carries rounding error (0.136000037 vs
    # 0.135999977) that later looks like real, tiny seed-to-seed variation.
    n = int(labels.numel())
    accuracy = int((logits.argmax(1) == labels).sum()) / n if n else float("nan")
    if not bool(torch.isfinite(logits).all()):
        nan = float("nan")
        return Evaluation(accuracy, nan, nan, nan, {"confidence": [], "accuracy": [], "count": []})
    ece = float(expected_calibration_error(logits, labels, n_bins=N_BINS, from_logits=True))
    nll = float(negative_log_likelihood(logits, labels, from_logits=True))
    bins = calibration_bins(logits, labels, n_bins=N_BINS, from_logits=True)
    table = {
        "confidence": bins.confidence[0].tolist(),
        "accuracy": bins.accuracy[0].tolist(),
        "count": bins.count[0].tolist(),
    }
    return Evaluation(accuracy, ece, nll, coverage(logits, labels), table)


def coverage(logits: Tensor, labels: Tensor, n: int = COVERAGE_N) -> float:
    """Mean pass@n coverage 1 - (1 - p_y)^n: the chance that n samples from the predictive
    distribution include the label (the quantity DCO, Chen et al. 2025, optimises)."""
    logp = torch.log_softmax(logits.double(), dim=1).gather(1, labels[:, None]).squeeze(1)
    # log(1 - p) = log1p(-exp(log p)); exact for small p, clamped where p rounds to 1.
    miss = torch.log1p(-logp.exp().clamp_max(1 - 1e-16))
    return float((1 - torch.exp(n * miss)).mean())


def macro_f1(pred: Tensor, labels: Tensor, num_classes: int) -> float:
    """Unweighted mean over classes of F1 = 2TP / (2TP + FP + FN); a class absent from both
    predictions and labels is skipped."""
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (labels == c)).sum())
        fp = int(((pred == c) & (labels != c)).sum())
        fn = int(((pred != c) & (labels == c)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0
