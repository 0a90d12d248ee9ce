"""``losslab fit-scaling`` end to end on generated CSV files."""

import numpy as np
import pytest

from losslab.cli import calibration, fit_scaling
from losslab.diagnostics.scaling import annealing_areas, make_schedule


def _main(argv):
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    fit_scaling.add_parser(sub)
    calibration.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_power_law_csv(tmp_path, capsys):
    x = np.logspace(5, 10, 15)
    loss = 1.5 + (1e6 / x) ** 0.1
    path = tmp_path / "curve.csv"
    path.write_text("x,loss,label\n" + "".join(f"{a},{b},m{i}\n"
                                              for i, (a, b) in enumerate(zip(x, loss,
                                                                              strict=True))))
    png = tmp_path / "fit.png"
    assert _main(["fit-scaling", str(path), "--law", "power", "--bootstrap", "5",
                  "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:5]}
    assert float(rows["L_inf"][0]) == pytest.approx(1.5, abs=1e-3)
    assert float(rows["alpha"][0]) == pytest.approx(0.1, abs=1e-3)
    assert len(rows["alpha"]) == 3  # value and interval
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_lr_annealing_csv_with_schedule_and_prediction(tmp_path, capsys):
    lrs = make_schedule("cosine:lr=0.01,final=0.0005", 2000)
    s1, s2 = annealing_areas(lrs)
    steps = np.arange(10, 2001, 10)
    loss = 2.0 + 1.0 * s1[steps - 1] ** -0.5 - 0.05 * s2[steps - 1]
    path = tmp_path / "curve.csv"
    path.write_text("step,loss\n" + "".join(f"{s},{v}\n" for s, v in zip(steps, loss,
                                                                         strict=True)))
    assert _main(["fit-scaling", str(path), "--law", "lr-annealing", "--schedule",
                  "cosine:lr=0.01,final=0.0005", "--predict", "constant:lr=0.01",
                  "--bootstrap", "0", "--plot", str(tmp_path / "a.png")]) == 0
    out = capsys.readouterr().out
    assert "predicted loss under constant:lr=0.01 after 2000 steps" in out
    predicted = float(out.split("after 2000 steps: ")[1].split()[0])
    s1c, _ = annealing_areas(make_schedule("constant:lr=0.01", 2000))
    assert predicted == pytest.approx(2.0 + s1c[-1] ** -0.5, rel=0.01)


def test_missing_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("n,loss\n1,2\n2,1.5\n3,1.2\n")
    with pytest.raises(ValueError, match="law nmt needs columns"):
        _main(["fit-scaling", str(path), "--law", "nmt"])


def test_calibration_command(tmp_path, capsys):
    import torch

    from losslab.diagnostics import expected_calibration_error

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 4, generator=g) * 4
    labels = torch.randint(0, 4, (300,), generator=g)
    np.savez(tmp_path / "p.npz", logits=logits.numpy(), labels=labels.numpy())
    png = tmp_path / "rel.png"
    assert _main(["calibration", str(tmp_path / "p.npz"), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("ECE (equal width)"))
    ece = expected_calibration_error(logits, labels, from_logits=True).item()
    assert float(line.split()[-1]) == pytest.approx(ece, abs=1e-6)
    assert "temperature" in out and png.exists()
    torch.save({"probs": logits.softmax(1), "labels": labels}, tmp_path / "p.pt")
    assert _main(["calibration", str(tmp_path / "p.pt")]) == 0
    assert "temperature" not in capsys.readouterr().out


def test_bad_cell_and_missing_file_name_the_problem(tmp_path):
    path = tmp_path / "curve.csv"
    path.write_text("x,loss,label\n1e5,2.5,a\n1e6,oops,b\n1e7,2.1,c\n")
    with pytest.raises(ValueError, match=r"^fit-scaling: .*line 3, column 'loss': 'oops' is not"):
        _main(["fit-scaling", str(path), "--law", "power"])
    path.write_text("x,loss\n1e5,n/a\n1e6,high\n")
    with pytest.raises(ValueError, match=r"^fit-scaling: .*column 'loss' must be numeric, but "
                                         r"line 2 holds 'n/a'"):
        _main(["fit-scaling", str(path), "--law", "power"])
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"^fit-scaling: input file .*nope.csv' does not exist"):
        _main(["fit-scaling", missing, "--law", "power"])
    with pytest.raises(ValueError, match=r"^calibration: input file .*nope.npz' does not exist"):
        _main(["calibration", str(tmp_path / "nope.npz")])
