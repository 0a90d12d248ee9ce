"""The user's own data in the arena: a data file or a ``module:function``, checked, with its
labels mapped to 0..K-1, split and standardised.

Steps, each failing with one line that names the dataset and the problem, before any
training:

1. Read: a file (:mod:`.user_tables`) or the function's return value, which may be
   ``(X, y)``, ``(X, y, X_test, y_test)``, a mapping with those keys, a ``torch`` Dataset of
   ``(x, y)`` pairs or ``(train, test)`` Datasets; tensors, arrays and lists all work.
2. Check the arrays: ``X`` is numeric with one row per label, ``X_test`` has ``X``'s row
   shape, no feature is NaN or infinite (the count and the first place are named).
3. Labels: integers, integral floats or strings. The distinct training labels in sorted order
   become classes 0..K-1; when they are not already 0..K-1 (strings, or integers such as
   {1, 2, 5}) the mapping is reported and recorded in every run's result. Needs K >= 2, at
   least 2 training samples per class, and no test label that training lacks.
4. Split: a given test split is used as it is; otherwise a stratified :data:`TEST_SHARE` of
   every class (at least one sample, never all) is held out for testing, fixed by
   ``data_seed``.
5. Standardise with the training split's statistics only: per feature for a table ``(N, F)``,
   one mean and standard deviation for signals or images ``(N, C, ...)``; a constant feature
   is only centred. Features become float32.

The content hash (:func:`.user_sources.file_sha256` for a file, of the returned arrays for a
function) goes into the run key, so an edited file reruns and an unchanged one is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .user_sources import (
    arrays_sha256,
    file_sha256,
    import_callable,
    is_callable_spec,
    split_label_column,
)
from .user_tables import RawData, read_data_file

TEST_SHARE = 0.25


@dataclass(frozen=True)
class UserData:
    """A user's dataset ready for the arena: standardised float32 features ``(N, *shape)``,
    int64 labels 0..K-1, and what the run result records about it."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[Any, ...]  # the original label of class 0, 1, ...
    labels_mapped: bool
    test_given: bool
    sha256: str
    name: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def record(self) -> dict[str, Any]:
        """What a run result keeps about its data."""
        return {
            "source": self.name,
            "sha256": self.sha256,
            "classes": list(self.classes),
            "labels_mapped": self.labels_mapped,
            "train": len(self.y_train),
            "test": len(self.y_test),
            "input_shape": list(self.x_train.shape[1:]),
            "test_split": "given" if self.test_given else f"stratified {TEST_SHARE:.0%}",
        }

    def describe(self, data_seed: int) -> str:
        """One line for the command's output."""
        features = "x".join(map(str, self.x_train.shape[1:]))
        split = ("test split as given" if self.test_given else
                 f"stratified {TEST_SHARE:.0%} test split, data seed {data_seed}")
        text = (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test rows "
                f"({split}), {features} features standardised with the training split's "
                f"statistics, {self.num_classes} classes")
        if self.labels_mapped:
            shown = ", ".join(f"{c!r}->{i}" for i, c in enumerate(self.classes[:8]))
            more = ", ..." if self.num_classes > 8 else ""
            text += f"; labels mapped in sorted order: {shown}{more}"
        return text


