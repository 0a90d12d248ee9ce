"""One arena run: build data, model and loss from a :class:`RunConfig`, train, and measure.

The loss comes only from the registry (``losslab.get_loss``). Losses whose record lists
``extra_inputs=("sample_ids",)`` (ALDR-KL keeps a per-sample state) get the training-set index
of every row of the batch. Training uses Adam with a one-cycle learning-rate schedule (:mod:`.fit`); the
final model is evaluated on the clean test set (no early stopping on clean labels, which a
practitioner with noisy labels would not have).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from .._core.registry import loss_info
from .calibrate import fit_calibration
from .config import RunConfig, build_loss, check_config
from .data import LM_DATASETS, load_split, prepare
from .fit import Batch, fit
from .metrics import evaluate, macro_f1
from .models import build_model
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
    if config.holdout > 0:
        # Held out after the noise, so the calibration split has noisy labels too.
        perm = torch.from_numpy(rng.permutation(len(y)))
        cut = int(round(config.holdout * len(y)))
        hold, keep = perm[:cut].sort().values, perm[cut:].sort().values
        x_hold, y_hold = x[hold], y[hold]
        x, y, y_clean = x[keep], y[keep], y_clean[keep]
    x_test = torch.from_numpy(data.x_test)
    y_test = torch.from_numpy(data.y_test)
    n = len(y)

    torch.manual_seed(config.seed)
    model = build_model(
        config.model, x.shape[-1], data.num_classes, config.width,
        head=config.head, head_distance=config.head_distance, head_n=config.head_n,
    )
    loss_fn = build_loss(config.loss, n)
    wants_ids = "sample_ids" in loss_info(config.loss.name).extra_inputs
    gen = torch.Generator().manual_seed(config.seed)

    def batches() -> Iterator[Batch]:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, config.batch_size):
            ids = order[i : i + config.batch_size]
            logits = model(x[ids])
            extra = {"sample_ids": ids} if wants_ids else {}
            hits = int((logits.detach().argmax(1) == y[ids]).sum())
            yield loss_fn(logits, y[ids], **extra), hits, len(ids)

    curves, diverged = fit(
        model, config, math.ceil(n / config.batch_size), batches,
        lambda: evaluate(_predict(model, x_test), y_test),
    )

    logits_test = _predict(model, x_test)
    temperature = 1.0
    if config.calibration != "none":
        temperature = fit_calibration(config.calibration, _predict(model, x_hold), y_hold)
        logits_test = logits_test / temperature
    ev = evaluate(logits_test, y_test)
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
    }
    return RunResult(
        metrics=metrics,
        curves=curves,
        reliability=ev.reliability,
        seconds=time.perf_counter() - start,
        diverged=diverged,
        extra={"train_size": n, "temperature": temperature},
    )


def _mean(mask: Tensor) -> float:
    # Exact share in Python floats (a float32 mean is off in the 8th digit).
    return int(mask.sum()) / mask.numel() if mask.numel() else 0.0


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    model.eval()
    out: Tensor = model(x)
    return out
