"""Aggregate runs over seeds: mean, sample standard deviation and a t-based confidence interval
of each metric per (setting, noise rate, loss), and the text table ``losslab arena`` prints."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from .config import RunConfig
from .store import StoredRun
from .user_sources import display_name, display_names


@dataclass(frozen=True)
class Cell:
    """One loss at one setting, aggregated over seeds."""

    setting: str
    noise_rate: float
    loss: str
    seeds: tuple[int, ...]
    values: dict[str, tuple[float, ...]]  # metric -> one value per seed, in ``seeds`` order

    def __post_init__(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Cell: seeds must be distinct, got {self.seeds!r} for {self.loss!r}")

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


# Fields that tell settings apart beyond dataset, model, noise, imbalance, holdout and epochs;
# shown in the label only when they differ from the RunConfig default.
_DETAIL_FIELDS = ("num_samples", "data_seed", "batch_size", "lr", "weight_decay", "width")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def setting_of(config: RunConfig, noise: str | None = None, *,
               dataset_name: str | None = None) -> str:
    """Everything but loss, head, calibration, noise rate and seed, as a readable label that
    differs whenever one of those fields differs. ``noise`` overrides the noise kind (a clean
    run is the rate-0 point of every noise kind, see :func:`settings_of_runs`);
    ``dataset_name`` is how the dataset is shown (default: its file or loader name; see
    :func:`settings_of_runs` for names that clash within a store)."""
    # Not the noise *rate*: rates are the x axis within one setting.
    kind = config.noise if noise is None else noise
    shown = display_name(config.dataset) if dataset_name is None else dataset_name
    parts = [shown, config.model,
             "clean labels" if kind == "none" else f"{kind} noise"]
    if config.imbalance > 1:
        parts.append(f"long-tail {config.imbalance:g}:1")
    if config.holdout > 0:
        parts.append(f"{config.holdout!r} held out")
    parts.append(f"{config.epochs} epochs")
    parts += [f"{k}={getattr(config, k)!r}" for k in _DETAIL_FIELDS
              if getattr(config, k) != _DEFAULTS[k]]
    return ", ".join(parts)


def settings_of_runs(runs: Sequence[StoredRun]) -> list[tuple[str, StoredRun]]:
    """(setting, run) pairs. A clean run (noise 'none', rate 0) joins every noisy setting with
    otherwise equal fields as its 0% point, and forms a 'clean labels' setting only when there
    is none. Data files of the same name in different folders get distinct labels
    (:func:`~.user_sources.display_names`)."""
    names = display_names(r.config.dataset for r in runs)

    def setting(config: RunConfig, noise: str | None = None) -> str:
        return setting_of(config, noise, dataset_name=names[config.dataset])

    noisy: dict[str, list[str]] = {}
    for r in runs:
        if r.config.noise != "none":
            kinds = noisy.setdefault(setting(r.config, "none"), [])
            if r.config.noise not in kinds:
                kinds.append(r.config.noise)
    out = []
    for r in runs:
        if r.config.noise != "none":
            out.append((setting(r.config), r))
            continue
        for kind in noisy.get(setting(r.config), ["none"]):
            out.append((setting(r.config, kind), r))
    return out


def config_settings(configs: Sequence[RunConfig]) -> set[str]:
    """The setting labels a set of configurations is reported under."""
    return {s for s, _ in settings_of_runs([StoredRun("", c, {}) for c in configs])}


def latest_runs(runs: Sequence[StoredRun]) -> tuple[list[StoredRun], int]:
    """Keep, per configuration, only the newest row (``runs`` in insertion order); return the
    kept runs in store order and how many older rows (earlier code or data versions) they
    supersede. Equal configurations differ only in their key's code version or data hash."""
    newest: dict[str, StoredRun] = {}
    for r in runs:
        cfg = json.dumps(r.config.to_dict(), sort_keys=True, default=repr)
        newest[cfg] = r
    kept = {id(r) for r in newest.values()}
    order: list[StoredRun] = []
    for r in runs:
        if id(r) in kept:
            order.append(r)
    return order, len(runs) - len(order)


