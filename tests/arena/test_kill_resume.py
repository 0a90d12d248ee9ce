"""SIGKILL a real sweep at random moments, then resume: finished runs survive unchanged, none is
duplicated, and the resumed sweep completes (issue 4, "results never get lost")."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from losslab.arena.config import run_key
from losslab.arena.store import RunStore
from losslab.arena.train import run

SEEDS = 10
LOSSES = ["ce", "ce:label_smoothing=0.1"]  # one source file: fewer outside edits
FLAGS = ["--num-samples", "400", "--epochs", "2", "--width", "8", "--batch-size", "64"]


def rows(db):
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {k: (t, r) for k, t, r in conn.execute("SELECT key, finished_at, result FROM runs")}
    except sqlite3.OperationalError:  # the table does not exist yet
        return {}
    finally:
        conn.close()


def start(out, workers=1):
    cmd = [sys.executable, "-m", "losslab.cli", "arena", "--losses", *LOSSES,
           "--seeds", str(SEEDS), "--out", str(out), "--quiet", "--workers", str(workers), *FLAGS]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    db = tmp_path / "runs.db"
    total = SEEDS * len(LOSSES)
    rng = random.Random()
    survivors = {}
    for attempt in range(2):
        # The first attempt runs a process pool, so SIGKILL also hits workers mid-run.
        proc = start(tmp_path, workers=2 if attempt == 0 else 1)
        target = len(rows(db)) + rng.randint(1, 3)
        deadline = time.monotonic() + 60
        while len(rows(db)) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # a random point, possibly mid-run or mid-write
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        now = rows(db)
        assert 0 < len(now) < total, f"attempt {attempt}: {len(now)} rows"
        # Rows written before an earlier kill are untouched.
        for key, value in survivors.items():
            assert now[key] == value
        survivors = now

    proc = start(tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert f"{len(survivors)} runs already finished" in err.decode()
    final = rows(db)
    assert len(final) == total
    for key, value in survivors.items():
        assert final[key] == value
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(DISTINCT key) FROM runs").fetchone()[0] == total

    # Every stored result, whether a pool worker or the main process computed it, equals a
    # fresh in-process run of its config.
    with RunStore(tmp_path) as store:
        stored = store.runs()
    assert len(stored) == total
    for r in stored:
        assert r.key == run_key(r.config)
        assert r.metrics == run(r.config).metrics, r.config
