"""Aggregate runs over seeds: mean, sample standard deviation and a t-based confidence interval
of each metric per (setting, noise rate, loss), and the text table ``losslab arena`` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from .config import RunConfig
from .store import StoredRun


@dataclass(frozen=True)
class Cell:
    """One loss at one setting, aggregated over seeds."""

    setting: str
    noise_rate: float
    loss: str
    seeds: tuple[int, ...]
    values: dict[str, tuple[float, ...]]  # metric -> one value per seed, in ``seeds`` order

    def mean(self, metric: str) -> float:
        v = self.values[metric]
        return sum(v) / len(v)

    def std(self, metric: str) -> float:
        """Sample standard deviation (ddof=1); 0 for a single seed."""
        v = self.values[metric]
        if len(v) < 2:
            return 0.0
        m = self.mean(metric)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    def ci(self, metric: str, level: float = 0.95) -> float:
        """Half-width of the t confidence interval of the mean; NaN for a single seed."""
        n = len(self.values[metric])
        if n < 2:
            return float("nan")
        t = float(stats.t.ppf(0.5 + level / 2, n - 1))
        return t * self.std(metric) / math.sqrt(n)


def setting_of(config: RunConfig) -> str:
    """Everything but loss, noise rate and seed, as a short readable label."""
    # Not the noise *rate*: rates are the x axis within one setting.
    noise = "clean labels" if config.noise == "none" else f"{config.noise} noise"
    parts = [config.dataset, config.model, noise]
    if config.imbalance > 1:
        parts.append(f"long-tail {config.imbalance:g}:1")
    if config.holdout > 0:
        parts.append(f"{config.holdout:.0%} held out")
    parts.append(f"{config.epochs} epochs")
    return ", ".join(parts)


METRICS = (
    "test_acc", "test_ece", "test_nll", "test_macro_f1", "test_coverage16", "noise_memorised"
)


def aggregate(runs: Sequence[StoredRun]) -> list[Cell]:
    """Group runs into cells, keeping first-seen order of settings, rates and losses."""
    groups: dict[tuple[str, float, str], list[StoredRun]] = {}
    for r in runs:
        key = (setting_of(r.config), r.config.noise_rate, r.config.label)
        groups.setdefault(key, []).append(r)
    cells = []
    for (setting, rate, loss), members in groups.items():
        members = sorted(members, key=lambda r: r.config.seed)
        values = {
            m: tuple(float(r.metrics.get(m, float("nan"))) for r in members) for m in METRICS
        }
        cells.append(Cell(setting, rate, loss, tuple(r.config.seed for r in members), values))
    return cells


def format_table(cells: Sequence[Cell]) -> str:
    """Clean-test accuracy (mean ± std over seeds, in %) and ECE per loss and noise rate."""
    header = ["noise", "loss", "seeds", "test acc %", "ECE", "NLL", "memorised %"]
    rows = []
    for c in cells:
        rows.append(
            [
                f"{c.noise_rate:.0%}",
                c.loss,
                str(len(c.seeds)),
                f"{100 * c.mean('test_acc'):.1f} ± {100 * c.std('test_acc'):.1f}",
                f"{c.mean('test_ece'):.3f} ± {c.std('test_ece'):.3f}",
                f"{c.mean('test_nll'):.3f}",
                f"{100 * c.mean('noise_memorised'):.1f}",
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    settings = list(dict.fromkeys(c.setting for c in cells))
    return "\n".join([f"setting: {'; '.join(settings)}", *lines])