def load_user_data(dataset: str, data_seed: int) -> UserData:
    """Read, check, split and standardise the user's ``dataset`` (a file, ``file#label_column``
    or ``module:function``; cached per process, a file is read again when it changes)."""
    dataset, label_column = split_label_column(dataset)
    if is_callable_spec(dataset):
        return _from_function(dataset, label_column, data_seed)
    try:
        st = os.stat(dataset)
    except OSError:
        st = None
    if st is None:
        raise ValueError(f"arena: dataset file {dataset!r} does not exist or is not a regular "
                         f"file")
    return _from_file(dataset, label_column, data_seed, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _from_file(path: str, label_column: str, data_seed: int, mtime_ns: int, size: int) -> UserData:
    raw = read_data_file(path, label_column)
    return prepare_user_data(raw, os.path.basename(path), file_sha256(path), data_seed)


@lru_cache(maxsize=4)
def _from_function(spec: str, label_column: str, data_seed: int) -> UserData:
    if label_column:
        raise ValueError(f"arena: label_column={label_column!r} applies to .csv and .parquet "
                         f"files, not to dataset {spec!r}, whose function returns the labels")
    func = import_callable(spec, "dataset")
    try:
        value = func()
    except Exception as err:  # the user's loader failed: report it in one line
        raise ValueError(f"arena: dataset {spec!r} raised {type(err).__name__}: {err}") from err
    raw = returned_arrays(value, spec)
    digest = arrays_sha256({"X": raw.x, "y": raw.y, "X_test": raw.x_test, "y_test": raw.y_test})
    return prepare_user_data(raw, spec, digest, data_seed)


def returned_arrays(value: Any, spec: str) -> RawData:
    """A loader's return value as arrays (see the module docstring for the accepted forms)."""
    from torch.utils.data import Dataset

    if isinstance(value, Dataset):
        return RawData(*_dataset_arrays(value, spec, "the Dataset"))
    if isinstance(value, dict) and "X" in value and "y" in value:
        value = tuple(value[k] for k in ("X", "y", "X_test", "y_test") if k in value)
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and all(isinstance(v, Dataset) for v in value):
            x, y = _dataset_arrays(value[0], spec, "the training Dataset")
            x_test, y_test = _dataset_arrays(value[1], spec, "the test Dataset")
            return RawData(x, y, x_test, y_test)
        if len(value) in (2, 4):
            arrays = [_array(v, spec, name) for v, name in
                      zip(value, ("X", "y", "X_test", "y_test"), strict=False)]
            tests = (arrays[2], arrays[3]) if len(arrays) == 4 else (None, None)
            return RawData(arrays[0], arrays[1], *tests)
    raise ValueError(
        f"arena: dataset {spec!r} returned {_kind(value)}; expected (X, y), (X, y, X_test, "
        f"y_test), a torch Dataset of (x, y) pairs or a (train, test) pair of Datasets"
    )


def _kind(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _array(value: Any, spec: str, name: str) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"arena: dataset {spec!r}: {name} is not an array ({err})") from err


def _dataset_arrays(ds: Any, spec: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        n = len(ds)
    except TypeError as err:
        raise ValueError(f"arena: dataset {spec!r}: {what} has no length ({err})") from err
    xs, ys = [], []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"arena: dataset {spec!r}: item {i} of {what} is {_kind(item)}, "
                             f"expected an (x, y) pair")
        xs.append(_array(item[0], spec, f"x of item {i}"))
        ys.append(_array(item[1], spec, f"y of item {i}").reshape(()))
    if not xs:
        raise ValueError(f"arena: dataset {spec!r}: {what} is empty")
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise ValueError(f"arena: dataset {spec!r}: the inputs of {what} differ in shape "
                         f"({', '.join(map(str, sorted(shapes)))})")
    return np.stack(xs), np.stack(ys)


def prepare_user_data(raw: RawData, name: str, sha256: str, data_seed: int) -> UserData:
    """Steps 2-5 of the module docstring on arrays already read."""
    _check_arrays(raw, name)
    y, y_test, classes, mapped = _labels(raw, name)
    x, x_test = raw.x, raw.x_test
    if x_test is None or y_test is None:
        train, test = stratified_split(y, TEST_SHARE, np.random.default_rng(data_seed))
        x, x_test, y, y_test = x[train], x[test], y[train], y[test]
    x, x_test = standardise(x.astype(np.float64), x_test.astype(np.float64))
    return UserData(x, y, x_test, y_test, classes, mapped, raw.x_test is not None, sha256, name)


def _check_arrays(raw: RawData, name: str) -> None:
    pairs = [("X", "y", raw.x, raw.y)]
    if raw.x_test is not None and raw.y_test is not None:
        pairs.append(("X_test", "y_test", raw.x_test, raw.y_test))
    for xn, yn, x, y in pairs:
        if x.ndim < 2:
            raise ValueError(f"arena: dataset {name!r}: {xn} must have one row per sample, shape "
                             f"(N, features...), got shape {x.shape}")
        if y.ndim != 1:
            raise ValueError(f"arena: dataset {name!r}: {yn} must be one label per row, shape "
                             f"(N,), got shape {y.shape}")
        if len(x) != len(y):
            raise ValueError(f"arena: dataset {name!r}: {xn} has {len(x)} rows but {yn} has "
                             f"{len(y)} labels")
        if len(x) == 0:
            raise ValueError(f"arena: dataset {name!r}: {xn} has no rows")
        if x.dtype.kind not in "biuf":
            raise ValueError(f"arena: dataset {name!r}: {xn} must hold numbers, got dtype "
                             f"{x.dtype}")
    if raw.x_test is not None and raw.x_test.shape[1:] != raw.x.shape[1:]:
        what = ("features" if raw.x.ndim == 2 else "per-row shape")
        have = raw.x_test.shape[1] if raw.x.ndim == 2 else raw.x_test.shape[1:]
        want = raw.x.shape[1] if raw.x.ndim == 2 else raw.x.shape[1:]
        raise ValueError(f"arena: dataset {name!r}: X_test has {have} {what} but X has {want}")
    features: list[tuple[str, np.ndarray | None, bool]] = [
        ("X", raw.x, False), ("X_test", raw.x_test, True)]
    for xn, values, test in features:
        if values is None or values.dtype.kind != "f":
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"arena: dataset {name!r}: {int(bad.sum())} feature value(s) of {xn} are "
                f"missing, NaN or infinite (in {int(bad.reshape(len(values), -1).any(1).sum())} "
                f"row(s)); the first at {_place(raw, first, test)}; fill or drop them"
            )


