"""Reading a user's data file into raw arrays: ``.npz`` (arrays ``X``, ``y`` and optionally
``X_test``, ``y_test``), ``.csv`` (a header row, comma-separated, numeric feature columns and
one label column) and ``.parquet`` (the same columns; needs the optional ``pyarrow``).

Errors name the file and what is wrong with it (a missing label column lists the columns, a
non-numeric feature column is named with an example value). The checks on the arrays
themselves (non-finite values, labels, classes, shapes) are :mod:`.user_data`'s.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import zipfile
from dataclasses import dataclass

import numpy as np

PYARROW_INSTALL = "pip install pyarrow"


@dataclass(frozen=True)
class RawData:
    """Arrays as read, before any check: ``x`` (N, ...) numbers, ``y`` (N,) labels of any
    dtype, an optional test split, the feature column names of a table, and for a CSV the
    file line of every row (to point at a bad value)."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    lines: np.ndarray | None = None

    def row(self, index: int, test: bool = False) -> str:
        """Where row ``index`` of the training (or test) arrays is, for a message: the file
        line of a CSV row, else the row index."""
        if self.lines is not None and not test:
            return f"line {int(self.lines[index])}"
        return f"row {index}"


def read_data_file(path: str, label_column: str) -> RawData:
    """Read ``path`` by its suffix; ``label_column`` is required for tables and refused for
    ``.npz`` (whose labels are the array ``y``)."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ValueError(f"arena: dataset file {path!r} does not exist or is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"arena: dataset file {path!r} is not readable (permission denied)")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npz":
        if label_column:
            raise ValueError(
                f"arena: label_column={label_column!r} applies to .csv and .parquet files; "
                f"{name!r} is an .npz file whose labels are its array 'y'"
            )
        return _read_npz(path, name)
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError(
            f"arena: reading {name!r} needs the optional dependency pyarrow, which is not "
            f"installed; install it with: {PYARROW_INSTALL} (or save the table as .csv)"
        )
    columns, lines = _read_parquet(path, name) if suffix == ".parquet" else _read_csv(path, name)
    return _table(columns, lines, label_column, name)


def _read_npz(path: str, name: str) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"arena: dataset file {name!r} is not a readable .npz file ({err})") from err
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise ValueError(
            f"arena: dataset file {name!r} has no array {' or '.join(map(repr, missing))}; an "
            f".npz needs 'X' and 'y' (optionally 'X_test' and 'y_test'), it holds: "
            f"{', '.join(map(repr, arrays)) or 'nothing'}"
        )
    if ("X_test" in arrays) != ("y_test" in arrays):
        have, lack = ("X_test", "y_test") if "X_test" in arrays else ("y_test", "X_test")
        raise ValueError(f"arena: dataset file {name!r} has {have!r} but no {lack!r}; give "
                         f"both or neither")
    return RawData(arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test"))


def _read_csv(path: str, name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns as string arrays (header -> values) and the file line of each data row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank lines
                if len(row) != len(header or ()):
                    raise ValueError(
                        f"arena: dataset file {name!r}: line {reader.line_num} has {len(row)} "
                        f"fields but the header has {len(header or ())}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise ValueError(f"arena: dataset file {name!r} is not UTF-8 text (byte {err.start})") from err
    except csv.Error as err:
        raise ValueError(f"arena: dataset file {name!r} is not a readable CSV file ({err})") from err
    if header is None:
        raise ValueError(f"arena: dataset file {name!r} is empty; a CSV needs a header row")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"arena: dataset file {name!r} has the column name(s) "
                         f"{', '.join(map(repr, dupes))} more than once")
    if not rows:
        raise ValueError(f"arena: dataset file {name!r} has a header but no data rows")
    table = np.array(rows, dtype=str).reshape(len(rows), len(names))
    return {n: table[:, i] for i, n in enumerate(names)}, np.asarray(lines)


def _read_parquet(path: str, name: str) -> tuple[dict[str, np.ndarray], None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise ValueError(f"arena: dataset file {name!r} is not a readable Parquet file ({err})") from err
    if table.num_rows == 0:
        raise ValueError(f"arena: dataset file {name!r} has no rows")
    columns: dict[str, np.ndarray] = {}
    for column_name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
        values = column.to_numpy(zero_copy_only=False)
        if numeric and column.null_count:
            values = np.where(column.is_null().to_numpy(zero_copy_only=False), np.nan,
                              values.astype(np.float64))
        columns[str(column_name)] = (values if numeric
                                     else np.asarray([str(v) if v is not None else "" for v in values]))
    return columns, None


def _table(
    columns: dict[str, np.ndarray], lines: np.ndarray | None, label_column: str, name: str
) -> RawData:
    listed = ", ".join(map(repr, columns))
    if not label_column:
        raise ValueError(f"arena: dataset file {name!r} is a table: name its label column with "
                         f"label_column (--label-column NAME); its columns: {listed}")
    if label_column not in columns:
        raise ValueError(f"arena: dataset file {name!r} has no column {label_column!r}; its "
                         f"columns: {listed}")
    features = [c for c in columns if c != label_column]
    if not features:
        raise ValueError(f"arena: dataset file {name!r} has only the label column "
                         f"{label_column!r}; it needs at least one feature column")
    bad: list[str] = []
    parsed = []
    for c in features:
        values, example = _numeric(columns[c])
        if values is None:
            where = "" if lines is None else f" on line {int(lines[example[0]])}"
            bad.append(f"{c!r} (e.g. {example[1]!r}{where})")
        parsed.append(values)
    if bad:
        raise ValueError(
            f"arena: dataset file {name!r} has non-numeric feature column(s) {', '.join(bad)}; "
            f"encode them as numbers or drop them (every column but the label is a feature)"
        )
    x = np.stack(parsed, axis=1)  # type: ignore[arg-type]
    return RawData(x, columns[label_column], feature_names=tuple(features), lines=lines)


def _numeric(values: np.ndarray) -> tuple[np.ndarray | None, tuple[int, str]]:
    """``values`` as float64 (empty cells become NaN, for the non-finite check to count), or
    None and the first non-numeric cell (row, text)."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64), (0, "")
    text = np.char.strip(values.astype(str))
    text = np.where(text == "", "nan", text)
    try:
        return text.astype(np.float64), (0, "")
    except ValueError:
        pass
    for i, cell in enumerate(text):
        try:
            float(cell)
        except ValueError:
            return None, (i, str(cell))
    return None, (0, str(text[0]))  # numpy refused what float() accepts: name the first cell
