"""The claims table: every preset claim stored in a results directory, one row per paper,
challenger and setting, with its verdict, effect and the run time behind it (the claim's full
text is in the HTML report).

``losslab report DIR --claims`` prints it as Markdown; ``docs/arena.md`` holds the table of the
shipped presets. The verdicts are those of the HTML report (:mod:`losslab.arena.analysis`):
the claim's direction at every noise rate of the setting, a paired t-test over shared seeds.
The effect is the mean per-seed difference, challenger minus baseline, signed so that positive
favours the claim, with the half-width of its 95 % paired t interval; accuracies and F1 are in
percentage points. The run time is the summed wall time of the runs the row compares (each run
is one process on one thread).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .analysis import ClaimCheck, ClaimVerdict, check_claim
from .guard import read_results
from .presets import Claim
from .summary import Cell, aggregate

# Metrics reported in percentage points; the others (ECE, NLL) in their own units.
_PERCENT_METRICS = ("test_acc", "test_macro_f1", "test_coverage16")


@dataclass(frozen=True)
class ClaimRow:
    preset: str
    claim: Claim
    challenger: str
    setting: str
    verdict: str
    checks: tuple[ClaimCheck, ...]
    run_seconds: float

    def effect(self) -> str:
        """``rate: +diff ± half-width`` per noise rate, in points for percentage metrics."""
        scale, unit = (100.0, " pts") if self.claim.metric in _PERCENT_METRICS else (1.0, "")
        digits = 1 if scale == 100.0 else 3
        parts = []
        for c in self.checks:
            ci = "" if math.isnan(c.interval) else f" ± {scale * c.interval:.{digits}f}"
            parts.append(f"{c.noise_rate:.0%}: {scale * c.difference:+.{digits}f}{ci}{unit}")
        return "; ".join(parts)


def claim_rows(presets: dict[str, list[Claim]], cells: Sequence[Cell]) -> list[ClaimRow]:
    """One row per (preset claim, challenger, setting) that has runs of both sides."""
    rows = []
    for preset, claims in presets.items():
        for claim in claims:
            verdict = check_claim(claim, cells)
            for challenger in dict.fromkeys(c.challenger for c in verdict.checks):
                mine = [c for c in verdict.checks if c.challenger == challenger]
                for setting in dict.fromkeys(c.setting for c in mine):
                    here = tuple(c for c in mine if c.setting == setting)
                    per = ClaimVerdict(claim, here, ()).per_challenger()[challenger]
                    rows.append(ClaimRow(preset, claim, challenger, setting, per, here,
                                         _run_seconds(cells, claim, challenger, here)))
    return rows


def _run_seconds(cells: Sequence[Cell], claim: Claim, challenger: str,
                 checks: Sequence[ClaimCheck]) -> float:
    wanted = {(c.setting, c.noise_rate) for c in checks}
    total = 0.0
    for cell in cells:
        if (cell.setting, cell.noise_rate) in wanted and cell.loss in (claim.baseline, challenger):
            total += sum(s for s in cell.values.get("run_seconds", ()) if not math.isnan(s))
    return total


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claim_statement(claim: Claim, challenger: str) -> str:
    """The claim in one line: "`gce` beats `ce` on test_acc"."""
    if claim.margin > 0:
        return (f"`{challenger}` within {claim.margin:g} of `{claim.baseline}` on "
                f"{claim.metric}")
    verb = "beats" if claim.higher_is_better else "is below"
    return f"`{challenger}` {verb} `{claim.baseline}` on {claim.metric}"


def _dataset(setting: str) -> str:
    return setting.split(",", 1)[0]


def format_claims_markdown(rows: Sequence[ClaimRow]) -> str:
    """The rows as a Markdown table (preset, paper, claim, setting, verdict, effect, run time)
    and a line counting distinct claims: (paper, challenger, baseline, metric, data set)."""
    if not rows:
        return "No preset claims with runs of both sides in this directory.\n"
    head = ("| preset | paper | claim | setting | verdict | effect (± 95% CI) | run time |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n")
    lines = [
        f"| `{r.preset}` | {_md(r.claim.paper or '–')} | "
        f"{_md(claim_statement(r.claim, r.challenger))} | {_md(r.setting)} | {_md(r.verdict)} | "
        f"{_md(r.effect())} | {r.run_seconds:.0f} s |"
        for r in rows
    ]

    def key(r: ClaimRow) -> tuple[str, ...]:
        c = r.claim
        return (c.paper, r.challenger, c.baseline, c.metric, _dataset(r.setting))

    distinct = {key(r) for r in rows}
    held = {key(r) for r in rows if r.verdict.startswith("reproduced")}
    datasets = sorted({_dataset(r.setting) for r in rows})
    summary = (f"\n{len(distinct)} claims (paper, challenger and data set) on {len(datasets)} "
               f"data sets ({', '.join(datasets)}); {len(held)} reproduced in direction in at "
               f"least one setting.\n")
    return head + "\n".join(lines) + "\n" + summary


def claims_markdown(directory: str | Path) -> str:
    """The claims table of the preset claims recorded in ``directory/runs.db``."""
    runs, raw, _ = read_results(directory, fn="report")
    presets = {name: [Claim.from_dict(c) for c in claims] for name, claims in raw.items()}
    return format_claims_markdown(claim_rows(presets, aggregate(runs)))
