"""Bad input to every ``losslab`` command: each case exits with its code (2: bad argument or
input, 1: the command could not do its work), writes exactly one line to stderr naming the
argument or file (and the CSV line), shows no traceback, and leaves an existing results store
unchanged byte for byte (losslab.cli, losslab.cli.errors)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.cli import main

TINY = ["--num-samples", "400", "--width", "8", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    store = d / "store"
    assert main(["arena", "--losses", "ce", "--seeds", "1", "--out", str(store), *TINY]) == 0
    rng = np.random.default_rng(0)
    (d / "empty.npz").write_bytes(b"")
    (d / "garbage.npz").write_bytes(rng.bytes(300))
    (d / "garbage.pt").write_bytes(rng.bytes(300))
    (d / "text.pt").write_text("hello\n")
    (d / "empty.csv").write_text("")
    (d / "preds.csv").write_text("labels,logits\n0,1.0\n")
    np.savez(d / "objects.npz", labels=np.array([object()], dtype=object))
    torch.save(torch.ones(3), d / "tensor.pt")
    torch.save({"labels": torch.tensor([0, 1, 7]), "logits": torch.randn(3, 4)}, d / "range.pt")
    torch.save({"labels": torch.tensor([0, 1]), "logits": torch.randn(2, 4)}, d / "good.pt")
    torch.save({"labels": torch.tensor([0]), "probs": torch.tensor([[float("nan"), 1.0]])},
               d / "nan.pt")
    (d / "header.csv").write_text("x,loss\n")
    (d / "one.csv").write_text("x,loss\n1,2\n")
    (d / "nan.csv").write_text("x,loss\n1,3\n10,nan\n100,2.2\n1000,2.1\n")
    (d / "negative.csv").write_text("x,loss\n1,3\n10,2.5\n100,-2.2\n1000,2.1\n")
    (d / "text.csv").write_text("x,loss\n1,3\n10,2.5\n100,abc\n1000,2.1\n")
    (d / "equal.csv").write_text("x,loss\n5,3\n5,2.5\n5,2.2\n5,2.1\n")
    (d / "noloss.csv").write_text("x,y\n1,3\n10,2.5\n100,2.2\n")
    (d / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(200))
    (d / "good.csv").write_text("x,loss\n1,3\n10,2.5\n100,2.2\n1000,2.1\n")
    (d / "steps.csv").write_text("step,loss\n1,3\n2,2.5\n3,2.2\n4,2.1\n")
    (d / "sweep.toml").write_text('losses = ["ce"]\nepoch = 3\n')
    (d / "bad.toml").write_text('losses = ["ce"\n')
    (d / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (d / "a-file").write_text("not a directory\n")
    (d / "plots").mkdir()
    return d


# (argv with {d} = the inputs folder and {store} = an existing arena store, exit code, what the
# one line must contain)
CASES = [
    # the command line itself
    (["nope"], 2, "invalid choice: 'nope'"),
    (["list", "--kind", "nope"], 2, "unknown kind 'nope'"),
    (["list", "--family", "nope"], 2, "unknown family 'nope'"),
    (["list", "--bogus"], 2, "unrecognized arguments: --bogus"),
    # arena: settings
    (["arena", "--out", "{store}", "--losses", "gce:"], 2, "losses entry 'gce:' is malformed"),
    (["arena", "--out", "{store}", "--losses", "gce:q=0.5,q=0.6"], 2, "sets 'q' twice"),
    (["arena", "--out", "{store}", "--losses", "gce:q=nan"], 2, "q must be finite, got nan"),
    (["arena", "--out", "{store}", "--losses", "gce:q"], 2, "is malformed"),
    (["arena", "--out", "{store}", "--losses", "nope"], 2, "losses entry 'nope' is not registered"),
    (["arena", "--out", "{store}", "--noise-rates", "0.2,,0.4"], 2,
     "argument --noise-rates: expected comma-separated numbers, got '0.2,,0.4'"),
    (["arena", "--out", "{store}", "--noise-rates", "nan"], 2, "expected finite numbers"),
    (["arena", "--out", "{store}", "--seed-list", "1,,2"], 2, "argument --seed-list"),
    (["arena", "--out", ""], 2, "--out must name a directory, got an empty string"),
    (["arena", "--out", "{d}/a-file"], 2, "is not a writable directory"),
    (["arena", "--out", "{store}", "--lr", "0"], 2, "lr must be a number in (0.0, 10.0], got 0.0"),
    (["arena", "--out", "{store}", "--lr", "-1"], 2, "lr must be a number in (0.0, 10.0], got -1.0"),
    (["arena", "--out", "{store}", "--epochs", "0"], 2, "epochs must be an integer >= 1"),
    (["arena", "--out", "{store}", "--epochs", "x"], 2, "argument --epochs: invalid int value"),
    (["arena", "--out", "{store}", "--batch-size", "0"], 2, "batch_size must be an integer >= 1"),
    (["arena", "--out", "{store}", "--seeds", "0"], 2, "seeds must be a positive count"),
    (["arena", "--out", "{store}", "--workers", "0"], 2, "workers must be a positive integer"),
    # arena on the user's own data
    (["arena", "--out", "{store}", "--dataset", "{d}/missing.csv", "--label-column", "y"], 2,
     "dataset file '{d}/missing.csv' does not exist"),
    (["arena", "--out", "{store}", "--dataset", "{d}/noloss.csv", "--label-column", "label"], 2,
     "'noloss.csv' has no column 'label'; its columns: 'x', 'y'"),
    (["arena", "--out", "{store}", "--dataset", "{d}/text.csv", "--label-column", "x"], 2,
     "non-numeric feature column(s) 'loss' (e.g. 'abc' on line 4)"),
    (["arena", "--out", "{store}", "--dataset", "{d}/nan.csv", "--label-column", "x"], 2,
     "1 feature value(s) of X are missing, NaN or infinite (in 1 row(s)); the first at line 3, "
     "column 'loss'"),
    (["arena", "--out", "{store}", "--dataset", "{d}/garbage.npz"], 2,
     "'garbage.npz' is not a readable .npz file"),
    (["arena", "--out", "{store}", "--label-column", "y"], 2,
     "label_column='y' applies to a .csv or .parquet dataset, but no dataset is set"),
    (["arena", "--out", "{store}", "--preset", "nope"], 2, "preset must be one of"),
    (["arena", "--out", "{store}", "--dataset", "nope"], 2, "dataset must be one of"),
    (["arena", "--out", "{store}", "--head-n", "nan"], 2, "argument --head-n: expected a finite"),
    (["arena", "--out", "{store}", "--imbalance", "inf"], 2, "argument --imbalance: expected a"),
    (["arena", "--out", "{store}", "--config", "{d}/missing.toml"], 2, "does not exist"),
    (["arena", "--out", "{store}", "--config", "{d}/sweep.toml"], 2,
     "unknown configuration key 'epoch'"),
    (["arena", "--out", "{store}", "--config", "{d}/bad.toml"], 2, "is not valid TOML"),
    (["arena", "--out", "{store}", "--config", "{d}/binary.toml"], 2, "binary.toml"),
    (["arena", "--out", "{store}", "--ray-address", "auto"], 2, "ray_address is set"),
    (["arena", "--out", "{store}", "--bogus"], 2, "unrecognized arguments: --bogus"),
    # report
    (["report", "{d}/missing"], 2, "holds no runs.db"),
    (["report", ""], 2, "DIRECTORY must name a directory"),
    (["report", "{store}", "--output", "{d}/missing/report.html"], 2, "does not exist"),
    (["report", "{store}", "--output", "{d}/plots"], 2, "is a directory"),
    # calibration
    (["calibration", "{d}/missing.npz"], 2, "'{d}/missing.npz' does not exist"),
    (["calibration", "{d}/empty.npz"], 2, "{d}/empty.npz is empty (0 bytes)"),
    (["calibration", "{d}/garbage.npz"], 2, "{d}/garbage.npz is not readable as an .npz"),
    (["calibration", "{d}/objects.npz"], 2, "{d}/objects.npz is not readable"),
    (["calibration", "{d}/garbage.pt"], 2, "{d}/garbage.pt is not readable as a torch.save"),
    (["calibration", "{d}/text.pt"], 2, "{d}/text.pt is not readable as a torch.save"),
    (["calibration", "{d}/empty.csv"], 2, "{d}/empty.csv has suffix '.csv'"),
    (["calibration", "{d}/preds.csv"], 2, "save predictions with numpy.savez"),
    (["calibration", "{d}/tensor.pt"], 2, "{d}/tensor.pt holds a Tensor"),
    (["calibration", "{d}/range.pt"], 2, "{d}/range.pt: labels must lie in [0, 3]"),
    (["calibration", "{d}/nan.pt"], 2, "{d}/nan.pt: 'probs' row 0 is not finite"),
    (["calibration", "{d}/good.pt", "--bins", "0"], 2, "--bins must be an integer >= 1"),
    (["calibration", "{d}/good.pt", "--plot", "{d}/plots"], 2, "--plot '{d}/plots' is a directory"),
    (["calibration", "{d}/good.pt", "--plot", "{d}/nowhere/r.png"], 2, "does not exist"),
    # fit-scaling
    (["fit-scaling", "{d}/missing.csv", "--law", "power"], 2, "does not exist"),
    (["fit-scaling", "{d}/good.csv", "--law", "nope"], 2, "argument --law: invalid choice"),
    (["fit-scaling", "{d}/good.csv"], 2, "the following arguments are required: --law"),
    (["fit-scaling", "{d}/empty.csv", "--law", "power"], 2, "{d}/empty.csv has no data rows"),
    (["fit-scaling", "{d}/header.csv", "--law", "power"], 2, "has no data rows"),
    (["fit-scaling", "{d}/one.csv", "--law", "power"], 2, "{d}/one.csv has 1 data row(s)"),
    (["fit-scaling", "{d}/nan.csv", "--law", "power"], 2, "{d}/nan.csv line 3, column 'loss'"),
    (["fit-scaling", "{d}/negative.csv", "--law", "power"], 2, "{d}/negative.csv line 4"),
    (["fit-scaling", "{d}/text.csv", "--law", "power"], 2, "{d}/text.csv line 4, column 'loss'"),
    (["fit-scaling", "{d}/equal.csv", "--law", "power"], 2, "column 'x' holds the same value"),
    (["fit-scaling", "{d}/noloss.csv", "--law", "power"], 2, "needs a 'loss' column"),
    (["fit-scaling", "{d}/binary.csv", "--law", "power"], 2, "{d}/binary.csv is not a UTF-8"),
    (["fit-scaling", "{d}/good.csv", "--law", "power", "--bootstrap", "-1"], 2,
     "--bootstrap must be an integer >= 0"),
    (["fit-scaling", "{d}/good.csv", "--law", "power", "--starts", "0"], 2,
     "--starts must be an integer >= 1"),
    (["fit-scaling", "{d}/good.csv", "--law", "power", "--predict", "cosine:lr=1"], 2,
     "--predict applies only to --law lr-annealing"),
    (["fit-scaling", "{d}/good.csv", "--law", "power", "--decay", "1"], 2, "--decay must lie"),
    (["fit-scaling", "{d}/steps.csv", "--law", "lr-annealing", "--schedule", "cosine:lr=1",
      "--warmup-steps", "10"], 2, "--warmup-steps 10 is not shorter than the schedule (4 steps)"),
    (["fit-scaling", "{d}/steps.csv", "--law", "lr-annealing", "--schedule", "cosine:lr=x"], 2,
     "--schedule 'cosine:lr=x'"),
    (["fit-scaling", "{d}/steps.csv", "--law", "lr-annealing"], 2, "needs an 'lr' column"),
    (["fit-scaling", "{d}/good.csv", "--law", "power", "--plot", "{d}/plots"], 2,
     "--plot '{d}/plots' is a directory"),
    (["fit-scaling", "{d}/good.csv", "--law", "power", "--plot", "{d}/fit.txt"], 2,
     "--plot '{d}/fit.txt' must end in one of"),
]


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else None
            for p in sorted(Path(directory).rglob("*"))}


def fill(arg, d):
    return arg.replace("{store}", str(d / "store")).replace("{d}", str(d))


@pytest.mark.parametrize("argv,code,needle", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code(files, capsys, argv, code, needle, monkeypatch):
    monkeypatch.delenv("LOSSLAB_DEBUG", raising=False)
    monkeypatch.setattr("losslab.arena.executors.run_one",
                        lambda config: pytest.fail("bad input reached training"))
    before = snapshot(files)
    argv = [fill(a, files) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        rc = exit_.code
    captured = capsys.readouterr()
    err = captured.err
    assert rc == code, err
    assert "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("losslab"), err
    assert fill(needle, files) in lines[0], err
    assert snapshot(files) == before  # the store and every input file unchanged


def test_debug_shows_the_traceback(files, capsys, monkeypatch):
    argv = ["fit-scaling", str(files / "nan.csv"), "--law", "power"]
    with pytest.raises(ValueError, match="line 3"):
        main([*argv, "--debug"])
    monkeypatch.setenv("LOSSLAB_DEBUG", "1")
    with pytest.raises(ValueError, match="line 3"):
        main(argv)
    monkeypatch.setenv("LOSSLAB_DEBUG", "0")
    assert main(argv) == 2


def test_unexpected_errors_are_one_line_with_exit_code_1(files, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("losslab.cli.list_cmd.list_losses", boom)
    monkeypatch.delenv("LOSSLAB_DEBUG", raising=False)
    assert main(["list"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == ("losslab list: error: ZeroDivisionError: division by zero (unexpected; "
                    "rerun with --debug for the traceback)")


def test_good_inputs_still_work(files, capsys):
    """The edges that were fixed: a UTF-8 byte-order mark, --plot without a suffix."""
    bom = files / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (files / "good.csv").read_bytes())
    assert main(["fit-scaling", str(bom), "--law", "power", "--bootstrap", "0",
                 "--plot", str(files / "fit")]) == 0
    out = capsys.readouterr().out
    assert f"plot saved to {files / 'fit.png'}" in out and (files / "fit.png").is_file()
    assert main(["calibration", str(files / "good.pt"), "--bins", "5"]) == 0


def test_real_process_exit_codes_and_no_traceback(files):
    """Through the installed entry point's module, as a shell sees it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("LOSSLAB_DEBUG", None)
    cases = [(["calibration", str(files / "garbage.pt")], 2),
             (["arena", "--out", str(files / "store"), "--lr", "0"], 2),
             (["report", str(files / "missing")], 2)]
    for argv, code in cases:
        done = subprocess.run([sys.executable, "-m", "losslab.cli", *argv], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == code, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
