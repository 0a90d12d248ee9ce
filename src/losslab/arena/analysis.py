"""Statistics for the report: rankings that mark losses not distinguishable from the best, and
verdicts on the presets' claims.

Runs of different losses with the same seed share the noisy labels, the model initialisation
and the batch order, so losses are compared with a *paired* t-test over common seeds. With
fewer than two common seeds nothing can be distinguished, and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from .presets import Claim
from .summary import Cell

ALPHA = 0.05


def paired_p_value(a: Cell, b: Cell, metric: str) -> float:
    """Two-sided paired t-test p-value of ``metric`` over the seeds both cells share; NaN with
    fewer than two shared seeds or constant non-zero differences, 1.0 when the differences are
    all zero."""
    va = dict(zip(a.seeds, a.values[metric], strict=True))
    vb = dict(zip(b.seeds, b.values[metric], strict=True))
    common = sorted(set(va) & set(vb))
    if len(common) < 2:
        return float("nan")
    diffs = [va[s] - vb[s] for s in common]
    if all(d == diffs[0] for d in diffs):
        # Constant differences: the t statistic is 0/0 (all zero) or infinite. Identical
        # non-zero differences over a few seeds are a coincidence of rounded metrics (accuracy
        # on 1000 samples moves in steps of 0.001), not certainty, so no test is claimed.
        return 1.0 if diffs[0] == 0 else float("nan")
    res = stats.ttest_rel([va[s] for s in common], [vb[s] for s in common])
    return float(res.pvalue)


@dataclass(frozen=True)
class RankRow:
    rank: int
    cell: Cell
    p_value: float  # against the best; NaN for the best itself or when untestable
    tied_with_best: bool


def rank(cells: Sequence[Cell], metric: str, higher_is_better: bool = True) -> list[RankRow]:
    """Order the cells of one (setting, noise rate) by mean ``metric``; a loss is tied with the
    best unless a paired t-test over shared seeds rejects equality at level 0.05."""
    def score(c: Cell) -> float:
        m = c.mean(metric)
        if math.isnan(m):
            return -math.inf
        return m if higher_is_better else -m

    ordered = sorted(cells, key=score, reverse=True)
    rows = []
    for i, c in enumerate(ordered):
        if i == 0:
            rows.append(RankRow(1, c, float("nan"), True))
            continue
        p = paired_p_value(c, ordered[0], metric)
        rows.append(RankRow(i + 1, c, p, math.isnan(p) or p >= ALPHA))
    return rows


@dataclass(frozen=True)
class ClaimCheck:
    """One challenger against the baseline at one noise rate."""

    setting: str
    noise_rate: float
    challenger: str
    difference: float  # challenger minus baseline, sign flipped when lower is better
    p_value: float


@dataclass(frozen=True)
class ClaimVerdict:
    claim: Claim
    checks: tuple[ClaimCheck, ...]
    missing: tuple[str, ...]  # losses the claim needs that have no runs

    @property
    def verdict(self) -> str:
        if not self.checks:
            return "not tested (no runs of the baseline and a challenger at the same setting)"
        per = self.per_challenger()
        good = [c for c, v in per.items() if v.startswith("reproduced")]
        return f"direction reproduced for {len(good)} of {len(per)} challengers"

    def per_challenger(self) -> dict[str, str]:
        out = {}
        for name in dict.fromkeys(c.challenger for c in self.checks):
            mine = [c for c in self.checks if c.challenger == name]
            margin = self.claim.margin
            wins = sum(c.difference > -margin for c in mine)
            sig = sum(c.difference > 0 and c.p_value < ALPHA for c in mine)
            if wins == len(mine) and margin > 0:
                out[name] = f"reproduced (within {margin:g} of the baseline at every rate)"
            elif wins == len(mine):
                out[name] = f"reproduced ({sig} of {len(mine)} significant at p<{ALPHA})"
            elif wins == 0:
                out[name] = "not reproduced (worse or equal at every rate)"
            else:
                out[name] = f"mixed (better at {wins} of {len(mine)} rates)"
        return out


def check_claim(claim: Claim, cells: Sequence[Cell]) -> ClaimVerdict:
    """Compare each challenger with the baseline at every (setting, rate) where both ran."""
    index = {(c.setting, c.noise_rate, c.loss): c for c in cells}
    sign = 1.0 if claim.higher_is_better else -1.0
    checks = []
    have = {c.loss for c in cells}
    for (setting, rate, loss), base in index.items():
        if loss != claim.baseline:
            continue
        if claim.noise_rates is not None and not any(
            math.isclose(rate, r) for r in claim.noise_rates
        ):
            continue
        for name in claim.challengers:
            other = index.get((setting, rate, name))
            if other is None:
                continue
            diff = sign * (other.mean(claim.metric) - base.mean(claim.metric))
            checks.append(
                ClaimCheck(setting, rate, name, diff, paired_p_value(other, base, claim.metric))
            )
    missing = tuple(n for n in (claim.baseline, *claim.challengers) if n not in have)
    return ClaimVerdict(claim, tuple(checks), missing)
