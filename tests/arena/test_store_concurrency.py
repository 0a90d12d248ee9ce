"""Two sweeps opening one new store at the same moment (losslab.arena.store, guard).

A new ``runs.db`` starts in SQLite's rollback journal and is switched to WAL by whichever
process opens it first. While one connection holds the write lock of that still-rollback file
(another process switching it to WAL, or the arena's write probe of an empty file), a second
``PRAGMA journal_mode=WAL`` fails at once with "database is locked": SQLite does not wait
(no busy handler) for that switch. Each test holds the lock from another connection for a
moment and opens the store meanwhile; the open must wait for the lock, not fail.
"""

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from losslab.arena import guard
from losslab.arena.store import DB_NAME, RunStore

HOLD_S = 0.3


def journal_mode(directory: Path) -> str:
    with sqlite3.connect(directory / DB_NAME) as conn:
        mode: str = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return mode


def test_open_waits_for_another_writer_of_a_new_store(tmp_path):
    """The other writer: a connection in a write transaction on the new, empty file, as
    another sweep's store holds one while it switches the file to WAL."""
    holder = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(HOLD_S, holder.execute, ("ROLLBACK",))
    release.start()
    try:
        with RunStore(tmp_path) as store:
            assert store.finished_keys() == set()
    finally:
        release.join()
        holder.close()
    assert journal_mode(tmp_path) == "wal"


def test_open_waits_for_the_other_sweeps_write_probe(tmp_path, monkeypatch):
    """The other writer: the arena's check that an (empty) store can be written, which holds
    SQLite's write lock between its BEGIN IMMEDIATE and ROLLBACK; a sleep widens that window."""
    (tmp_path / DB_NAME).touch()  # another sweep's store has just created the file
    real_connect = sqlite3.connect
    in_probe = threading.Event()

    class SlowProbe:
        def __init__(self, *a, **k):
            self.conn = real_connect(*a, **k)

        def execute(self, sql, *a):
            if sql == "ROLLBACK":
                in_probe.set()
                time.sleep(HOLD_S)
            return self.conn.execute(sql, *a)

        def close(self):
            self.conn.close()

    # guard.sqlite3 is the sqlite3 module: only the probe's own connection (in its thread,
    # not the read-only one) is slowed.
    monkeypatch.setattr(guard.sqlite3, "connect", lambda *a, **k: (
        SlowProbe(*a, **k) if threading.current_thread().name == "probe" and not k.get("uri")
        else real_connect(*a, **k)))
    errors = []

    def probe():
        try:
            guard.check_store(tmp_path, command="arena", write=True)
        except Exception as err:  # reported by the main thread
            errors.append(err)
            in_probe.set()

    other = threading.Thread(target=probe, name="probe")
    other.start()
    try:
        assert in_probe.wait(30)
        with RunStore(tmp_path) as store:
            assert store.finished_keys() == set()
    finally:
        other.join()
    assert errors == []
    assert journal_mode(tmp_path) == "wal"


def test_open_gives_up_after_the_busy_timeout(tmp_path, monkeypatch):
    """A write lock never released: the open fails with SQLite's own error once its busy
    timeout has passed, rather than waiting forever."""
    monkeypatch.setattr("losslab.arena.store.BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            RunStore(tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
