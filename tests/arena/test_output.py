"""What the arena prints and draws does not mislead: no "± 0.0" from one seed, no memorised
noise where there was none, axes that do not magnify equal results, the reason a claim is not
checked, plain --help texts (losslab.arena.summary / plots / report, losslab.cli.helptext)."""

import pytest

from losslab.arena.plots import MIN_SPAN, bounded_limits
from losslab.arena.summary import Cell, format_table
from losslab.cli import main
from losslab.cli.helptext import plain

S = "mnist1d, cnn, symmetric noise, 20 epochs"
TINY = ["--num-samples", "400", "--epochs", "1", "--width", "8", "--quiet"]


def cell(accs, rate=0.4, memorised=0.25):
    n = len(accs)
    values = {"test_acc": tuple(accs), "test_ece": (0.1,) * n, "test_nll": (1.0,) * n,
              "test_macro_f1": tuple(accs), "test_coverage16": (0.9,) * n,
              "noise_memorised": (memorised,) * n}
    return Cell(S, rate, "ce", tuple(range(n)), values)


def test_one_seed_has_no_spread_and_clean_runs_no_memorised_noise():
    lines = format_table([cell([0.8]), cell([0.8, 0.9]), cell([0.85], rate=0.0, memorised=0.0)])
    one, two, clean = lines.splitlines()[3:]
    assert "80.0" in one and "±" not in one and "25.0" in one
    assert "85.0 ± 7.1" in two
    assert clean.split()[-1] == "–" and "±" not in clean


def test_bounded_axes_span_at_least_the_minimum():
    # An lm's accuracies 0.1245-0.1250 must not fill the axis.
    low, high = bounded_limits(0.1245, 0.1250, top=1.0, span=MIN_SPAN)
    assert high - low == pytest.approx(MIN_SPAN) and low < 0.1245 and high > 0.1250
    assert bounded_limits(0.0, 0.01, top=1.0, span=0.05) == (0.0, 0.05)
    assert bounded_limits(99.0, 100.4, top=100.0, span=5.0) == (95.0, 100.0)
    assert bounded_limits(20.0, 80.0, top=100.0, span=5.0) == (20.0, 80.0)


def test_report_says_why_a_preset_claim_is_not_checked(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["arena", "--preset", "harmonic", "--losses", "ce", "--head", "linear",
                 "--seeds", "1", "--out", str(out), *TINY]) == 0
    err = capsys.readouterr().err
    assert "preset 'harmonic' settings were overridden (" in err and "epochs" in err
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "No preset with a claim was run" not in page
    assert "No claim is checked: preset &#x27;harmonic&#x27; (overridden: " in page
    assert "memorised" in page


def test_help_texts_are_plain(capsys):
    for command in ("arena", "report", "fit-scaling", "calibration"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text, command
        if command == "fit-scaling":
            assert "losslab calibration" not in text
        if command == "arena":
            assert "training epochs per run" in text and "training batch size" in text
            assert "rerun the same command to resume" in text
    assert plain("``a`` and :func:`~x.y.name`::\n") == "a and name:\n"
