"""The report's figures (matplotlib, Agg backend), each returned as PNG bytes.

* accuracy (or any metric) against noise rate per loss, error bars = 95% t interval over seeds;
* reliability diagrams per loss, bins pooled over seeds;
* training curves (clean-test accuracy and training-label accuracy per epoch, mean over seeds).

Accuracies are in percent, as in the report's tables.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .store import StoredRun  # noqa: E402
from .summary import Cell, latest_runs, settings_of_runs  # noqa: E402

_LABELS = {
    "test_acc": "clean-test accuracy (%)",
    "test_ece": "expected calibration error (15 bins)",
    "test_macro_f1": "clean-test macro-F1 (%)",
    "test_nll": "clean-test NLL",
}


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


_BOUNDED = {"test_acc", "test_macro_f1", "test_coverage16", "test_ece"}  # metrics in [0, 1]
# Shown in percent, as the report's tables show them.
_PERCENT = {"test_acc", "test_macro_f1"}
# The least span of a bounded metric's axis (in its own units): equal results a few 1e-4
# apart must not look separated.
MIN_SPAN = 0.05


def metric_vs_noise(cells: Sequence[Cell], metric: str, title: str) -> bytes:
    """One line per loss: mean ``metric`` against noise rate with 95% CI error bars; with a
    single noise rate, one point per loss instead."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    losses = list(dict.fromkeys(c.loss for c in cells))
    rates = sorted({c.noise_rate for c in cells})
    scale = 100.0 if metric in _PERCENT else 1.0
    for i, loss in enumerate(losses):
        mine = sorted((c for c in cells if c.loss == loss), key=lambda c: c.noise_rate)
        ys = [scale * c.mean(metric) for c in mine]
        err = [0.0 if math.isnan(c.ci(metric)) else scale * c.ci(metric) for c in mine]
        xs = [i] if len(rates) == 1 else [100 * c.noise_rate for c in mine]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=loss)
    if len(rates) == 1:
        ax.set_xticks(range(len(losses)), losses, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(f"loss (training-label noise {rates[0]:.0%})")
    else:
        ax.set_xlabel("training-label noise rate (%)")
        ax.legend(fontsize=8, ncol=2)
    if metric in _BOUNDED:
        # Two-seed t intervals are wide; keep the axis on the metric's own range.
        ax.set_ylim(*bounded_limits(*ax.get_ylim(), top=scale, span=MIN_SPAN * scale))
    ax.set_ylabel(_LABELS.get(metric, metric))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def bounded_limits(low: float, high: float, *, top: float, span: float) -> tuple[float, float]:
    """Axis limits inside [0, top], at least ``span`` wide, around [low, high]."""
    low, high = max(low, 0.0), min(high, top)
    if high - low < span:
        middle = (low + high) / 2
        low, high = middle - span / 2, middle + span / 2
        if low < 0:
            low, high = 0.0, span
        elif high > top:
            low, high = top - span, top
    return low, high


def pooled_reliability(runs: Sequence[StoredRun]) -> tuple[list[float], list[float], list[float]]:
    """Per-bin (confidence, accuracy, count) pooled over runs, weighting by bin counts."""
    tables = [r.result["reliability"] for r in runs if r.result["reliability"]["count"]]
    if not tables:
        return [], [], []
    n_bins = len(tables[0]["count"])
    count = [sum(t["count"][b] for t in tables) for b in range(n_bins)]
    conf = [
        sum(t["confidence"][b] * t["count"][b] for t in tables) / count[b] if count[b] else 0.0
        for b in range(n_bins)
    ]
    acc = [
        sum(t["accuracy"][b] * t["count"][b] for t in tables) / count[b] if count[b] else 0.0
        for b in range(n_bins)
    ]
    return conf, acc, count


def reliability_grid(groups: Mapping[str, Sequence[StoredRun]], title: str) -> bytes:
    """One reliability diagram per loss, in percent: blue bar = accuracy per confidence bin,
    dashed diagonal = perfect calibration, grey bar = share of the test samples in the bin."""
    n = len(groups)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
    for ax, (loss, runs) in zip(axes.flat, groups.items(), strict=False):
        conf, acc, count = pooled_reliability(runs)
        n_bins = len(count)
        if n_bins:
            width = 1.0 / n_bins
            centers = [(b + 0.5) * width for b in range(n_bins)]
            total = sum(count)
            centers = [100 * c for c in centers]
            ax.bar(centers, [100 * c / total for c in count], width=100 * width, color="0.85",
                   label="share of samples")
            ax.bar(centers, [100 * a if k else 0.0 for a, k in zip(acc, count, strict=True)],
                   width=80 * width, color="tab:blue", alpha=0.8, label="accuracy")
            ax.plot([0, 100], [0, 100], "k--", lw=1, label="perfect calibration")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_title(loss, fontsize=9)
        ax.set_xlabel("confidence (%)", fontsize=8)
        ax.set_ylabel("accuracy / share of samples (%)", fontsize=8)
        ax.tick_params(labelsize=7)
    if n:
        axes.flat[0].legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def training_curves(groups: Mapping[str, Sequence[StoredRun]], title: str, *,
                    noisy: bool = True) -> bytes:
    """Clean-test accuracy and accuracy on the training labels (noisy ones when ``noisy``) per
    epoch in percent, mean over seeds: a rising train curve with a falling test curve is
    memorisation of the noise."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for loss, runs in groups.items():
        for ax, key in ((left, "test_acc"), (right, "train_acc")):
            curves = [r.result["curves"][key] for r in runs if r.result["curves"].get(key)]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            mean = [100 * sum(c[e] for c in curves) / len(curves) for e in range(length)]
            ax.plot(range(1, length + 1), mean, label=loss)
    left.set_title("clean-test accuracy", fontsize=9)
    right.set_title("accuracy on the noisy training labels" if noisy else
                    "accuracy on the training labels", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def group_runs(runs: Sequence[StoredRun], setting: str, rate: float) -> dict[str, list[StoredRun]]:
    """Runs of one (setting, noise rate), by loss label in first-seen order."""
    out: dict[str, list[StoredRun]] = {}
    for s, r in settings_of_runs(latest_runs(runs)[0]):
        if s == setting and math.isclose(r.config.noise_rate, rate):
            out.setdefault(r.config.label, []).append(r)
    return out
