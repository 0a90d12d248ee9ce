"""Faults while the arena runs, as a user leaving it overnight meets them: the driver killed
(SIGKILL) with workers running, Ctrl-C and SIGTERM, a corrupt or read-only store, two sweeps
writing one store. Each ends with one line, no traceback, no process left behind, and no
finished run lost or stored twice (losslab.arena.executors / lifeline / guard)."""

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from losslab.arena import guard
from losslab.arena.config import LossSpec, RunConfig
from losslab.arena.store import RunStore
from losslab.arena.train import run as train_run
from losslab.cli import main

TINY = {"num_samples": 400, "epochs": 8, "width": 8, "batch_size": 64}
FLAGS = [x for k, v in TINY.items() for x in (f"--{k.replace('_', '-')}", str(v))]
RESUME = "losslab arena: interrupted — rerun the same command to resume (finished runs are kept)"


def arena_cmd(out, losses, seeds, workers, epochs=TINY["epochs"]):
    return [sys.executable, "-m", "losslab.cli", "arena", "--losses", *losses, "--seeds",
            str(seeds), "--out", str(out), "--quiet", "--workers", str(workers), *FLAGS,
            "--epochs", str(epochs)]


def _as_from_a_terminal():
    # A shell started in the background (`cmd &` without job control) makes its children
    # ignore SIGINT, and Python keeps an inherited "ignore": the arena would then run to the
    # end through a Ctrl-C, as a nohup'ed command should. These tests are about a command
    # started from a terminal, whose SIGINT is the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out, losses=("ce", "gce"), seeds=3, workers=2, epochs=TINY["epochs"]):
    return subprocess.Popen(arena_cmd(out, losses, seeds, workers, epochs),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_as_from_a_terminal)


def rows(db):
    """key -> (finished_at, result) of every stored run, read without writing."""
    if not Path(db).exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {k: (t, r) for k, t, r in conn.execute("SELECT key, finished_at, result FROM runs")}
    except sqlite3.OperationalError:  # created, no table yet
        return {}
    finally:
        conn.close()


