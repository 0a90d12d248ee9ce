"""``report.html``: a self-contained page (inline CSS, PNGs as data URIs) over a runs directory.

Sections: the presets' claims with verdicts; then per setting a summary table (mean ± 95% CI
over seeds), the label cleaning's scores when runs cleaned their training labels, accuracy and
ECE against noise rate, a ranking per noise rate marking the losses
not distinguishable from the best, reliability diagrams and training curves. Every PNG is
also written beside the page in ``figures/``.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import time
from pathlib import Path

from .analysis import ALPHA, MIN_SEEDS_TO_SEPARATE, ClaimVerdict, check_claim, rank
from .cleaning_report import CLEANING_NOTE, cleaning_table
from .guard import read_results, require_store
from .plots import group_runs, metric_vs_noise, reliability_grid, training_curves
from .presets import PRESETS, Claim
from .store import DB_NAME, StoredRun
from .summary import Cell, aggregate, latest_runs, memorised_text

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
.tie{background:#e8f5e9}.ok{color:#1b5e20;font-weight:600}.bad{color:#b71c1c;font-weight:600}
.mixed{color:#e65100;font-weight:600}img{max-width:100%;margin:.5em 0}.note{color:#555}
"""


class _Page:
    """The page and its figures, held in memory until :meth:`write`, so a report that fails
    half-way writes nothing."""

    def __init__(self, figures: Path) -> None:
        self.parts: list[str] = []
        self.figures = figures
        self.files: dict[str, bytes] = {}
        self.count = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def image(self, png: bytes, name: str, alt: str) -> None:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.files[f"{self.count:02d}-{slug}.png"] = png
        data = base64.b64encode(png).decode()
        self.add(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def write(self, out: Path) -> None:
        """Write the figures, then the page (atomically: a reader never sees half of it)."""
        self.figures.mkdir(parents=True, exist_ok=True)
        for stale in self.figures.glob("[0-9][0-9]-*.png"):  # figures of an earlier report
            stale.unlink()
        for name, png in self.files.items():
            (self.figures / name).write_bytes(png)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text("\n".join(self.parts), encoding="utf-8")
        os.replace(tmp, out)


def _e(x: object) -> str:
    return html.escape(str(x))


def _pm(c: Cell, metric: str, scale: float = 1.0, digits: int = 3) -> str:
    mean = scale * c.mean(metric)
    if math.isnan(mean):
        return "–"
    ci = c.ci(metric)
    if math.isnan(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {scale * ci:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _verdict_class(text: str) -> str:
    if text.startswith("reproduced"):
        return "ok"
    if text.startswith("not"):
        return "bad"
    return "mixed"


def _why_no_claims(skipped: dict[str, list[str]]) -> str:
    if not skipped:
        return "No preset with a claim was run into this directory."
    parts = [f"preset {name!r} (overridden: {', '.join(keys) or 'its settings'})"
             for name, keys in skipped.items()]
    return (f"No claim is checked: {'; '.join(parts)} ran with settings other than the "
            f"preset's, and a claim is only about the preset's own settings. Run the preset "
            f"without those overrides (seeds, losses and workers may change) to check it.")


def _claims_section(page: _Page, presets: dict[str, list[dict[str, object]]],
                    cells: list[Cell], skipped: dict[str, list[str]]) -> list[ClaimVerdict]:
    verdicts = []
    page.add("<h2>Do the papers' claims hold here?</h2>")
    if not any(presets.values()):
        page.add(f'<p class="note">{_e(_why_no_claims(skipped))}</p>')
    for name, claims in presets.items():
        for raw in claims:
            claim = Claim.from_dict(raw)
            v = check_claim(claim, cells)
            verdicts.append(v)
            preset = PRESETS.get(name)
            about = f'<p class="note">{_e(preset.description)}</p>' if preset else ""
            page.add(f"<h3>Preset <code>{_e(name)}</code></h3>{about}<p>{_e(claim.text)}</p>")
            page.add(f"<p><b>Verdict:</b> {_e(v.verdict)} (metric <code>{_e(claim.metric)}"
                     f"</code>, baseline <code>{_e(claim.baseline)}</code>).</p>")
            if v.missing:
                page.add(f'<p class="note">No runs for: {_e(", ".join(v.missing))}.</p>')
            per = v.per_challenger()
            rows = [[f"<code>{_e(k)}</code>", f'<span class="{_verdict_class(s)}">{_e(s)}</span>']
                    for k, s in per.items()]
            if rows:
                page.add(_table(["challenger", "direction of the claim"], rows))
            detail = [
                [_e(c.setting), f"{c.noise_rate:.0%}", f"<code>{_e(c.challenger)}</code>",
                 f"{c.difference:+.4f}" + ("" if math.isnan(c.interval)
                                           else f" ± {c.interval:.4f}"),
                 "n/a" if math.isnan(c.p_value) else f"{c.p_value:.3f}"]
                for c in v.checks
            ]
            if detail:
                page.add(_table(["setting", "noise", "challenger",
                                 "better by (± 95% paired t interval)", "paired p"], detail))
    return verdicts


def _setting_section(page: _Page, setting: str, cells: list[Cell],
                     runs: list[StoredRun]) -> None:
    page.add(f"<h2>{_e(setting)}</h2>")
    seeds = sorted({s for c in cells for s in c.seeds})
    few = ""
    if len(seeds) < MIN_SEEDS_TO_SEPARATE:
        width = ("there are no intervals" if len(seeds) < 2 else
                 "the intervals are very wide (one degree of freedom: t = 12.7)")
        few = (f" With {len(seeds)} seed{'s' if len(seeds) != 1 else ''} {width} and no loss "
               f"is marked worse than the best; run at least {MIN_SEEDS_TO_SEPARATE} seeds to "
               f"separate losses.")
    page.add(f'<p class="note">Seeds: {_e(", ".join(map(str, seeds)))}. Intervals are 95% t '
             f"intervals of the mean over seeds.{_e(few)}</p>")
    rows = [[f"{c.noise_rate:.0%}", f"<code>{_e(c.loss)}</code>", str(len(c.seeds)),
             _pm(c, "test_acc", 100, 1), _pm(c, "test_ece"), _pm(c, "test_nll"),
             _pm(c, "test_macro_f1", 100, 1), _pm(c, "test_coverage16"),
             memorised_text(c)] for c in cells]
    page.add(_table(["noise", "loss", "seeds", "test acc %", "ECE", "NLL", "macro-F1 %",
                     "pass@16 coverage", "noise memorised %"], rows))
    cleaning = cleaning_table(cells, runs)
    if cleaning is not None:
        page.add("<h3>Label cleaning against the injected noise</h3>")
        page.add(f'<p class="note">{_e(CLEANING_NOTE)}</p>')
        page.add(_table(*cleaning))
    rates = sorted({c.noise_rate for c in cells})
    page.image(metric_vs_noise(cells, "test_acc", f"{setting}: accuracy"),
               f"{setting} accuracy", "accuracy against noise rate")
    page.image(metric_vs_noise(cells, "test_ece", f"{setting}: calibration"),
               f"{setting} ece", "ECE against noise rate")
    for rate in rates:
        here = [c for c in cells if math.isclose(c.noise_rate, rate)]
        page.add(f"<h3>Noise {rate:.0%}: ranking by clean-test accuracy</h3>")
        ranking = rank(here, "test_acc")
        rrows = []
        for r in ranking:
            if r.rank == 1:
                mark = "best"
            elif math.isnan(r.p_value):
                mark = ("not distinguishable (no test: fewer than 2 shared seeds or "
                        "constant differences)")
            elif r.shared_seeds < MIN_SEEDS_TO_SEPARATE:
                mark = (f"not separated: only {r.shared_seeds} shared seeds, "
                        f"{MIN_SEEDS_TO_SEPARATE} needed (paired p = {r.p_value:.3f})")
            else:
                mark = ("not distinguishable from the best" if r.tied_with_best
                        else "worse than the best")
                mark += f" (paired p = {r.p_value:.3f})"
            rrows.append([str(r.rank), f"<code>{_e(r.cell.loss)}</code>",
                          _pm(r.cell, "test_acc", 100, 1), _e(mark)])
        page.add(_table(["rank", "loss", "test acc %", f"vs best (paired t-test, α={ALPHA})"],
                        rrows, ["tie" if r.tied_with_best else "" for r in ranking]))
        groups = group_runs(runs, setting, rate)
        page.image(reliability_grid(groups, f"reliability, noise {rate:.0%}"),
                   f"{setting} reliability {rate}", "reliability diagrams")
        page.image(training_curves(groups, f"training curves, noise {rate:.0%}",
                                   noisy=rate > 0),
                   f"{setting} curves {rate}", "training curves")


def write_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.html`` (and ``figures/*.png``) for ``directory/runs.db``."""
    directory = require_store(directory, fn="write_report")
    out = Path(output) if output is not None else directory / "report.html"
    if not out.parent.is_dir():
        raise ValueError(f"write_report: the directory of --output {str(out)!r} does not exist")
    if out.is_dir():
        raise ValueError(f"write_report: --output {str(out)!r} is a directory; name a file")
    runs, presets, skipped = read_results(directory, fn="write_report")
    figures = out.parent / "figures"
    if not runs:
        raise ValueError(f"write_report: {str(directory / DB_NAME)!r} holds no finished runs")
    runs, superseded = latest_runs(runs)
    cells = aggregate(runs)
    page = _Page(figures)
    page.add(f"<!doctype html><html><head><meta charset='utf-8'><title>losslab arena report"
             f"</title><style>{_CSS}</style></head><body>")
    page.add("<h1>losslab arena report</h1>")
    page.add(f'<p class="note">{len(runs)} finished runs from <code>{_e(directory / DB_NAME)}'
             f"</code>, written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
             f"Accuracy and calibration are measured on the clean test set after the last "
             f"epoch; noise is applied to training labels only.</p>")
    if superseded:
        page.add(f'<p class="note">{superseded} older row{"s" if superseded != 1 else ""} of '
                 f"the same configurations (earlier code versions, or an earlier version of your data) "
                 f"{'are' if superseded != 1 else 'is'} superseded by newer runs and not "
                 f"shown.</p>")
    _claims_section(page, presets, cells, skipped)
    for setting in dict.fromkeys(c.setting for c in cells):
        _setting_section(page, setting, [c for c in cells if c.setting == setting], runs)
    page.add("</body></html>")
    page.write(out)
    return out
