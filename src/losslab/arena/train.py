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

import torch
from torch import Tensor, nn

from .calibrate import fit_calibration
from .cleaning import clean_training_set
from .config import RunConfig, check_config
from .data import LM_DATASETS, is_user_dataset, training_set
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
    if is_user_dataset(config.dataset):
        from .user_data import load_user_data

        # The label mapping, split sizes and content hash of the user's data.
        extra["data"] = load_user_data(config.dataset, config.data_seed).record()
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