def alive_in_session(sid):
    """PIDs of live (not zombie) processes whose session is ``sid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            out.append(int(entry))
    return out


# A worker that is still importing torch when its driver dies notices as soon as its imports
# end (its first act is to check its parent); under heavy load that import alone takes seconds.
GONE_WITHIN_S = 30.0


def wait_gone(sid, timeout=GONE_WITHIN_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = alive_in_session(sid)
        if not left:
            return []
        time.sleep(0.1)
    return alive_in_session(sid)


def wait_for(predicate, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def workers_running(proc):
    return len(alive_in_session(proc.pid)) >= 3  # the driver and two pool workers


def check_store(db, total=None):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT config) FROM runs").fetchone()
    assert n == distinct, "a configuration was stored twice"
    if total is not None:
        assert n == total


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_killed_driver_takes_its_workers_along(tmp_path):
    proc = start(tmp_path, seeds=6)
    try:
        assert wait_for(lambda: workers_running(proc), 60, proc), proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as `kill -9 PID` does
        proc.wait()
        assert wait_gone(proc.pid) == []
    finally:
        for pid in alive_in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)
    check_store(tmp_path / "runs.db")


@pytest.mark.parametrize("how", [
    "SIGINT to the terminal's group",
    pytest.param("SIGTERM to the driver", marks=pytest.mark.slow),
])
def test_interrupt_stops_cleanly_and_the_rerun_resumes(tmp_path, how):
    db = tmp_path / "runs.db"
    proc = start(tmp_path, seeds=3, epochs=3)
    try:
        assert wait_for(lambda: len(rows(db)) >= 1 and workers_running(proc), 90, proc), (
            proc.stderr.read().decode())
        before = rows(db)
        if how.startswith("SIGINT"):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the workers too
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert wait_gone(proc.pid) == []
    finally:
        for pid in alive_in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)
    err = err.decode()
    assert proc.returncode == (130 if how.startswith("SIGINT") else 143), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.rstrip("\n").splitlines()[-1] == RESUME
    after = rows(db)
    assert all(after[k] == v for k, v in before.items())  # finished runs are kept as they were
    check_store(db)

    done = subprocess.run(arena_cmd(tmp_path, ("ce", "gce"), 3, 2, epochs=3),
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert f"{len(after)} runs already finished" in done.stderr.decode()
    final = rows(db)
    assert all(final[k] == v for k, v in after.items())
    check_store(db, total=6)


@pytest.mark.slow
def test_driver_sigkilled_twenty_times_loses_nothing_duplicates_nothing_leaves_nothing(tmp_path):
    """Twenty SIGKILLs of the driver alone: ten at a random moment of start-up and worker spawn,
    ten at a random moment after a run of that attempt was stored (mid-run, mid-write). After
    each, every process of the sweep is gone within seconds and every stored run is unchanged;
    a final rerun of its first seeds completes them with each run stored once."""
    db = tmp_path / "runs.db"
    # More runs than twenty attempts can finish on a fast machine; the final rerun completes
    # the first `first_seeds` seeds only (the sweep is seed-major, so those hold the survivors).
    losses, seeds, workers, first_seeds = ("ce", "gce", "ce:label_smoothing=0.1"), 200, 2, 20
    total = len(losses) * seeds
    rng = random.Random()
    train_run(RunConfig(loss=LossSpec.parse("ce"), seed=0, **TINY))  # data set made, cached
    t = time.monotonic()
    train_run(RunConfig(loss=LossSpec.parse("ce"), seed=1, **TINY))
    per_run = time.monotonic() - t
    # How long this machine takes to the first stored run (start-up, spawn, one run).
    t = time.monotonic()
    proc = start(tmp_path, losses, seeds, workers)
    assert wait_for(lambda: len(rows(db)) > 0, 300, proc), proc.stderr.read().decode()
    first_row = time.monotonic() - t
    os.kill(proc.pid, signal.SIGKILL)
    survivors, kills, leftovers, lost, mid_sweep, slowest = {}, 1, [], 0, 0, 0.0
    while True:
        proc.wait()
        t = time.monotonic()
        leftovers += wait_gone(proc.pid)
        slowest = max(slowest, time.monotonic() - t)
        for pid in alive_in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 0, proc.stderr.read().decode()
        now = rows(db)
        lost += sum(now.get(k) != v for k, v in survivors.items())
        survivors = now
        if kills == 20 or len(now) == total:
            break
        proc = start(tmp_path, losses, seeds, workers)
        if kills % 2:
            # After a run of this attempt is stored: the workers are mid-run, the driver may
            # be mid-write.
            before = len(now)
            if wait_for(lambda n=before: len(rows(db)) > n, 300, proc):
                time.sleep(rng.uniform(0.0, per_run))
                mid_sweep += 1
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):  # start-up or spawn
                proc.wait(timeout=rng.uniform(0.0, first_row))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the driver only, as `kill -9 PID` does
            kills += 1
    assert leftovers == [], f"processes outlived their driver: {leftovers}"
    assert lost == 0
    assert kills == 20, f"the sweep finished after {kills} kills"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        early = conn.execute("SELECT COUNT(*) FROM runs WHERE json_extract(config, '$.seed') < ?",
                             (first_seeds,)).fetchone()[0]
    done = subprocess.run(arena_cmd(tmp_path, losses, first_seeds, workers),
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert f"{early} runs already finished" in done.stderr.decode()
    final = rows(db)
    assert all(final[k] == v for k, v in survivors.items())
    check_store(db, total=len(survivors) + len(losses) * first_seeds - early)
    print(f"{kills} kills ({mid_sweep} after a run of the attempt was stored), "
          f"{len(survivors)} runs stored before the last rerun, 0 lost, 0 duplicated, "
          f"0 processes left (the last gone {slowest:.1f} s after its driver)")


# Two sweeps of six short runs each: about 15 s on an idle two-core machine, up to 200 s
# measured with two CPU burners beside it at a higher priority.
BOTH_SWEEPS_WITHIN_S = 600


def test_concurrent_sweeps_into_one_store(tmp_path):
    """Two sweeps started together into one new store, over the same runs: both finish and
    each run is stored once. The moment both open the new store is the race that
    test_store_concurrency.py provokes deterministically."""
    db = tmp_path / "runs.db"
    a = start(tmp_path, ("ce", "gce"), seeds=3, workers=1, epochs=2)
    b = start(tmp_path, ("gce", "ce"), seeds=3, workers=1, epochs=2)
    deadline = time.monotonic() + BOTH_SWEEPS_WITHIN_S
    try:
        errs = [p.communicate(timeout=max(1.0, deadline - time.monotonic()))[1].decode()
                for p in (a, b)]
    finally:
        for p in (a, b):
            for pid in alive_in_session(p.pid):
                os.kill(pid, signal.SIGKILL)
    assert a.returncode == 0 and b.returncode == 0, errs
    check_store(db, total=6)


# ---------------------------------------------------------------- the store, checked first


@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    args = ["arena", "--losses", "ce", "--seeds", "1", "--epochs", "1", "--out", str(out),
            "--num-samples", "400", "--width", "8", "--quiet"]
    assert main(args) == 0
    with RunStore(out) as store:  # enough rows for the table to span many pages
        (run,) = store.runs()
        for seed in range(1, 120):
            config = RunConfig.from_dict({**run.config.to_dict(), "seed": seed})
            store.add(f"fake-{seed}", "v", config, run.result)
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return out


# SQLite's companions of a WAL database: a read-only connection may create them (empty of
# changes); they are not the store's contents.
COMPANIONS = ("runs.db-wal", "runs.db-shm")


def snapshot(directory):
    """Every file and folder under ``directory`` (bytes of files), but SQLite's companions."""
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else None
            for p in Path(directory).rglob("*") if p.name not in COMPANIONS}


