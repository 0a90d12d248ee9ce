"""Checks of the results store before anything uses it.

``losslab arena`` checks ``<out>/runs.db`` before any training and ``losslab report`` before
drawing anything: a store that cannot be read, is not an SQLite database, fails SQLite's
integrity check, or (for the arena) cannot be written, stops the command with one line that
names the file and says what to do. Nothing in the store is changed by a check: it is opened
read-only (``mode=ro``), and whether it can be written is asked of the operating system and,
where the operating system would let anyone write (root ignores file modes), of SQLite itself
inside a transaction that is rolled back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._core.errors import RuntimeFailure
from .store import DB_NAME, RunStore, StoredRun

SQLITE_HEADER = b"SQLite format 3\x00"
# Columns the store's ``runs`` table must have for the arena and the report to use it.
_RUNS_COLUMNS = {"key", "code_version", "config", "result", "finished_at"}


class StoreError(RuntimeFailure):
    """The store cannot be used as it is (exit code 1)."""


def _aside(path: Path) -> str:
    return (f"move it aside (mv {path} {path}.bad) and rerun to start a new store, or restore a "
            f"copy")


def _open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0,
                           isolation_level=None)


def check_store(directory: str | Path, *, command: str, write: bool) -> Path | None:
    """Check ``directory/runs.db``; return its path, or ``None`` when it does not exist yet.

    Raises :class:`StoreError` naming the file when it cannot be read, is not an SQLite
    database of the arena, fails ``PRAGMA integrity_check``, or (``write=True``) cannot be
    written.
    """
    path = Path(directory) / DB_NAME
    if not os.path.lexists(path):
        return None
    if not path.is_file():
        raise StoreError(f"{command}: {path} is not a regular file; remove it or choose another "
                         f"directory")
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as err:
        raise StoreError(f"{command}: cannot read {path} ({err.strerror or err}); make it "
                         f"readable (chmod u+r {path}) or choose another directory") from err
    if header and header != SQLITE_HEADER:
        raise StoreError(f"{command}: {path} is not an SQLite database (corrupt, or another "
                         f"file); {_aside(path)}")
    if not header:  # an empty file is an empty database to SQLite
        _check_writable(path, command, write)
        return path
    try:
        conn = _open_read_only(path)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(3)")]
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = ({row[1] for row in conn.execute("PRAGMA table_info(runs)")}
                       if "runs" in tables else _RUNS_COLUMNS)
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise StoreError(f"{command}: {path} is corrupt ({err}); {_aside(path)}") from err
    if problems != ["ok"]:
        raise StoreError(f"{command}: {path} is corrupt (integrity check: {problems[0]}); "
                         f"{_aside(path)}")
    if not columns >= _RUNS_COLUMNS:
        raise StoreError(f"{command}: {path} is an SQLite database but not an arena store (its "
                         f"runs table lacks {', '.join(sorted(_RUNS_COLUMNS - columns))}); "
                         f"choose another directory")
    _check_writable(path, command, write)
    return path


def _check_writable(path: Path, command: str, write: bool) -> None:
    if not write:
        return
    # SQLite writes beside the file too (the -wal and -shm files of WAL mode).
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists() and not os.access(p, os.W_OK):
            raise _read_only(path, p)
    if not os.access(path.parent, os.W_OK):
        raise _read_only(path, path.parent)
    # Where file modes do not bind (root), ask SQLite; nothing is written.
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.OperationalError as err:
        if "readonly" in str(err) or "read-only" in str(err):
            raise _read_only(path, path) from err
        raise StoreError(f"{command}: cannot write {path} ({err})") from err


@contextlib.contextmanager
def store_errors(directory: str | Path) -> Iterator[None]:
    """Turn an SQLite error while the arena uses its store (a disk that filled up, a file made
    read-only or damaged mid-sweep) into one line naming the file; finished runs are kept."""
    try:
        yield
    except sqlite3.Error as err:
        path = Path(directory) / DB_NAME
        raise StoreError(f"arena: writing {path} failed ({err}); the runs finished before "
                         f"are kept; fix the cause and rerun the same command to resume") from err


def _read_only(path: Path, culprit: Path) -> StoreError:
    what = "directory" if culprit.is_dir() else "file"
    return StoreError(f"arena: {path} is read-only (the {what} {culprit} is not writable); make "
                      f"it writable (chmod u+w {culprit}) or choose another --out")


def require_store(directory: str | Path, *, fn: str) -> Path:
    """``directory`` as a Path; a ValueError naming ``fn`` when it holds no store."""
    directory = Path(directory)
    if not (directory / DB_NAME).is_file():
        raise ValueError(f"{fn}: directory {str(directory)!r} holds no {DB_NAME}; "
                         f"run `losslab arena --out {directory}` first")
    return directory


def read_results(
    directory: str | Path, *, fn: str
) -> tuple[list[StoredRun], dict[str, Any], dict[str, Any]]:
    """The finished runs of ``directory/runs.db`` with the presets' recorded claims and the
    presets whose claims were skipped, after :func:`check_store` (read-only). ``fn`` names the
    caller in the error for a directory without a store."""
    directory = require_store(directory, fn=fn)
    check_store(directory, command="report", write=False)  # a corrupt store draws nothing
    try:
        with RunStore(directory, read_only=True) as store:
            return (store.runs(), store.get_meta("presets", {}),
                    store.get_meta("presets_overridden", {}))
    except sqlite3.OperationalError as err:
        if "no such table" not in str(err):
            raise StoreError(f"report: cannot read {directory / DB_NAME} ({err})") from err
        return [], {}, {}
