"""Cleaning the training labels before training: confident learning with cleanlab, the
practitioner's alternative to a noise-robust loss.

``cleaning="cleanlab"`` (Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR):

1. split the noisy training set into K folds, stratified by the observed label
   (``cleaning_folds``, K = 5 by default);
2. for each fold, train a fresh copy of the run's own model with the run's own loss on the
   other K-1 folds (same epochs, batch size and learning rate) and predict class
   probabilities for the held-out fold, so every sample is scored by a model that never saw it;
3. ``cleanlab.filter.find_label_issues(labels, pred_probs)`` flags the likely label errors;
4. train the run's model on the samples not flagged.

``cleaning="cleanlab-relabel"`` keeps every sample and replaces each flagged label by the
class the out-of-sample probabilities rank first.

The arena knows which labels it corrupted, so :func:`cleaning_metrics` scores the cleaning
against the injected noise: precision and recall of the flagged samples, the noise rate left
in what is trained on, and the samples flagged per (observed) class. cleanlab is an optional
dependency (``pip install 'losslab[clean]'``), imported only when a run cleans.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .cleaning_checks import CLEANINGS as CLEANINGS
from .cleaning_checks import CLEANLAB_INSTALL as CLEANLAB_INSTALL
from .cleaning_checks import check_cleaning as check_cleaning
from .cleaning_checks import check_folds as check_folds
from .cleaning_checks import cleanlab_version
from .config import RunConfig
from .fit import train_classifier


def stratified_folds(labels: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """The fold (0..K-1) of every sample: each class is shuffled and dealt round-robin, the
    deal continuing across classes, so fold sizes differ by at most one and every fold holds
    every class with at least K samples."""
    fold_of = np.empty(len(labels), dtype=np.int64)
    start = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold_of[idx] = (start + np.arange(len(idx))) % folds
        start += len(idx)
    return fold_of


def fold_seed(seed: int, fold: int) -> int:
    """Initialisation and batch-order seed of fold ``fold``'s model (never the final model's)."""
    return 1000 * (fold + 1) + seed


@torch.no_grad()
def _probabilities(model: torch.nn.Module, x: Tensor) -> Tensor:
    model.eval()
    logits: Tensor = model(x)
    return torch.softmax(logits.double(), dim=1)


def out_of_sample_probabilities(
    config: RunConfig, x: Tensor, y: Tensor, num_classes: int, fold_of: np.ndarray
) -> tuple[np.ndarray, int]:
    """Class probabilities (N, C) of every sample from the model trained on the other folds,
    and how many fold models diverged (their rows are uniform: they carry no evidence)."""
    probs = np.empty((len(y), num_classes), dtype=np.float64)
    diverged = 0
    for fold in range(int(fold_of.max()) + 1):
        held = torch.from_numpy(np.flatnonzero(fold_of == fold))
        train = torch.from_numpy(np.flatnonzero(fold_of != fold))
        model, _, failed = train_classifier(
            config, x[train], y[train], num_classes, seed=fold_seed(config.seed, fold)
        )
        p = _probabilities(model, x[held]).numpy()
        if failed or not np.isfinite(p).all():
            diverged += 1
            p = np.full_like(p, 1.0 / num_classes)
        probs[held.numpy()] = p
    return probs, diverged


def find_issues(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """cleanlab's label issues (boolean mask), with its default ``prune_by_noise_rate`` filter;
    one process, so a run stays on its one thread and is deterministic."""
    from cleanlab.filter import find_label_issues

    mask = find_label_issues(labels, pred_probs, n_jobs=1)
    return np.asarray(mask, dtype=bool)


def cleaning_metrics(
    flagged: np.ndarray,
    observed: np.ndarray,
    clean: np.ndarray,
    trained_labels: np.ndarray,
    kept: np.ndarray,
    num_classes: int,
) -> tuple[dict[str, float], list[int]]:
    """The cleaning scored against the injected noise.

    ``flagged``: samples the cleaning flagged; ``observed``/``clean``: noisy and true labels;
    ``trained_labels``/``kept``: the labels after cleaning and the samples trained on. Returns
    the metrics (``cleaning_precision`` = flagged and mislabelled / flagged, left out when
    nothing is flagged; ``cleaning_recall`` = flagged and mislabelled / mislabelled, left out
    without noise; ``cleaning_flagged`` = flagged / all; ``noise_left`` = share of wrong labels
    among the samples trained on) and the flagged count per observed class."""
    wrong = observed != clean
    hits = int((flagged & wrong).sum())
    metrics: dict[str, float] = {"cleaning_flagged": int(flagged.sum()) / len(flagged)}
    if flagged.any():
        metrics["cleaning_precision"] = hits / int(flagged.sum())
    if wrong.any():
        metrics["cleaning_recall"] = hits / int(wrong.sum())
    metrics["noise_left"] = (
        int((trained_labels[kept] != clean[kept]).sum()) / int(kept.sum()) if kept.any() else 0.0
    )
    per_class = np.bincount(observed[flagged], minlength=num_classes)
    return metrics, [int(v) for v in per_class]


@dataclass(frozen=True)
class Cleaned:
    """The training set after cleaning: which samples to train on, with which labels."""

    kept: Tensor  # (N,) bool
    labels: Tensor  # (N,) int64, the observed labels with flagged ones replaced when relabelling
    metrics: dict[str, float]
    extra: dict[str, Any]


def clean_training_set(
    config: RunConfig, x: Tensor, y: Tensor, y_clean: Tensor, num_classes: int
) -> Cleaned:
    """Run ``config.cleaning`` on the noisy training set ``(x, y)``; ``y_clean`` only scores
    it. The extra holds the cleaning's cost in seconds (the K fold trainings and the filter)."""
    start = time.perf_counter()
    rng = np.random.default_rng([config.seed, 2])
    observed = y.numpy()
    fold_of = stratified_folds(observed, config.cleaning_folds, rng)
    probs, diverged = out_of_sample_probabilities(config, x, y, num_classes, fold_of)
    flagged = find_issues(observed, probs)
    labels = observed.copy()
    if config.cleaning == "cleanlab-relabel":
        labels[flagged] = probs[flagged].argmax(axis=1)
        kept = np.ones(len(labels), dtype=bool)
    else:
        kept = ~flagged
    seconds = time.perf_counter() - start
    metrics, per_class = cleaning_metrics(
        flagged, observed, y_clean.numpy(), labels, kept, num_classes
    )
    changed = labels != observed
    if changed.any():
        # Of the labels the relabelling changed, the share it set to the true class.
        metrics["relabel_correct"] = (
            int((labels[changed] == y_clean.numpy()[changed]).sum()) / int(changed.sum())
        )
    extra = {
        "method": config.cleaning,
        "folds": config.cleaning_folds,
        "seconds": seconds,
        "flagged": int(flagged.sum()),
        "flagged_per_class": per_class,
        "diverged_folds": diverged,
        "cleanlab": cleanlab_version(),
    }
    return Cleaned(torch.from_numpy(kept), torch.from_numpy(labels), metrics, extra)
