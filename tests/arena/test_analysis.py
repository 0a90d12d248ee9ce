"""Rankings, paired tests and claim verdicts (losslab.arena.analysis / summary)."""

import dataclasses
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


def test_float32_rounded_gaps_count_as_constant_not_as_certainty():
    # The reviewer's case: per-seed gaps 0.136000037 and 0.135999977 are the same gap of 136
    # test samples, rounded differently in float32. A t-test on them gives p ~ 1e-7.
    import torch

    a = tuple(float(torch.tensor(v, dtype=torch.float32)) for v in (0.701, 0.702))
    b = tuple(float(torch.tensor(v, dtype=torch.float32)) for v in (0.565, 0.566))
    assert a[0] - b[0] != a[1] - b[1]  # the exact-equality guard would run a t-test
    assert math.isnan(paired_p_value(cell("ce", a), cell("focal", b), "test_acc"))


def test_two_seeds_never_mark_worse_three_can():
    best = cell("ce", [0.80, 0.90])
    worse = cell("focal", [0.70, 0.801])  # p ~ 0.003 with one degree of freedom
    p = paired_p_value(worse, best, "test_acc")
    assert p < 0.05
    rows = rank([worse, best], "test_acc")
    assert rows[1].shared_seeds == 2 and rows[1].tied_with_best
    rows3 = rank([cell("focal", [0.70, 0.801, 0.75]), cell("ce", [0.80, 0.90, 0.85])],
                 "test_acc")
    assert rows3[1].shared_seeds == 3 and not rows3[1].tied_with_best


def test_accuracy_is_an_exact_fraction():
    import torch

    from losslab.arena.metrics import evaluate

    labels = torch.arange(1000) % 10
    logits = torch.nn.functional.one_hot(labels, 10).float()
    logits[:136] = logits[:136].roll(1, dims=1)  # 136 wrong
    assert evaluate(logits, labels).accuracy == 864 / 1000  # exact, not float32's 0.86400002


def _stored(key, acc, **changes):
    from losslab.arena.config import LossSpec, RunConfig
    from losslab.arena.store import StoredRun

    loss = changes.pop("loss", "ce")
    metrics = dict.fromkeys(("test_acc", "test_ece", "test_nll", "noise_memorised"), 0.0)
    metrics["test_acc"] = acc
    return StoredRun(key, RunConfig(loss=LossSpec(loss), **changes), {"metrics": metrics})


def test_rerun_after_a_code_change_supersedes_old_rows_without_repeating_seeds():
    from losslab.arena.summary import aggregate, latest_runs

    old = [_stored("old0", 0.5, seed=0), _stored("old1", 0.6, seed=1)]
    new = [_stored("new0", 0.7, seed=0), _stored("new1", 0.8, seed=1)]
    kept, superseded = latest_runs(old + new)
    assert [r.key for r in kept] == ["new0", "new1"] and superseded == 2
    (c,) = aggregate(old + new)
    assert c.seeds == (0, 1) and c.values["test_acc"] == (0.7, 0.8)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        Cell(S, 0.4, "ce", (0, 0), {"test_acc": (0.5, 0.7)})


def test_different_settings_are_different_cells():
    from losslab.arena.summary import aggregate

    runs = [_stored("a", 0.5), _stored("b", 0.6, lr=0.003), _stored("c", 0.7, num_samples=1000),
            _stored("d", 0.8, width=16), _stored("e", 0.9, batch_size=32),
            _stored("f", 0.1, weight_decay=1e-4), _stored("g", 0.2, data_seed=1)]
    cells = aggregate(runs)
    assert len(cells) == 7 and len({c.setting for c in cells}) == 7
    assert cells[0].setting == "mnist1d, cnn, symmetric noise, 20 epochs"
    assert cells[1].setting.endswith("20 epochs, lr=0.003")


def test_clean_runs_are_the_zero_point_of_each_noisy_setting():
    from losslab.arena.summary import aggregate

    runs = [_stored("a", 0.9, noise_rate=0.0), _stored("b", 0.5),
            _stored("c", 0.95, noise_rate=0.0, lr=0.5)]
    cells = aggregate(runs)
    assert [(c.setting, c.noise_rate) for c in cells] == [
        ("mnist1d, cnn, symmetric noise, 20 epochs", 0.0),
        ("mnist1d, cnn, symmetric noise, 20 epochs", 0.4),
        ("mnist1d, cnn, clean labels, 20 epochs, lr=0.5", 0.0),
    ]


