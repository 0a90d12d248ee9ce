"""The report's table of label cleaning (:mod:`losslab.arena.cleaning`): per cleaned loss and
noise rate, how well the flagged samples match the injected noise, what was removed per class,
and what the cleaning cost. Kept apart from the training path, so editing the page never
changes a run's key."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from .store import StoredRun
from .summary import Cell, cleaned_cell, settings_of_runs

CLEANING_NOTE = (
    "Flagged: share of the training set the cleaning flagged. Precision: share of the flagged "
    "samples whose label was corrupted; recall: share of the corrupted labels that were "
    "flagged. Noise left: share of wrong labels among the samples the final model trained on "
    "(the injected rate without cleaning). Flagged per class: by the observed (noisy) label, "
    "mean over seeds. Cleaning: wall seconds of the K fold trainings and the filter; the cost "
    "is that time over the rest of the run. Mean ± 95% t interval over seeds."
)


def _pm(c: Cell, metric: str, scale: float = 100.0, digits: int = 1) -> str:
    mean = c.mean(metric)
    if math.isnan(mean):
        return "–"
    ci = c.ci(metric)
    text = f"{scale * mean:.{digits}f}"
    return text if math.isnan(ci) else f"{text} ± {scale * ci:.{digits}f}"


def _per_class(runs: Sequence[StoredRun]) -> str:
    counts = [r.result.get("extra", {}).get("cleaning", {}).get("flagged_per_class")
              for r in runs]
    have = [c for c in counts if c]
    if not have:
        return "–"
    means = [sum(col) / len(have) for col in zip(*have, strict=True)]
    return " ".join(f"{k}:{m:.0f}" for k, m in enumerate(means))


def cleaning_table(
    cells: Sequence[Cell], runs: Sequence[StoredRun]
) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows (HTML-escaped) for the cleaned cells of one setting, or None when no
    run there cleaned its labels."""
    cleaned = [c for c in cells if cleaned_cell(c)]
    if not cleaned:
        return None
    members: dict[tuple[str, float, str], list[StoredRun]] = {}
    for setting, r in settings_of_runs(runs):
        members.setdefault((setting, r.config.noise_rate, r.config.label), []).append(r)
    rows = []
    for c in cleaned:
        mine = [r for r in members.get((c.setting, c.noise_rate, c.loss), [])
                if r.config.seed in c.seeds]
        run_s, clean_s = c.mean("run_seconds"), c.mean("cleaning_seconds")
        cost = clean_s / (run_s - clean_s) if run_s > clean_s else float("nan")
        rows.append([
            f"{c.noise_rate:.0%}", f"<code>{html.escape(c.loss)}</code>", str(len(c.seeds)),
            _pm(c, "cleaning_flagged"), _pm(c, "cleaning_precision"),
            _pm(c, "cleaning_recall"), _pm(c, "noise_left"), html.escape(_per_class(mine)),
            _pm(c, "cleaning_seconds", 1.0), "–" if math.isnan(cost) else f"{cost:.1f}×",
        ])
    header = ["noise", "loss", "seeds", "flagged %", "precision %", "recall %",
              "noise left %", "flagged per class", "cleaning s", "cost"]
    return header, rows
