"""One arena run: build data, model and loss from a :class:`RunConfig`, train, and measure.

The loss comes only from the registry (``losslab.get_loss``). Losses whose record lists
``extra_inputs=("sample_ids",)`` (ALDR-KL keeps a per-sample state) get the training-set index
of every row of the batch. Training uses Adam with a one-cycle learning-rate schedule (:mod:`.fit`); the
final model is evaluated on the clean test set (no early stopping on clean labels, which a
practitioner with noisy labels would not have). With ``cleaning`` set, the training set is
cleaned first (:mod:`.cleaning`) and the model trains on what the cleaning kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .calibrate import fit_calibration
from .cleaning import clean_training_set
from .config import RunConfig, check_config
from .data import LM_DATASETS, load_split, prepare
from .fit import train_classifier
from .metrics import evaluate, macro_f1
from .result import RunResult


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(config: RunConfig, *, threads: int = 1) -> RunResult:
    """Train and evaluate one configuration. Deterministic for a given config and thread count.

    The config is checked first (:func:`check_config`), so a bad value fails before training."""
    check_config(config)
    with _threads(threads):
        if config.dataset in LM_DATASETS:
            from .lm import run_lm

            return run_lm(config)
        return _run(config)


@dataclass(frozen=True)
class TrainingSet:
    """One run's tensors: the noisy training set (after the held-out cut) with the clean labels
    it came from, the held-out calibration split, and the clean test set."""

    x: Tensor
    y: Tensor
    y_clean: Tensor
    x_hold: Tensor
    y_hold: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int


def training_set(config: RunConfig) -> TrainingSet:
    """The data of one run, deterministic given its config: the seed fixes the long-tail
    subsample, the label noise and the held-out split."""
    split = load_split(config.dataset, config.num_samples, config.data_seed)
    rng = np.random.default_rng([config.seed, 1])
    data = prepare(
        split,
        noise=config.noise,
        noise_rate=config.noise_rate,
        imbalance=config.imbalance,
        rng=rng,
    )
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    y_clean = torch.from_numpy(data.y_train_clean)
    x_hold, y_hold = x[:0], y[:0]
    if config.holdout > 0:
        # Held out after the noise, so the calibration split has noisy labels too.
        perm = torch.from_numpy(rng.permutation(len(y)))
        cut = int(round(config.holdout * len(y)))
        hold, keep = perm[:cut].sort().values, perm[cut:].sort().values
        x_hold, y_hold = x[hold], y[hold]
        x, y, y_clean = x[keep], y[keep], y_clean[keep]
    return TrainingSet(x, y, y_clean, x_hold, y_hold, torch.from_numpy(data.x_test),
                       torch.from_numpy(data.y_test), data.num_classes)


def _run(config: RunConfig) -> RunResult:
    start = time.perf_counter()
    data = training_set(config)
    x, y, y_clean, x_test, y_test = data.x, data.y, data.y_clean, data.x_test, data.y_test
    x_fit, y_fit = x, y
    cleaned = None
    if config.cleaning != "none":
        cleaned = clean_training_set(config, x, y, y_clean, data.num_classes)
        x_fit, y_fit = x[cleaned.kept], cleaned.labels[cleaned.kept]

    model, curves, diverged = train_classifier(
        config, x_fit, y_fit, data.num_classes, seed=config.seed,
        evaluate_epoch=lambda m: evaluate(_predict(m, x_test), y_test),
    )

    logits_test = _predict(model, x_test)
    temperature = 1.0
    if config.calibration != "none":
        temperature = fit_calibration(config.calibration, _predict(model, data.x_hold),
                                      data.y_hold)
        logits_test = logits_test / temperature
    ev = evaluate(logits_test, y_test)
    # Measured on the whole noisy training set with its observed labels, cleaned or not.
    train_pred = _predict(model, x).argmax(1)
    flipped = y != y_clean
    metrics = {
        "test_acc": ev.accuracy,
        "test_ece": ev.ece,
        "test_nll": ev.nll,
        "test_coverage16": ev.coverage,
        "test_macro_f1": macro_f1(logits_test.argmax(1), y_test, data.num_classes),
        "train_clean_acc": _mean(train_pred == y_clean),
        # Share of the mislabelled training samples the model predicts with their wrong label:
        # how much label noise was memorised.
        "noise_memorised": _mean((train_pred == y)[flipped]) if bool(flipped.any()) else 0.0,
        "observed_noise_rate": _mean(flipped),
        # The share of wrong labels in what the model trained on (a cleaning lowers it).
        "noise_left": _mean(flipped),
    }
    extra: dict[str, object] = {"train_size": len(y_fit), "temperature": temperature}
    if cleaned is not None:
        metrics.update(cleaned.metrics)
        extra["cleaning"] = cleaned.extra
    return RunResult(
        metrics=metrics,
        curves=curves,
        reliability=ev.reliability,
        seconds=time.perf_counter() - start,
        diverged=diverged,
        extra=extra,
    )


def _mean(mask: Tensor) -> float:
    # Exact share in Python floats (a float32 mean is off in the 8th digit).
    return int(mask.sum()) / mask.numel() if mask.numel() else 0.0


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    model.eval()
    out: Tensor = model(x)
    return out
