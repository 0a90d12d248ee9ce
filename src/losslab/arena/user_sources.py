"""What a ``dataset`` or ``model`` setting names when it is not built in: a data file or a
``module:function`` of the user's, and the content hashes that make them part of a run's key.

* A data file is named by its path, ending in one of :data:`DATA_SUFFIXES`. A relative path is
  made absolute against the current directory (the TOML loader first makes it absolute
  against the TOML file's directory), so a stored configuration names one file wherever the
  command runs.
* ``module:function`` (``my_pkg.data:load``) is imported from the Python path plus the current
  directory, so a module beside the command's working directory is found as it is by
  ``python -m``.
* A table's label column travels with its path as ``path#column`` (the settings key
  ``label_column`` is folded into ``dataset`` so), so one string names the task.

:func:`file_sha256` is the sha256 of a file's bytes; :func:`arrays_sha256` hashes arrays
(dtype, shape and bytes), for data that a function returns.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DATA_SUFFIXES = (".csv", ".npz", ".parquet")
_SPEC = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


def is_callable_spec(value: object) -> bool:
    """``module.path:function``, both parts Python identifiers (a Windows drive such as
    ``C:\\data.csv`` is not one)."""
    return isinstance(value, str) and _SPEC.match(value) is not None


def is_data_file(value: object) -> bool:
    """A path ending in one of :data:`DATA_SUFFIXES` (case-insensitive)."""
    return isinstance(value, str) and value.lower().endswith(DATA_SUFFIXES)


def split_label_column(dataset: str) -> tuple[str, str]:
    """``"data.csv#label"`` -> ``("data.csv", "label")``; without a column, ``(dataset, "")``.
    Only a ``#`` after a data file's name or a ``module:function`` separates a column."""
    source, sep, column = dataset.rpartition("#")
    if sep and column and (is_data_file(source) or is_callable_spec(source)):
        return source, column
    return dataset, ""


def with_label_column(dataset: str, column: str) -> str:
    """The inverse of :func:`split_label_column`."""
    return f"{dataset}#{column}" if column else dataset


def absolute_data_path(value: str, base: str | Path | None = None) -> str:
    """``value`` made absolute against ``base`` (default: the current directory); ``~`` is
    expanded. Symbolic links are kept, so the stored name is the one the user gave."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base if base is not None else os.getcwd()) / path
    return os.path.normpath(path)


def display_name(value: str) -> str:
    """How a dataset is shown in tables: a file by its name (and ``[label column]``), anything
    else as written. :func:`display_names` tells apart files that share a name."""
    source, column = split_label_column(value)
    if not is_data_file(source):
        return value
    return os.path.basename(source) + (f"[{column}]" if column else "")


def display_names(values: Iterable[str]) -> dict[str, str]:
    """:func:`display_name` of each dataset, except that data files whose names clash
    (``/x/a/data.csv`` and ``/x/b/data.csv``) are shown with the fewest trailing folders that
    tell each apart (``a/data.csv``, ``b/data.csv``; the whole path when none do)."""
    by_name: dict[str, list[str]] = {}
    for value in dict.fromkeys(values):
        by_name.setdefault(display_name(value), []).append(value)
    names = {}
    for name, clashing in by_name.items():
        if len(clashing) == 1:
            names[clashing[0]] = name
            continue
        sources = {v: split_label_column(v) for v in clashing}
        for value, (source, column) in sources.items():
            others = [s for v, (s, _) in sources.items() if v != value]
            names[value] = _distinguishing_path(source, others) + (f"[{column}]" if column else "")
    return names


def _distinguishing_path(path: str, others: list[str]) -> str:
    """The shortest trailing part of ``path`` (two or more components, joined by ``/``) that
    no path of ``others`` ends with; ``path`` itself when every trailing part is shared."""
    parts = _components(path)
    other_parts = [_components(o) for o in others]
    for depth in range(2, len(parts) + 1):
        tail = parts[-depth:]
        if all(o[-depth:] != tail for o in other_parts):
            return "/".join(tail)
    return path


def _components(path: str) -> tuple[str, ...]:
    """The folder and file names of ``path``, without its root or drive."""
    pure = Path(path)
    return pure.parts[1:] if pure.anchor else pure.parts


def import_callable(spec: str, what: str) -> Callable[..., Any]:
    """Import ``module:function`` for the setting ``what`` (``dataset`` or ``model``), with an
    error naming the spec and the reason when the module or the attribute is missing."""
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"arena: {what} {spec!r} is not of the form module:function")
    module_name, attr = match.groups()
    try:
        module = _import(module_name)
    except Exception as err:  # any error the user's module raises while importing
        raise ValueError(
            f"arena: {what} {spec!r}: importing module {module_name!r} failed "
            f"({type(err).__name__}: {err})"
        ) from err
    func = getattr(module, attr, None)
    if func is None:
        raise ValueError(f"arena: {what} {spec!r}: module {module_name!r} has no attribute "
                         f"{attr!r}")
    if not callable(func):
        raise ValueError(f"arena: {what} {spec!r}: {attr!r} is a {type(func).__name__}, not a "
                         f"function")
    return func  # type: ignore[no-any-return]


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        cwd = os.getcwd()
        missing_top = err.name == module_name.split(".")[0]
        if not missing_top or cwd in sys.path:
            raise
        # The console script's path does not hold the working directory (``python -m`` does).
        # Appended, not prepended, so it never shadows an installed package; kept, so that
        # worker processes started later inherit it.
        sys.path.append(cwd)
        importlib.invalidate_caches()
        return importlib.import_module(module_name)


@lru_cache(maxsize=16)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str) -> str:
    """sha256 of the file's bytes (read again whenever its size or modification time
    changes)."""
    st = os.stat(path)
    return _file_sha256(path, st.st_mtime_ns, st.st_size)


def arrays_sha256(arrays: dict[str, np.ndarray | None]) -> str:
    """sha256 over each array's name, dtype, shape and bytes (C order); None arrays are
    hashed as absent."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(name.encode())
        if a is None:
            h.update(b"absent")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def source_sha256(func: Callable[..., Any]) -> str:
    """sha256 of the source file of the module defining ``func`` (its qualified name when
    there is no source file), so editing a model factory's module reruns its runs."""
    import inspect

    h = hashlib.sha256(f"{func.__module__}:{getattr(func, '__qualname__', '')}".encode())
    try:
        source = inspect.getsourcefile(func)
    except TypeError:
        source = None
    if source and os.path.isfile(source):
        h.update(Path(source).read_bytes())
    return h.hexdigest()