def copy_store(src, dst):
    dst.mkdir(exist_ok=True)
    (dst / "runs.db").write_bytes((src / "runs.db").read_bytes())
    return dst


def corrupt_one_page(db):
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) // page > 6
    middle = (len(data) // page) // 2
    data[middle * page:(middle + 1) * page] = random.Random(0).randbytes(page)
    db.write_bytes(bytes(data))


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


ARENA = ["--losses", "ce", "--seeds", "1", "--epochs", "1", "--num-samples", "400",
         "--width", "8", "--quiet"]


@pytest.mark.parametrize("damage", ["garbage", "one page overwritten", "empty table file"])
def test_corrupt_store_stops_arena_and_report_before_anything(tmp_path, good_store, capsys,
                                                              monkeypatch, damage):
    out = copy_store(good_store, tmp_path / "out")
    db = out / "runs.db"
    if damage == "garbage":
        db.write_bytes(random.Random(1).randbytes(5000))
        expected = "is not an SQLite database"
    elif damage == "one page overwritten":
        corrupt_one_page(db)
        expected = "is corrupt"
    else:  # an SQLite file that is not an arena store
        db.unlink()
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE runs (x)")
        expected = "not an arena store"
    before = snapshot(out)
    monkeypatch.setattr("losslab.arena.executors.run_one",
                        lambda config: pytest.fail("trained on a corrupt store"))
    assert main(["arena", "--out", str(out), *ARENA]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(db) in line and expected in line
    assert "mv " in line or "another directory" in line  # says what to do
    assert main(["report", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("losslab report: error: ") and expected in line
    assert snapshot(out) == before  # nothing written: no figures/, no report.html


def test_report_on_a_good_store_leaves_it_unchanged(tmp_path, good_store, capsys):
    out = copy_store(good_store, tmp_path / "out")
    before = (out / "runs.db").read_bytes()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and any((out / "figures").iterdir())
    assert (out / "runs.db").read_bytes() == before


def test_read_only_store_is_refused_before_training(tmp_path, good_store, capsys, monkeypatch):
    """Simulated: as root (CI containers) file modes do not stop writes, so os.access is made
    to answer as for an unprivileged user."""
    out = copy_store(good_store, tmp_path / "out")
    db = out / "runs.db"
    real_access = os.access
    monkeypatch.setattr(guard.os, "access", lambda p, mode: (
        False if mode == os.W_OK and Path(p) == db else real_access(p, mode)))
    monkeypatch.setattr("losslab.arena.executors.run_one",
                        lambda config: pytest.fail("trained on a read-only store"))
    before = snapshot(out)
    assert main(["arena", "--out", str(out), *ARENA, "--seeds", "3"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"{db} is read-only" in line and "chmod u+w" in line
    assert snapshot(out) == before
    assert main(["report", str(out)]) == 0  # reading needs no write access


def test_store_sqlite_refuses_to_write_is_refused(tmp_path, good_store, capsys, monkeypatch):
    """Where file modes say writable but SQLite cannot write (a read-only mount, or modes
    that do bind), SQLite's own answer is checked inside a rolled-back transaction."""
    out = copy_store(good_store, tmp_path / "out")
    real_connect = sqlite3.connect

    class ReadOnly:
        def __init__(self, *a, **k):
            self.conn = real_connect(*a, **k)

        def execute(self, sql, *a):
            if sql.startswith("BEGIN"):
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return self.conn.execute(sql, *a)

        def close(self):
            self.conn.close()

    monkeypatch.setattr(guard.sqlite3, "connect", lambda *a, **k: (
        real_connect(*a, **k) if k.get("uri") else ReadOnly(*a, **k)))
    assert main(["arena", "--out", str(out), *ARENA, "--seeds", "3"]) == 1
    assert "is read-only" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_read_only_and_unreadable_store_for_real(tmp_path, good_store, capsys):
    out = copy_store(good_store, tmp_path / "out")
    db = out / "runs.db"
    db.chmod(0o444)
    try:
        assert main(["arena", "--out", str(out), *ARENA, "--seeds", "3"]) == 1
        assert "is read-only" in one_error_line(capsys.readouterr().err)
        db.chmod(0o000)
        assert main(["report", str(out)]) == 1
        assert "cannot read" in one_error_line(capsys.readouterr().err)
    finally:
        db.chmod(0o644)
