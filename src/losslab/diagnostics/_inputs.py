"""Input checks shared by the calibration diagnostics: turn ``(probs_or_logits, labels)`` into a
float64 probability matrix (N, C) and int64 labels (N,)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.validation import check_tensor

# Probabilities are accepted when every row sums to 1 within this tolerance; anything else is
# almost always logits passed without ``from_logits=True``, which we want to report, not bin.
_ROW_SUM_TOL = 1e-3


def as_probabilities(fn: str, probs_or_logits: object, from_logits: bool) -> Tensor:
    """Return (N, C) float64 probabilities. A 1-D input is a binary model: the probability (or
    logit) of class 1, expanded to two columns."""
    x = check_tensor(fn, "probs_or_logits", probs_or_logits)
    if not x.is_floating_point():
        raise TypeError(
            f"{fn}: probs_or_logits must be a floating-point tensor, got dtype {x.dtype}"
        )
    if x.dim() not in (1, 2):
        raise ValueError(
            f"{fn}: probs_or_logits must have shape (N, C), or (N,) for a binary model, "
            f"got shape {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{fn}: probs_or_logits must be finite, got NaN or inf entries")
    x = x.detach().to(torch.float64)
    if x.dim() == 1:
        p1 = torch.sigmoid(x) if from_logits else x
        x = torch.stack([1.0 - p1, p1], dim=1)
    elif from_logits:
        x = torch.softmax(x, dim=1)
    if not from_logits and x.numel() > 0:
        low, high = float(x.min()), float(x.max())
        worst = float((x.sum(dim=1) - 1.0).abs().max())
        if low < 0.0 or high > 1.0 or worst > _ROW_SUM_TOL:
            raise ValueError(
                f"{fn}: probs_or_logits must hold probabilities in [0, 1] whose rows sum to 1 "
                f"(got values in [{low:.4g}, {high:.4g}], row sums off by up to {worst:.3g}); "
                f"pass from_logits=True for logits"
            )
    return x


def as_labels(fn: str, labels: object, num_samples: int, num_classes: int) -> Tensor:
    """Return labels as (N,) int64 after checking shape and range."""
    y = check_tensor(fn, "labels", labels)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{fn}: labels must be an integer tensor of class indices, got {y.dtype}")
    if tuple(y.shape) != (num_samples,):
        raise ValueError(
            f"{fn}: labels must have shape ({num_samples},), one class index per row of "
            f"probs_or_logits, got shape {tuple(y.shape)}"
        )
    y = y.detach().long()
    if y.numel() > 0 and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"{fn}: labels must lie in [0, {num_classes - 1}] (C={num_classes}), "
            f"got values in [{int(y.min())}, {int(y.max())}]"
        )
    return y


def probabilities_and_labels(
    fn: str, probs_or_logits: object, labels: object, from_logits: bool
) -> tuple[Tensor, Tensor]:
    """Validate a (predictions, labels) pair; raise on an empty batch (no metric is defined)."""
    if not isinstance(from_logits, bool):
        raise TypeError(f"{fn}: from_logits must be a bool, got {type(from_logits).__name__}")
    p = as_probabilities(fn, probs_or_logits, from_logits)
    y = as_labels(fn, labels, p.shape[0], p.shape[1])
    if p.shape[0] == 0:
        raise ValueError(f"{fn}: probs_or_logits is empty (N=0); a calibration metric needs data")
    return p, y


def check_bins(fn: str, n_bins: object) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"{fn}: n_bins must be a positive int, got {n_bins!r}")
    return n_bins