METRICS = (
    "test_acc", "test_ece", "test_nll", "test_macro_f1", "test_coverage16", "noise_memorised",
    "noise_left", "cleaning_precision", "cleaning_recall", "cleaning_flagged",
)
# Wall times, per run: the whole run and the label cleaning's share of it (NaN: no cleaning).
TIMINGS = ("run_seconds", "cleaning_seconds")


def _timing(run: StoredRun, name: str) -> float:
    if name == "run_seconds":
        return float(run.result.get("seconds", float("nan")))
    cleaning = run.result.get("extra", {}).get("cleaning")
    return float(cleaning["seconds"]) if cleaning else float("nan")


def aggregate(runs: Sequence[StoredRun]) -> list[Cell]:
    """Group runs into cells, keeping first-seen order of settings, rates and losses. Older
    rows of a configuration are dropped (:func:`latest_runs`), and if one cell still meets a
    seed twice the later row wins, so a cell never holds a seed twice."""
    runs, _ = latest_runs(runs)
    groups: dict[tuple[str, float, str], dict[int, StoredRun]] = {}
    for setting, r in settings_of_runs(runs):
        key = (setting, r.config.noise_rate, r.config.label)
        groups.setdefault(key, {})[r.config.seed] = r
    cells = []
    for (setting, rate, loss), by_seed in groups.items():
        members = [by_seed[s] for s in sorted(by_seed)]
        values = {
            m: tuple(float(r.metrics.get(m, float("nan"))) for r in members) for m in METRICS
        }
        values.update({t: tuple(_timing(r, t) for r in members) for t in TIMINGS})
        cells.append(Cell(setting, rate, loss, tuple(r.config.seed for r in members), values))
    return cells


def cleaned_cell(c: Cell) -> bool:
    """Whether the runs of ``c`` cleaned their training labels (they have a cleaning time)."""
    return "cleaning_seconds" in c.values and not math.isnan(c.mean("cleaning_seconds"))


def _pct(c: Cell, metric: str) -> str:
    mean = c.mean(metric)
    return "–" if math.isnan(mean) else f"{100 * mean:.1f}"


def memorised_text(c: Cell) -> str:
    """Share of noisy training labels memorised, in %; "–" where no label was noisy (clean
    labels, language models)."""
    if c.noise_rate == 0:
        return "–"
    return f"{100 * c.mean('noise_memorised'):.1f}"


def format_table(cells: Sequence[Cell]) -> str:
    """Clean-test accuracy (mean ± std over seeds, in %) and ECE per loss and noise rate; with
    one seed there is no spread, and no "± 0.0" is shown; cleaned runs also the cleaning's
    precision, recall, noise left and cost in seconds."""
    cleaned = any(cleaned_cell(c) for c in cells)
    header = ["noise", "loss", "seeds", "test acc %", "ECE", "NLL", "memorised %"]
    if cleaned:
        header += ["flag prec %", "flag recall %", "noise left %", "cleaning s", "run s"]
    rows = []
    for c in cells:
        row = [
            f"{c.noise_rate:.0%}",
            c.loss,
            str(len(c.seeds)),
            _spread(c, "test_acc", 100, 1),
            _spread(c, "test_ece", 1, 3),
            f"{c.mean('test_nll'):.3f}",
            memorised_text(c),
        ]
        if cleaned:
            seconds = c.mean("cleaning_seconds")
            row += [_pct(c, "cleaning_precision"), _pct(c, "cleaning_recall"),
                    _pct(c, "noise_left"), "–" if math.isnan(seconds) else f"{seconds:.1f}",
                    f"{c.mean('run_seconds'):.1f}"]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    settings = list(dict.fromkeys(c.setting for c in cells))
    return "\n".join([f"setting: {'; '.join(settings)}", *lines])


def _spread(c: Cell, metric: str, scale: float, digits: int) -> str:
    mean = f"{scale * c.mean(metric):.{digits}f}"
    if len(c.seeds) < 2:
        return mean
    return f"{mean} ± {scale * c.std(metric):.{digits}f}"
