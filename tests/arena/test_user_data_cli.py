"""``losslab arena`` on the user's own data and model, end to end: a CSV and an npz through the
command (results, report), a model factory, TOML keys, the content hash in the run key
(an edited file reruns, an unchanged one is skipped), and every bad input stopped before
training with one line (losslab.cli.arena, losslab.arena.user_checks, user_models)."""

import importlib.util
import json
import sqlite3
import textwrap

import numpy as np
import pytest
import torch

from losslab.arena.config import LossSpec, RunConfig, check_config, run_key
from losslab.arena.store import RunStore
from losslab.arena.summary import aggregate
from losslab.cli import main

torch.set_num_threads(1)
TINY = ["--epochs", "2", "--width", "8", "--quiet", "--losses", "ce", "gce", "--seeds", "1"]


def blobs_csv(path, classes=("cat", "dog", "eel"), n=16, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["height,weight,colour_code,species"]
    for i, c in enumerate(classes):
        for v in rng.normal(2.0 * i, 1.0, size=(n, 3)):
            rows.append(f"{v[0]:.4f},{v[1]:.4f},{v[2]:.4f},{c}")
    path.write_text("\n".join(rows) + "\n")
    return path


def stored(directory):
    with sqlite3.connect(directory / "runs.db") as conn:
        return [(d, json.loads(r)) for d, r in conn.execute("SELECT dataset, result FROM runs")]


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """A module ``user_factories`` on the path with good and bad model factories."""
    (tmp_path / "user_factories.py").write_text(textwrap.dedent("""
        import math
        from torch import nn

        def good(input_shape, num_classes):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

        def raises(input_shape, num_classes):
            raise RuntimeError("no GPU here")

        def not_a_module(input_shape, num_classes):
            return "a model"

        def wrong_shape(input_shape, num_classes):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes + 1))

        def broken_forward(input_shape, num_classes):
            return nn.Linear(math.prod(input_shape) + 1, num_classes)

        def nan_logits(input_shape, num_classes):
            layer = nn.Linear(math.prod(input_shape), num_classes)
            nn.init.constant_(layer.bias, float("nan"))
            return layer

        def loader_raises():
            raise OSError("the share is not mounted")

        def loader_returns_a_string():
            return "data"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_factories"


def test_csv_end_to_end_writes_results_and_report_and_skips_when_unchanged(tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    blobs_csv(tmp_path / "pets.csv")
    out = tmp_path / "runs"
    argv = ["arena", "--dataset", "pets.csv", "--label-column", "species", "--out", str(out),
            "--report", *TINY]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "setting: pets.csv[species], mlp, symmetric noise, 2 epochs" in captured.out
    assert ("pets.csv: 36 train / 12 test rows (stratified 25% test split, data seed 42), 3 "
            "features standardised") in captured.err
    assert "'cat'->0, 'dog'->1, 'eel'->2" in captured.err
    assert (out / "report.html").is_file()
    rows = stored(out)
    assert len(rows) == 2
    assert rows[0][0] == f"{tmp_path / 'pets.csv'}#species"
    data = rows[0][1]["extra"]["data"]
    assert data["classes"] == ["cat", "dog", "eel"] and data["labels_mapped"]
    assert rows[0][1]["fingerprints"]["data_sha256"] == data["sha256"]

    # Unchanged: skipped, also from another directory with an absolute path.
    monkeypatch.chdir(out)
    argv[2] = str(tmp_path / "pets.csv")
    assert main(argv) == 0
    assert "2 runs already finished, 0 run now" in capsys.readouterr().err
    # Edited: one feature value changes, so both runs train again.
    lines = (tmp_path / "pets.csv").read_text().splitlines()
    lines[1] = "7.5," + lines[1].split(",", 1)[1]
    (tmp_path / "pets.csv").write_text("\n".join(lines) + "\n")
    assert main(argv) == 0
    assert "already finished" not in capsys.readouterr().err
    assert len(stored(out)) == 4


def test_npz_with_its_own_test_split_and_real_label_noise(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(3, 1, (20, 5))])
    y = np.repeat([3, 7], 20)  # non-contiguous labels
    y_noisy = y.copy()
    y_noisy[:4] = 7  # labels as given, wrong for 4 samples
    np.savez(tmp_path / "d.npz", X=x, y=y_noisy, X_test=x[::4], y_test=y[::4])
    out = tmp_path / "runs"
    assert main(["arena", "--dataset", str(tmp_path / "d.npz"), "--noise", "none",
                 "--out", str(out), *TINY]) == 0
    captured = capsys.readouterr()
    assert "setting: d.npz, mlp, clean labels, 2 epochs" in captured.out
    assert "40 train / 10 test rows (test split as given)" in captured.err
    assert "labels mapped in sorted order: 3->0, 7->1" in captured.err
    (_, result), _ = stored(out)
    assert result["extra"]["data"]["classes"] == [3, 7]
    assert result["extra"]["train_size"] == 40


def test_synthetic_noise_and_model_factory_on_user_data(tmp_path, capsys, factory_module):
    csv = blobs_csv(tmp_path / "pets.csv")
    out = tmp_path / "runs"
    argv = ["arena", "--dataset", str(csv), "--label-column", "species", "--noise", "asymmetric",
            "--noise-rates", "0.25", "--model", f"{factory_module}:good", "--out", str(out), *TINY]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "user_factories:good, asymmetric noise" in captured.out
    (_, result), _ = stored(out)
    assert result["metrics"]["observed_noise_rate"] == pytest.approx(0.25, abs=0.03)
    assert set(result["fingerprints"]) == {"data_sha256", "model_sha256"}
    # Editing the factory's module changes the key: the runs train again.
    path = tmp_path / "user_factories.py"
    path.write_text(path.read_text() + "\n# edited\n")
    assert main(argv) == 0
    assert len(stored(out)) == 4


def test_imbalance_calibration_heads_and_cleaning_work_on_user_data(tmp_path, capsys):
    csv = blobs_csv(tmp_path / "pets.csv", n=24)
    cleaning = ["none", "cleanlab"] if importlib.util.find_spec("cleanlab") else ["none"]
    assert main(["arena", "--dataset", str(csv), "--label-column", "species", "--imbalance", "2",
                 "--holdout", "0.2", "--calibrations", "temperature", "--head", "harmonic",
                 "--cleaning", *cleaning, "--cleaning-folds", "2", "--out", str(tmp_path / "r"),
                 "--epochs", "1", "--width", "8", "--quiet", "--losses", "ce",
                 "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "pets.csv[species], mlp, symmetric noise, long-tail 2:1, 0.2 held out" in out
    assert "ce [harmonic euclidean] + temperature" in out
    assert len(stored(tmp_path / "r")) == len(cleaning)


def test_toml_keys_with_paths_relative_to_the_toml_file(tmp_path, capsys, monkeypatch,
                                                        factory_module):
    (tmp_path / "data").mkdir()
    blobs_csv(tmp_path / "data" / "pets.csv")
    cfg = tmp_path / "data" / "sweep.toml"
    cfg.write_text(
        'losses = ["ce"]\nseeds = 1\nepochs = 1\nwidth = 8\nnoise = "none"\n'
        'dataset = "pets.csv"\nlabel_column = "species"\n'
        f'model = "{factory_module}:good"\n'
    )
    monkeypatch.chdir(tmp_path)  # not the TOML file's directory
    assert main(["arena", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert "pets.csv[species], user_factories:good, clean labels" in capsys.readouterr().out


def test_variants_compare_built_in_and_user_data(tmp_path, capsys):
    blobs_csv(tmp_path / "pets.csv")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        'losses = ["ce"]\nseeds = 1\nepochs = 1\nwidth = 8\nnum_samples = 400\n'
        '[[variants]]\ndataset = "digits"\n'
        '[[variants]]\ndataset = "pets.csv"\nlabel_column = "species"\n'
    )
    assert main(["arena", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "digits, cnn, symmetric noise" in out and "pets.csv[species], mlp" in out


def test_two_files_of_one_name_in_one_store_are_two_settings(tmp_path, capsys):
    for folder, seed in (("a", 0), ("b", 1)):
        (tmp_path / folder).mkdir()
        blobs_csv(tmp_path / folder / "pets.csv", seed=seed)
    out = tmp_path / "runs"
    for folder in ("a", "b"):
        argv = ["arena", "--dataset", str(tmp_path / folder / "pets.csv"), "--label-column",
                "species", "--out", str(out), *TINY]
        assert main(argv) == 0
        # Each sweep alone holds one file: its table shows the plain name.
        assert "setting: pets.csv[species], mlp" in capsys.readouterr().out
    assert sorted(d for d, _ in stored(out)) == [f"{tmp_path / f / 'pets.csv'}#species"
                                                  for f in ("a", "a", "b", "b")]
    with RunStore(out) as store:
        cells = aggregate(store.runs())
    settings = list(dict.fromkeys(c.setting for c in cells))
    assert [s.split(",")[0] for s in settings] == ["a/pets.csv[species]", "b/pets.csv[species]"]
    assert all(len(c.seeds) == 1 for c in cells) and len(cells) == 4
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "<h2>a/pets.csv[species], mlp" in page and "<h2>b/pets.csv[species], mlp" in page


def test_run_key_holds_the_content_hash(tmp_path):
    csv = blobs_csv(tmp_path / "pets.csv")
    config = RunConfig(loss=LossSpec("ce"), dataset=f"{csv}#species", model="mlp")
    key = run_key(config)
    assert run_key(RunConfig(loss=LossSpec("ce"), dataset=f"{csv}#species", model="mlp")) == key
    blobs_csv(csv, seed=1)
    assert run_key(config) != key
    # The label column is part of the task: another column, another key.
    two = tmp_path / "two.csv"
    two.write_text("x,u,v\n" + "".join(f"{i},{i % 2},{i // 4}\n" for i in range(8)))
    keys = {run_key(RunConfig(loss=LossSpec("ce"), dataset=f"{two}#{c}", model="mlp"))
            for c in ("u", "v")}
    assert len(keys) == 2


def test_a_result_from_edited_data_is_refused(tmp_path, monkeypatch):
    from losslab.arena.store import RunStore
    from losslab.arena.sweep import execute

    csv = blobs_csv(tmp_path / "pets.csv")
    config = RunConfig(loss=LossSpec("ce"), dataset=f"{csv}#species", model="mlp", epochs=1,
                       width=8)
    monkeypatch.setattr("losslab.arena.executors.fingerprints",
                        lambda c: {"data_sha256": "0" * 64})  # what a worker read instead
    with RunStore(tmp_path / "r") as store:
        with pytest.raises(RuntimeError, match="data or model edited during the sweep"):
            execute([config], store, progress=False)
        assert store.finished_keys() == set()


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "setup,flags,message",
    [
        (None, ["--dataset", "{d}/missing.csv", "--label-column", "y"],
         "dataset file '{d}/missing.csv' does not exist"),
        ("garbage.npz", ["--dataset", "{d}/garbage.npz"], "'garbage.npz' is not a readable .npz"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "kind"],
         "'pets.csv' has no column 'kind'; its columns: 'height', 'weight', 'colour_code', "
         "'species'"),
        ("pets.csv", ["--dataset", "{d}/pets.csv"], "name its label column with label_column"),
        ("text.csv", ["--dataset", "{d}/text.csv", "--label-column", "y"],
         "non-numeric feature column(s) 'name' (e.g. 'bob' on line 3)"),
        ("nan.csv", ["--dataset", "{d}/nan.csv", "--label-column", "y"],
         "2 feature value(s) of X are missing, NaN or infinite (in 2 row(s)); the first at "
         "line 3, column 'b'"),
        ("one.csv", ["--dataset", "{d}/one.csv", "--label-column", "y"], "has a single class (1)"),
        ("float.csv", ["--dataset", "{d}/float.csv", "--label-column", "y"],
         "y has the value 0.5 at line 5"),
        ("rare.csv", ["--dataset", "{d}/rare.csv", "--label-column", "y"],
         "fewer than 2 training samples: 'c' (1)"),
        ("unseen.npz", ["--dataset", "{d}/unseen.npz"],
         "the test labels 9 never occur in the training labels"),
        ("width.npz", ["--dataset", "{d}/width.npz"], "X_test has 2 features but X has 3"),
        ("noy.npz", ["--dataset", "{d}/noy.npz"], "has no array 'y'"),
        ("pets.csv", ["--dataset", "{d}/pets.parquet", "--label-column", "y"],
         "does not exist"),
        (None, ["--dataset", "mnist1d", "--label-column", "y"],
         "label_column='y' applies to a .csv or .parquet dataset, got dataset 'mnist1d'"),
        (None, ["--dataset", "data.txt"], "a data file (.csv, .npz, .parquet) or module:function"),
        (None, ["--dataset", "no_such_module_xyz:load"],
         "dataset 'no_such_module_xyz:load': importing module 'no_such_module_xyz' failed"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:missing"], "module 'user_factories' has no attribute"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:raises"], "raised RuntimeError when called as "
                                                "raises((3,), 3): no GPU here"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:not_a_module"], "returned a str; a model factory must"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:wrong_shape"], "logits of shape (2, 3) (batch, num_classes)"
                                                     ", got (2, 4)"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:good", "--head", "harmonic"], "brings its own head"),
        ("signals.npz", ["--dataset", "{d}/signals.npz", "--model", "cnn"],
         "model 'cnn' takes samples of shape (L,) or (C, L)"),
        ("xonly.npz", ["--dataset", "{d}/xonly.npz"], "has 'X_test' but no 'y_test'"),
        (None, ["--dataset", "user_factories:loader_raises"],
         "dataset 'user_factories:loader_raises' raised OSError: the share is not mounted"),
        (None, ["--dataset", "user_factories:loader_returns_a_string"],
         "returned a str; expected (X, y), (X, y, X_test, y_test)"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:broken_forward"], "failed on a batch of 2 samples of shape "
                                                        "(3,) (RuntimeError"),
        ("pets.csv", ["--dataset", "{d}/pets.csv", "--label-column", "species", "--model",
                      "user_factories:nan_logits"], "gave non-finite or non-float logits"),
    ],
)
def test_bad_data_and_models_fail_before_training(tmp_path, capsys, monkeypatch, factory_module,
                                                  setup, flags, message):
    monkeypatch.setattr("losslab.arena.executors.run_one",
                        lambda config: pytest.fail("bad input reached training"))
    d = tmp_path
    blobs_csv(d / "pets.csv")
    (d / "garbage.npz").write_bytes(b"not a zip file at all")
    (d / "text.csv").write_text("a,name,y\n1,2,0\n2,bob,1\n")
    (d / "nan.csv").write_text("a,b,y\n1,2,0\n2,nan,1\n3,4,0\n4,,1\n")
    (d / "one.csv").write_text("a,y\n1,1\n2,1\n3,1\n")
    (d / "float.csv").write_text("a,y\n1,0\n2,1\n3,1\n4,0.5\n")
    (d / "rare.csv").write_text("a,y\n1,a\n2,a\n3,b\n4,b\n5,c\n")
    x = np.arange(30.0).reshape(10, 3)
    y = np.repeat([0, 1], 5)
    write_npz(d / "unseen.npz", X=x, y=y, X_test=x[:2], y_test=np.array([0, 9]))
    write_npz(d / "width.npz", X=x, y=y, X_test=x[:2, :2], y_test=y[:2])
    write_npz(d / "noy.npz", X=x, labels=y)
    write_npz(d / "signals.npz", X=np.zeros((10, 2, 3, 4)), y=y)
    write_npz(d / "xonly.npz", X=x, y=y, X_test=x)
    flags = [f.replace("{d}", str(d)) for f in flags]
    assert main(["arena", "--out", str(d / "runs"), *TINY, *flags]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("losslab arena: error: ") and "error: arena: " not in lines[0]
    assert message.replace("{d}", str(d)) in lines[0]
    assert not (d / "runs" / "runs.db").exists()


def test_parquet_needs_pyarrow_or_reads_it(tmp_path, capsys):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        (tmp_path / "d.parquet").write_bytes(b"PAR1")
        assert main(["arena", "--dataset", str(tmp_path / "d.parquet"), "--label-column", "y",
                     "--out", str(tmp_path / "r"), *TINY]) == 2
        assert "needs the optional dependency pyarrow, which is not installed; install it " \
               "with: pip install pyarrow" in capsys.readouterr().err
        return
    rng = np.random.default_rng(0)
    table = pa.table({"a": rng.normal(size=20), "b": rng.normal(size=20),
                      "y": ["u", "v"] * 10})
    pq.write_table(table, tmp_path / "d.parquet")
    assert main(["arena", "--dataset", str(tmp_path / "d.parquet"), "--label-column", "y",
                 "--out", str(tmp_path / "r"), *TINY]) == 0
    assert "d.parquet[y], mlp" in capsys.readouterr().out


def test_check_config_names_a_user_model_on_built_in_data(factory_module):
    check_config(RunConfig(loss=LossSpec("ce"), dataset="digits", num_samples=400,
                           model=f"{factory_module}:good"))
    with pytest.raises(ValueError, match="got \\(2, 11\\)"):
        check_config(RunConfig(loss=LossSpec("ce"), dataset="digits", num_samples=400,
                               model=f"{factory_module}:wrong_shape"))