def test_claims_are_bound_to_their_preset_setting_and_rates():
    from losslab.arena.presets import PRESETS
    from losslab.cli.arena import claims_to_record

    preset = PRESETS["minimal"]
    own = check_sweep(to_sweep(dict(preset.settings))[0])
    claims = claims_to_record(preset, own)
    assert len(claims) == 4  # one per paper
    claim = claims[0]
    assert all(c.settings == (S,) and c.noise_rates == (0.4,) for c in claims)
    assert Claim.from_dict(claim.to_dict()) == claim
    # Overridden settings (another dataset, size, rate) record no claim; more seeds do.
    for changes in ({"dataset": "digits"}, {"num_samples": 400}, {"noise_rates": [0.2]}):
        other = check_sweep(to_sweep({**preset.settings, **changes})[0])
        assert claims_to_record(preset, other) == ()
    more = check_sweep(to_sweep({**preset.settings, "seeds": 3})[0])
    assert claims_to_record(preset, more) == claims
    # check_claim ignores runs of other settings and rates.
    here = [cell("ce", [0.7, 0.7]), cell("gce", [0.8, 0.81])]
    elsewhere = [dataclasses.replace(c, setting="digits, mlp, symmetric noise, 20 epochs")
                 for c in (cell("ce", [0.9, 0.9]), cell("sce", [0.5, 0.5]))]
    other_rate = [cell("ce", [0.9, 0.9], 0.2), cell("gce", [0.5, 0.5], 0.2)]
    v = check_claim(claim, here + elsewhere + other_rate)
    assert [(c.setting, c.noise_rate, c.challenger) for c in v.checks] == [(S, 0.4, "gce")]


def test_claim_with_two_seeds_says_it_is_untested():
    claim = Claim("x", "test_acc", "ce", ("gce",))
    two = check_claim(claim, [cell("ce", [0.7, 0.72]), cell("gce", [0.8, 0.83])])
    assert two.per_challenger()["gce"] == "reproduced (not tested: fewer than 3 seeds)"
    three = check_claim(claim, [cell("ce", [0.7, 0.72, 0.71]), cell("gce", [0.8, 0.83, 0.81])])
    assert three.per_challenger()["gce"] == "reproduced (1 of 1 significant at p<0.05)"


def test_paired_interval_is_the_t_interval_of_the_per_seed_differences():
    from losslab.arena.analysis import paired_interval
    from losslab.arena.summary import Cell

    a = Cell("s", 0.4, "a", (0, 1, 2, 3), {"test_acc": (0.5, 0.6, 0.7, 0.9)})
    b = Cell("s", 0.4, "b", (1, 2, 3), {"test_acc": (0.4, 0.6, 0.9)})
    # Shared seeds 1, 2, 3: differences 0.2, 0.1, 0.0 -> mean 0.1, sd 0.1, t(0.975, 2) = 4.3027
    assert paired_interval(a, b, "test_acc") == pytest.approx(4.302653 * 0.1 / 3 ** 0.5, rel=1e-6)
    assert math.isnan(paired_interval(a, Cell("s", 0.4, "c", (0,), {"test_acc": (1.0,)}),
                                      "test_acc"))


def test_margin_claim_exactly_at_the_margin_is_within_it():
    # 0.847 - 0.857 is -0.010000000000000009 in floating point: still "within 1 point".
    claim = Claim("cosine within 1 point", "test_acc", "euclid", ("cosine",), margin=0.01)
    at = check_claim(claim, [cell("euclid", [0.857]), cell("cosine", [0.847])])
    assert at.checks[0].difference < -0.01
    assert at.per_challenger()["cosine"] == "reproduced (within the margin of 0.01 of the baseline)"
    out = check_claim(claim, [cell("euclid", [0.857]), cell("cosine", [0.846])])
    assert out.per_challenger()["cosine"].startswith("not reproduced (outside the margin")
    assert "worse or equal" not in out.per_challenger()["cosine"]
    two = [cell("euclid", [0.857], 0.2), cell("cosine", [0.847], 0.2),
           cell("euclid", [0.857], 0.4), cell("cosine", [0.8], 0.4)]
    assert check_claim(claim, two).per_challenger()["cosine"] == (
        "mixed (within the margin of 0.01 at 1 of 2 rates)")
