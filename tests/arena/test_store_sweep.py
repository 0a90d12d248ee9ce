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
