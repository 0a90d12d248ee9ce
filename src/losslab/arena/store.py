"""The result store: one SQLite file (``runs.db``, WAL journal) with one row per finished run.

A row is written in a single transaction only after its run has finished, keyed by
:func:`losslab.arena.config.run_key` (a hash of the full config and the code version) with
``INSERT OR IGNORE`` on the primary key. So a process killed at any moment loses only the runs
in flight, a finished run is never rewritten or duplicated, and re-running a sweep skips the
keys already present. Two sweeps may write one store at once: each waits up to
:data:`BUSY_TIMEOUT_S` for the other's locks, including while the first to open a new store
switches it to WAL (:func:`_use_wal`). Per-epoch curves and the reliability table live in the
row's JSON; the label cleaning's scores (method, precision, recall, noise left, cost, flags per
class) have columns of their own, added in place to a store written before they existed.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import RunConfig

DB_NAME = "runs.db"
# How long a connection waits for another process's lock before SQLite's "database is locked".
BUSY_TIMEOUT_S = 30.0
# First and longest pause between tries of the WAL switch (doubling in between).
_WAL_RETRY_FIRST_S = 0.005
_WAL_RETRY_MAX_S = 0.1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    code_version TEXT NOT NULL,
    loss TEXT NOT NULL,
    loss_label TEXT NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    noise TEXT NOT NULL,
    noise_rate REAL NOT NULL,
    imbalance REAL NOT NULL,
    seed INTEGER NOT NULL,
    test_acc REAL,
    test_ece REAL,
    config TEXT NOT NULL,
    result TEXT NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Columns added after the first schema, with their SQL types. A store written before them is
# migrated on open by ALTER TABLE ADD COLUMN: its rows keep their values and read NULL (or the
# default) in the new columns.
_ADDED_COLUMNS = (
    ("cleaning", "TEXT NOT NULL DEFAULT 'none'"),
    ("cleaning_precision", "REAL"),
    ("cleaning_recall", "REAL"),
    ("noise_left", "REAL"),
    ("cleaning_seconds", "REAL"),
    ("flagged_per_class", "TEXT"),
)
_COLUMNS = (
    "key", "code_version", "loss", "loss_label", "dataset", "model", "noise", "noise_rate",
    "imbalance", "seed", "test_acc", "test_ece", "config", "result", "finished_at",
    *(name for name, _ in _ADDED_COLUMNS),
)


@dataclass(frozen=True)
class StoredRun:
    key: str
    config: RunConfig
    result: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = self.result["metrics"]
        return out


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _is_busy(err: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY ("database is locked"): another connection holds a lock this one needs."""
    code = getattr(err, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(err)


def _use_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch ``conn``'s database to WAL, waiting up to ``timeout_s`` for other connections.

    A new database starts with a rollback journal; the switch is a write transaction that
    first reads the header under a shared lock and then asks for the write lock. If another
    connection holds that lock (another process switching the same new file, or
    :func:`losslab.arena.guard.check_store` probing it), SQLite returns SQLITE_BUSY at once
    without calling the busy handler, since waiting while holding a shared lock could
    deadlock (https://sqlite.org/lang_transaction.html: a read transaction cannot become a
    write transaction while another connection is writing). So the switch is retried here,
    with pauses growing from 5 ms to 100 ms, until it succeeds or ``timeout_s`` has passed.
    Once the file is in WAL the statement changes nothing and takes no write lock."""
    deadline = time.monotonic() + timeout_s
    pause = _WAL_RETRY_FIRST_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if not _is_busy(err) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, _WAL_RETRY_MAX_S)


class RunStore:
    """Open (creating if needed) ``<directory>/runs.db``; ``read_only=True`` opens an existing
    store without ever writing to it (``mode=ro``), as the report does."""

    def __init__(self, directory: str | Path, *, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S,
                                         isolation_level=None)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            _use_wal(self._conn, BUSY_TIMEOUT_S)
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(runs)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                try:
                    self._conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as err:  # another process added it first
                    if "duplicate column" not in str(err):
                        raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished_keys(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT key FROM runs")}

    def add(self, key: str, code_version: str, config: RunConfig, result: dict[str, Any]) -> bool:
        """Insert one finished run atomically; return False if the key was already stored."""
        m = result["metrics"]
        cleaning = result.get("extra", {}).get("cleaning", {})
        per_class = cleaning.get("flagged_per_class")
        cur = self._conn.execute(
            f"INSERT OR IGNORE INTO runs ({','.join(_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(_COLUMNS))})",
            (
                key,
                code_version,
                config.loss.name,
                config.label,
                config.dataset,
                config.model,
                config.noise,
                config.noise_rate,
                config.imbalance,
                config.seed,
                _finite_or_none(m["test_acc"]),
                _finite_or_none(m["test_ece"]),
                json.dumps(config.to_dict(), sort_keys=True),
                json.dumps(result),
                time.time(),
                config.cleaning,
                _finite_or_none(m.get("cleaning_precision", math.nan)),
                _finite_or_none(m.get("cleaning_recall", math.nan)),
                _finite_or_none(m.get("noise_left", math.nan)),
                cleaning.get("seconds"),
                None if per_class is None else json.dumps(per_class),
            ),
        )
        return cur.rowcount == 1

    def runs(self, keys: Iterable[str] | None = None) -> list[StoredRun]:
        rows = self._conn.execute("SELECT key, config, result FROM runs ORDER BY rowid").fetchall()
        wanted = None if keys is None else set(keys)
        return [
            StoredRun(k, RunConfig.from_dict(json.loads(c)), json.loads(r))
            for k, c, r in rows
            if wanted is None or k in wanted
        ]

    def set_meta(self, name: str, value: Any) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value, sort_keys=True))
        )

    def get_meta(self, name: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])
