"""The claims table (`losslab report DIR --claims`): one row per paper, challenger and setting."""

import math

import pytest
from scipy import stats

from losslab.arena.claims_table import claim_rows, format_claims_markdown
from losslab.arena.presets import PRESETS, Claim
from losslab.arena.store import RunStore
from losslab.arena.summary import Cell
from losslab.cli import main


def _cell(setting, rate, loss, accs, seconds=(1.0, 2.0, 3.0)):
    return Cell(setting, rate, loss, (0, 1, 2),
                {"test_acc": tuple(accs), "run_seconds": tuple(seconds)})


def test_rows_effect_interval_verdict_and_run_time():
    a, b = "mnist1d, cnn", "digits, cnn"
    cells = [
        _cell(a, 0.2, "ce", (0.70, 0.72, 0.74)),
        _cell(a, 0.2, "gce", (0.80, 0.83, 0.83)),
        _cell(a, 0.4, "ce", (0.50, 0.52, 0.50)),
        _cell(a, 0.4, "gce", (0.45, 0.49, 0.47)),
        _cell(b, 0.2, "ce", (0.90, 0.91, 0.92)),
        _cell(b, 0.2, "gce", (0.95, 0.97, 0.96)),
    ]
    claim = Claim("GCE beats CE", "test_acc", "ce", ("gce",), paper="Zhang & Sabuncu 2018")
    rows = claim_rows({"noisy": [claim]}, cells)
    assert [(r.setting, r.challenger) for r in rows] == [(a, "gce"), (b, "gce")]
    first, second = rows
    assert first.verdict == "mixed (better at 1 of 2 rates)"
    assert second.verdict.startswith("reproduced (1 of 1 significant")
    # Effect at 20% in setting a: mean of (0.10, 0.11, 0.09) = +10.0 points, t interval.
    diffs = [0.10, 0.11, 0.09]
    sd = stats.tstd(diffs)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert first.effect().startswith(f"20%: +10.0 ± {100 * half:.1f} pts; 40%: -3.7")
    assert first.run_seconds == pytest.approx(4 * 6.0)  # four cells of 1 + 2 + 3 s
    assert second.run_seconds == pytest.approx(2 * 6.0)
    table = format_claims_markdown(rows)
    assert table.count("\n| `noisy` | Zhang & Sabuncu 2018 | `gce` beats `ce` on test_acc |") == 2
    # Two data sets: two claims, the one on digits reproduced.
    assert ("2 claims (paper, challenger and data set) on 2 data sets (digits, mnist1d); "
            "1 reproduced") in table


def test_lower_is_better_flips_the_sign_and_margin_claims():
    cells = [
        Cell("s", 0.0, "ce", (0, 1), {"test_ece": (0.10, 0.12), "run_seconds": (1.0, 1.0)}),
        Cell("s", 0.0, "ce + temperature", (0, 1),
             {"test_ece": (0.05, 0.06), "run_seconds": (1.0, 1.0)}),
    ]
    claim = Claim("T lowers ECE", "test_ece", "ce", ("ce + temperature",),
                  higher_is_better=False, paper="Guo et al. 2017")
    (row,) = claim_rows({"calibration": [claim]}, cells)
    assert row.effect().startswith("0%: +0.055 ± ")  # positive: favours the claim
    assert row.verdict.startswith("reproduced")
    assert "`ce + temperature` is below `ce` on test_ece" in format_claims_markdown([row])


def test_every_preset_claim_names_its_paper():
    for preset in PRESETS.values():
        for claim in preset.claims:
            assert claim.paper, (preset.name, claim.text)
            assert Claim.from_dict(claim.to_dict()) == claim


def test_report_claims_prints_markdown(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["arena", "--losses", "ce", "gce", "--seeds", "2", "--noise-rates", "0.4", "--out",
            str(out), "--num-samples", "300", "--epochs", "1", "--width", "8", "--quiet"]
    assert main(argv) == 0
    with RunStore(out) as store:
        store.set_meta("presets", {"minimal": [c.to_dict() for c in PRESETS["minimal"].claims]})
    capsys.readouterr()
    assert main(["report", str(out), "--claims"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("| preset | paper | claim | setting |")
    assert "| `minimal` | Zhang & Sabuncu 2018 (GCE) | `gce` beats `ce` on test_acc |" in text
    assert "40%: " in text
    md = tmp_path / "claims.md"
    assert main(["report", str(out), "--claims", "--output", str(md)]) == 0
    assert md.read_text() == text


def test_report_claims_without_store_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--claims"]) == 2
    assert "holds no runs.db" in capsys.readouterr().err