def _place(raw: RawData, index: tuple[int, ...], test: bool) -> str:
    row = raw.row(index[0], test)
    if raw.feature_names is not None and len(index) == 2:
        return f"{row}, column {raw.feature_names[index[1]]!r}"
    return f"{row}, feature {index[1:] if len(index) > 2 else index[1]}"


def _labels(raw: RawData, name: str) -> tuple[np.ndarray, np.ndarray | None, tuple[Any, ...], bool]:
    """Labels as codes 0..K-1 (train, test), the class values and whether they were mapped."""
    y = _label_values(raw.y, raw, name, test=False)
    y_test = None if raw.y_test is None else _label_values(raw.y_test, raw, name, test=True)
    if y_test is not None and y.dtype.kind != y_test.dtype.kind:
        y, y_test = y.astype(str), y_test.astype(str)  # numbers in one split, names in the other
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"arena: dataset {name!r} has a single class ({_py(classes[0])!r}); "
                         f"a classifier needs at least two")
    small = [f"{_py(c)!r} ({n})" for c, n in zip(classes, counts, strict=True) if n < 2]
    if small:
        raise ValueError(f"arena: dataset {name!r}: class(es) with fewer than 2 training "
                         f"samples: {', '.join(small)}; every class needs at least 2 (to be "
                         f"split, stratified, and cross-validated); drop or merge them")
    if y_test is not None:
        unseen = np.setdiff1d(y_test, classes)
        if len(unseen):
            raise ValueError(f"arena: dataset {name!r}: the test labels "
                             f"{', '.join(repr(_py(c)) for c in unseen[:10])} never occur in the "
                             f"training labels; the model cannot learn them")
    mapped = not (classes.dtype.kind == "i" and np.array_equal(classes, np.arange(len(classes))))
    codes = np.searchsorted(classes, y).astype(np.int64)
    codes_test = None if y_test is None else np.searchsorted(classes, y_test).astype(np.int64)
    return codes, codes_test, tuple(_py(c) for c in classes), mapped


def _py(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for messages and the JSON result)."""
    return value.item() if isinstance(value, np.generic) else value


def _label_values(y: np.ndarray, raw: RawData, name: str, test: bool) -> np.ndarray:
    """Labels as int64 (integers, booleans, integral floats, numeric strings) or as str."""
    yn = "y_test" if test else "y"
    if y.dtype.kind in "USO":
        text = np.char.strip(y.astype(str))
        empty = np.flatnonzero(text == "")
        if len(empty):
            raise ValueError(f"arena: dataset {name!r}: {len(empty)} missing label(s), the "
                             f"first at {raw.row(int(empty[0]), test)}")
        try:
            y = text.astype(np.float64)
        except ValueError:
            return text  # class names
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"arena: dataset {name!r}: labels must be class labels (integers or names), but "
                f"{yn} has the value {float(y[i])!r} at {raw.row(i, test)}; "
                f"{len(bad)} label(s) are not integers (a regression target?)"
            )
        return y.astype(np.int64)
    raise ValueError(f"arena: dataset {name!r}: {yn} must hold integers or strings, got dtype "
                     f"{y.dtype}")


def stratified_split(
    labels: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: round(share * n_c) samples of each class c to the test side,
    at least one and at most n_c - 1; both sorted."""
    test = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(max(int(round(share * len(idx))), 1), len(idx) - 1)
        test.append(idx[:k])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def standardise(x: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale both splits with the training split's mean and standard deviation:
    per feature for a table (N, F), one pair over all values otherwise. A constant feature
    (std 0) is only centred."""
    axis: int | None = 0 if x.ndim == 2 else None
    mean = x.mean(axis=axis)
    std = x.std(axis=axis)
    std = np.where(std > 0, std, 1.0)
    return ((x - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
