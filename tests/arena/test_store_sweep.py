"""The result store and sweep execution: atomic rows, no duplicates, skip on resume, and the
process pool agreeing with in-process runs (losslab.arena.store / sweep)."""

import sqlite3

import pytest

from losslab.arena.config import LossSpec, run_key
from losslab.arena.store import RunStore
from losslab.arena.sweep import Sweep, check_sweep, execute
from losslab.arena.train import run


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


@pytest.mark.slow
def test_process_pool_matches_in_process_runs(tmp_path, tiny):
    sweep = Sweep(losses=(LossSpec("ce"), LossSpec("gce")), seeds=(0,), base=dict(tiny))
    configs = check_sweep(sweep)
    with RunStore(tmp_path) as store:
        ran, _ = execute(configs, store, workers=2, progress=False)
        assert ran == 2
        stored = {r.key: r for r in store.runs()}
    for cfg in configs:
        assert stored[run_key(cfg)].metrics == run(cfg).metrics
