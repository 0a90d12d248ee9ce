"""The result store and sweep execution: atomic rows, no duplicates, skip on resume
(losslab.arena.store / sweep). The process pool is exercised in test_kill_resume.py."""

import sqlite3

from losslab.arena.config import LossSpec
from losslab.arena.store import RunStore
from losslab.arena.sweep import Sweep, check_sweep, execute


def test_store_insert_is_idempotent(tmp_path, tiny_config):
    cfg = tiny_config("ce")
    result = {"metrics": {"test_acc": 0.5, "test_ece": float("nan")}, "curves": {}}
    with RunStore(tmp_path) as store:
        assert store.add("k1", "v", cfg, result) is True
        assert store.add("k1", "v", cfg, {"metrics": {"test_acc": 0.9, "test_ece": 0.1}}) is False
        (row,) = store.runs()
        assert row.config == cfg and row.metrics["test_acc"] == 0.5
        store.set_meta("presets", {"a": [1]})
        assert store.get_meta("presets") == {"a": [1]}
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_execute_skips_finished_and_duplicate_configs(tmp_path, tiny):
    sweep = Sweep(losses=(LossSpec("ce"), LossSpec("ce")), seeds=(0, 1), base=dict(tiny))
    configs = check_sweep(sweep)
    assert len(configs) == 4
    seen = []
    with RunStore(tmp_path) as store:
        ran, skipped = execute(configs[:1], store, progress=False)
        assert (ran, skipped) == (1, 0)
        ran, skipped = execute(configs, store, progress=False,
                               on_result=lambda c, r: seen.append(c))
        assert (ran, skipped) == (1, 3)  # one finished earlier, two duplicates
        assert len(store.runs()) == 2
        assert [c.seed for c in seen] == [1]


def test_code_version_hashes_training_path_and_loss_helpers():
    from losslab._core.registry import loss_info
    from losslab.arena.version import TRAINING_MODULES, code_version, module_closure

    training = module_closure(TRAINING_MODULES)
    assert "losslab.arena.train" in training and "losslab.fused.chunked" in training
    assert not {"losslab.arena.report", "losslab.arena.plots", "losslab.cli.arena"} & set(training)
    info = loss_info("gce")
    helpers = module_closure((info.function.__module__,))
    assert {"losslab.functional.logits.robust", "losslab._core.logit_loss"} <= set(helpers)
    assert "losslab.functional.logits.overlap" not in helpers  # another family's edits do not count
    assert code_version("gce") != code_version("ce")


def test_result_from_a_worker_with_other_code_is_not_stored(tmp_path, tiny, monkeypatch):
    import pytest

    import losslab.arena.executors as executors

    monkeypatch.setattr(executors, "code_version", lambda name: "edited-sources")
    configs = check_sweep(Sweep(losses=(LossSpec("ce"),), seeds=(0,), base=dict(tiny)))
    with RunStore(tmp_path) as store:
        with pytest.raises(RuntimeError, match="1 result.*not stored"):
            execute(configs, store, progress=False)
        assert store.runs() == []
