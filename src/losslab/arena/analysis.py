"""Statistics for the report: rankings that mark losses not distinguishable from the best, and
verdicts on the presets' claims.

Runs of different losses with the same seed share the noisy labels, the model initialisation
and the batch order, so losses are compared with a *paired* t-test over common seeds. With
fewer than two common seeds nothing can be tested. With two (one degree of freedom) the test
is so weak and so sensitive to near-constant differences that a loss is only marked *worse*
than the best with at least :data:`MIN_SEEDS_TO_SEPARATE` shared seeds; the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from .presets import Claim
from .summary import Cell

ALPHA = 0.05
# Fewer shared seeds never separate a loss from the best (one d.o.f. is too little).
MIN_SEEDS_TO_SEPARATE = 3
# Per-seed differences closer than this count as equal: far below one test sample in 10^6, far
# above the float32 rounding of metrics stored by older versions (~1e-7).
CONSTANT_TOL = 5e-7


def shared_seeds(a: Cell, b: Cell) -> int:
    return len(set(a.seeds) & set(b.seeds))


def paired_p_value(a: Cell, b: Cell, metric: str) -> float:
    """Two-sided paired t-test p-value of ``metric`` over the seeds both cells share; NaN with
    fewer than two shared seeds or constant non-zero differences, 1.0 when the differences are
    all zero. Differences within :data:`CONSTANT_TOL` of each other count as constant."""
    va = dict(zip(a.seeds, a.values[metric], strict=True))
    vb = dict(zip(b.seeds, b.values[metric], strict=True))
    common = sorted(set(va) & set(vb))
    if len(common) < 2:
        return float("nan")
    diffs = [va[s] - vb[s] for s in common]
    if max(diffs) - min(diffs) <= CONSTANT_TOL:
        # Constant differences: the t statistic is 0/0 (all zero) or infinite. Identical
        # non-zero differences over a few seeds are a coincidence of rounded metrics (accuracy
        # on 1000 samples moves in steps of 0.001), not certainty, so no test is claimed.
        return 1.0 if all(abs(d) <= CONSTANT_TOL for d in diffs) else float("nan")
    res = stats.ttest_rel([va[s] for s in common], [vb[s] for s in common])
    return float(res.pvalue)


def paired_interval(a: Cell, b: Cell, metric: str, level: float = 0.95) -> float:
    """Half-width of the t confidence interval of the mean per-seed difference ``a - b`` over
    the seeds both cells share; NaN with fewer than two shared seeds."""
    va = dict(zip(a.seeds, a.values[metric], strict=True))
    vb = dict(zip(b.seeds, b.values[metric], strict=True))
    diffs = [va[s] - vb[s] for s in sorted(set(va) & set(vb))]
    n = len(diffs)
    if n < 2:
        return float("nan")
    mean = sum(diffs) / n
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)


@dataclass(frozen=True)
class RankRow:
    rank: int
    cell: Cell
    p_value: float  # against the best; NaN for the best itself or when untestable
    tied_with_best: bool
    shared_seeds: int = 0  # seeds in common with the best


def rank(cells: Sequence[Cell], metric: str, higher_is_better: bool = True) -> list[RankRow]:
    """Order the cells of one (setting, noise rate) by mean ``metric``; a loss is tied with the
    best unless it shares at least :data:`MIN_SEEDS_TO_SEPARATE` seeds with it and a paired
    t-test over them rejects equality at level 0.05."""
    def score(c: Cell) -> float:
        m = c.mean(metric)
        if math.isnan(m):
            return -math.inf
        return m if higher_is_better else -m

    ordered = sorted(cells, key=score, reverse=True)
    rows = []
    for i, c in enumerate(ordered):
        n = shared_seeds(c, ordered[0])
        if i == 0:
            rows.append(RankRow(1, c, float("nan"), True, n))
            continue
        p = paired_p_value(c, ordered[0], metric)
        separated = n >= MIN_SEEDS_TO_SEPARATE and not math.isnan(p) and p < ALPHA
        rows.append(RankRow(i + 1, c, p, not separated, n))
    return rows


@dataclass(frozen=True)
class ClaimCheck:
    """One challenger against the baseline at one noise rate."""

    setting: str
    noise_rate: float
    challenger: str
    difference: float  # challenger minus baseline, sign flipped when lower is better
    p_value: float
    shared_seeds: int = 0
    # Half-width of the 95% t interval of the paired difference over shared seeds (NaN: < 2).
    interval: float = float("nan")


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
            if margin > 0:
                out[name] = _margin_verdict(mine, margin)
                continue
            wins = sum(c.difference > 0 for c in mine)
            sig = sum(
                c.difference > 0 and c.p_value < ALPHA and c.shared_seeds >= MIN_SEEDS_TO_SEPARATE
                for c in mine
            )
            if wins == len(mine) and all(
                c.shared_seeds < MIN_SEEDS_TO_SEPARATE for c in mine
            ):
                out[name] = f"reproduced (not tested: fewer than {MIN_SEEDS_TO_SEPARATE} seeds)"
            elif wins == len(mine):
                out[name] = f"reproduced ({sig} of {len(mine)} significant at p<{ALPHA})"
            elif wins == 0:
                out[name] = "not reproduced (worse or equal at every rate)"
            else:
                out[name] = f"mixed (better at {wins} of {len(mine)} rates)"
        return out


def within_margin(difference: float, margin: float) -> bool:
    """``difference`` (challenger minus baseline, in the better direction) is no worse than
    ``-margin``, up to :data:`CONSTANT_TOL`: a result exactly at the margin is within it,
    whatever the floating-point rounding of the two means (84.7% - 85.7% is
    -0.010000000000000009)."""
    return difference >= -margin - CONSTANT_TOL


def _margin_verdict(checks: Sequence[ClaimCheck], margin: float) -> str:
    inside = sum(within_margin(c.difference, margin) for c in checks)
    if inside == len(checks):
        where = "at every rate" if len(checks) > 1 else ""
        return f"reproduced (within the margin of {margin:g} of the baseline{' ' + where if where else ''})"
    if inside == 0:
        return (f"not reproduced (outside the margin: more than {margin:g} worse than the "
                f"baseline{' at every rate' if len(checks) > 1 else ''})")
    return f"mixed (within the margin of {margin:g} at {inside} of {len(checks)} rates)"


def check_claim(claim: Claim, cells: Sequence[Cell]) -> ClaimVerdict:
    """Compare each challenger with the baseline at every (setting, rate) where both ran,
    limited to the claim's settings and noise rates when it names them."""
    index = {(c.setting, c.noise_rate, c.loss): c for c in cells}
    sign = 1.0 if claim.higher_is_better else -1.0
    checks = []
    have = {c.loss for c in cells}
    for (setting, rate, loss), base in index.items():
        if loss != claim.baseline:
            continue
        if claim.settings is not None and setting not in claim.settings:
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
                ClaimCheck(setting, rate, name, diff, paired_p_value(other, base, claim.metric),
                           shared_seeds(other, base),
                           paired_interval(other, base, claim.metric))
            )
    missing = tuple(n for n in (claim.baseline, *claim.challengers) if n not in have)
    return ClaimVerdict(claim, tuple(checks), missing)
