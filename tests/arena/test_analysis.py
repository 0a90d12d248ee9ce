"""Rankings, paired tests and claim verdicts (losslab.arena.analysis / summary)."""

import math

import pytest

from losslab.arena.analysis import check_claim, paired_p_value, rank
from losslab.arena.presets import PRESETS, Claim
from losslab.arena.settings import to_sweep
from losslab.arena.summary import Cell, format_table
from losslab.arena.sweep import check_sweep

S = "mnist1d, cnn, symmetric noise, 20 epochs"


def cell(loss, accs, rate=0.4, seeds=None):
    seeds = tuple(range(len(accs))) if seeds is None else tuple(seeds)
    zeros = tuple(0.0 for _ in accs)
    values = {"test_acc": tuple(accs), "test_ece": zeros, "test_nll": zeros,
              "test_macro_f1": tuple(accs), "noise_memorised": zeros}
    return Cell(S, rate, loss, seeds, values)


def test_mean_std_ci_hand_values():
    c = cell("ce", [0.7, 0.8, 0.9])
    assert c.mean("test_acc") == pytest.approx(0.8)
    assert c.std("test_acc") == pytest.approx(0.1)
    # t_{0.975, 2} = 4.302653
    assert c.ci("test_acc") == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert math.isnan(cell("ce", [0.5]).ci("test_acc"))


def test_paired_p_value_hand_value():
    a = cell("gce", [0.80, 0.82, 0.84])
    b = cell("ce", [0.70, 0.71, 0.75])
    # d = (.1, .11, .09): t = 0.1 / (0.01 / sqrt 3) = sqrt(300); with 2 degrees of freedom
    # the two-sided p-value is 1 - t / sqrt(2 + t^2).
    t = math.sqrt(300)
    assert paired_p_value(a, b, "test_acc") == pytest.approx(1 - t / math.sqrt(2 + t * t),
                                                             rel=1e-6)
    # Pairing is by seed, not by position.
    shuffled = cell("ce", [0.71, 0.75, 0.70], seeds=[1, 2, 0])
    assert paired_p_value(a, shuffled, "test_acc") == paired_p_value(a, b, "test_acc")
    assert math.isnan(paired_p_value(cell("a", [0.5]), cell("b", [0.4]), "test_acc"))
    # Constant differences: equal means p = 1, a constant non-zero gap is not testable.
    assert paired_p_value(cell("a", [0.5, 0.6]), cell("b", [0.5, 0.6]), "test_acc") == 1.0
    assert math.isnan(paired_p_value(cell("a", [0.5, 0.6]), cell("b", [0.4, 0.5]), "test_acc"))


def test_rank_marks_ties_with_the_best():
    best = cell("sce", [0.85, 0.86, 0.84])
    close = cell("gce", [0.84, 0.87, 0.83])  # noisy differences: not distinguishable
    far = cell("ce", [0.70, 0.72, 0.69])  # consistently worse
    rows = rank([far, close, best], "test_acc")
    assert [r.cell.loss for r in rows] == ["sce", "gce", "ce"]
    assert [r.tied_with_best for r in rows] == [True, True, False]
    assert rows[2].p_value < 0.05 <= rows[1].p_value
    lower = rank([far, best], "test_acc", higher_is_better=False)
    assert lower[0].cell.loss == "ce"


def test_claim_verdicts():
    claim = Claim("robust beats ce", "test_acc", "ce", ("gce", "mae", "sce", "absent"))
    cells = [
        cell("ce", [0.8, 0.8], 0.2), cell("ce", [0.7, 0.72], 0.4),
        cell("gce", [0.85, 0.84], 0.2), cell("gce", [0.8, 0.81], 0.4),  # better at both
        cell("mae", [0.5, 0.5], 0.2), cell("mae", [0.6, 0.6], 0.4),  # worse at both
        cell("sce", [0.9, 0.9], 0.2), cell("sce", [0.6, 0.6], 0.4),  # mixed
    ]
    v = check_claim(claim, cells)
    per = v.per_challenger()
    assert per["gce"].startswith("reproduced")
    assert per["mae"].startswith("not reproduced")
    assert per["sce"].startswith("mixed")
    assert v.missing == ("absent",)
    assert v.verdict == "direction reproduced for 1 of 3 challengers"
    only40 = check_claim(Claim("x", "test_acc", "ce", ("sce",), noise_rates=(0.4,)), cells)
    assert only40.per_challenger()["sce"].startswith("not reproduced")
    assert check_claim(claim, [cell("gce", [0.9])]).verdict.startswith("not tested")
    # A "no worse than" claim with a margin.
    tolerant = Claim("x", "test_acc", "ce", ("sce",), margin=0.11)
    assert check_claim(tolerant, cells).per_challenger()["sce"].startswith("reproduced (within")


def test_claim_round_trip_and_presets_are_well_formed():
    for preset in PRESETS.values():
        for claim in preset.claims:
            assert Claim.from_dict(claim.to_dict()) == claim
            # The labels the preset's own runs get (loss, head, calibration).
            names = {c.label for c in check_sweep(to_sweep(dict(preset.settings))[0])}
            assert claim.baseline in names and set(claim.challengers) <= names


def test_format_table():
    text = format_table([cell("ce", [0.7, 0.8]), cell("gce", [0.9, 0.9])])
    lines = text.splitlines()
    assert lines[0] == f"setting: {S}"
    assert "75.0 ± 7.1" in lines[3] and lines[3].split()[1] == "ce"
    assert "90.0 ± 0.0" in lines[4]
