"""The arena on the user's own data: reading .csv/.npz/module:function, every check before
training, label mapping, the stratified split and standardisation
(losslab.arena.user_data, user_tables, user_sources)."""

import numpy as np
import pytest
import torch

from losslab.arena.user_data import (
    TEST_SHARE,
    load_user_data,
    prepare_user_data,
    standardise,
    stratified_split,
)
from losslab.arena.user_tables import RawData

torch.set_num_threads(1)


def blobs(n_per_class=12, classes=("a", "b", "c"), features=3, seed=0):
    """Separable Gaussian blobs: features (N, F) and string labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i, c in enumerate(classes):
        xs.append(rng.normal(3.0 * i, 1.0, size=(n_per_class, features)))
        ys += [c] * n_per_class
    return np.concatenate(xs), np.array(ys)


def write_csv(path, x, y, names=None, label="label"):
    names = names or [f"f{i}" for i in range(x.shape[1])]
    lines = [",".join([*names, label])]
    lines += [",".join([*(repr(float(v)) for v in row), str(t)]) for row, t in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_string_labels_are_mapped_in_sorted_order(tmp_path):
    x, y = blobs(classes=("zebra", "ant", "mole"))
    data = load_user_data(f"{write_csv(tmp_path / 'd.csv', x, y)}#label", data_seed=1)
    assert data.classes == ("ant", "mole", "zebra")
    assert data.labels_mapped
    assert data.num_classes == 3
    assert data.record()["classes"] == ["ant", "mole", "zebra"]
    assert "'ant'->0, 'mole'->1, 'zebra'->2" in data.describe(1)
    # Every row lands in one split, with its class code.
    assert len(data.y_train) + len(data.y_test) == 36
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == (3,)


def test_contiguous_integer_labels_are_not_mapped_and_others_are():
    x, _ = blobs()
    y = np.repeat([0, 1, 2], 12)
    d = prepare_user_data(RawData(x, y), "d", "h", 0)
    assert d.classes == (0, 1, 2) and not d.labels_mapped
    d = prepare_user_data(RawData(x, np.repeat([1, 2, 5], 12)), "d", "h", 0)
    assert d.classes == (1, 2, 5) and d.labels_mapped
    assert sorted(set(d.y_train.tolist())) == [0, 1, 2]
    # Integral floats and numeric strings are integer labels too.
    d = prepare_user_data(RawData(x, np.repeat([0.0, 1.0, 2.0], 12)), "d", "h", 0)
    assert d.classes == (0, 1, 2) and not d.labels_mapped
    d = prepare_user_data(RawData(x, np.repeat(["10", "2", "3"], 12)), "d", "h", 0)
    assert d.classes == (2, 3, 10)  # numeric order, not string order


def test_stratified_split_is_seeded_and_keeps_every_class_on_both_sides():
    labels = np.repeat([0, 1, 2], [40, 8, 2])
    train, test = stratified_split(labels, TEST_SHARE, np.random.default_rng(3))
    assert np.bincount(labels[test]).tolist() == [10, 2, 1]
    assert np.bincount(labels[train]).tolist() == [30, 6, 1]
    assert set(train) | set(test) == set(range(50)) and not set(train) & set(test)
    again = stratified_split(labels, TEST_SHARE, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip((train, test), again, strict=True))
    other = stratified_split(labels, TEST_SHARE, np.random.default_rng(4))
    assert not np.array_equal(test, other[1])


def test_standardisation_uses_the_training_split_only():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    x_test = np.array([[7.0, 6.0]])
    a, b = standardise(x, x_test)
    sd = np.std([1.0, 3.0, 5.0])
    np.testing.assert_allclose(a[:, 0], (x[:, 0] - 3.0) / sd, rtol=1e-6)
    np.testing.assert_allclose(a[:, 1], 0.0)  # a constant feature is only centred
    np.testing.assert_allclose(b, [[(7.0 - 3.0) / sd, 1.0]], rtol=1e-6)
    # Signals (N, C, L): one mean and deviation over all values.
    sig = np.arange(12, dtype=np.float64).reshape(2, 2, 3)
    s, _ = standardise(sig, sig[:1])
    assert abs(float(s.mean())) < 1e-6 and abs(float(s.std()) - 1) < 1e-6


def test_given_test_split_is_used_as_is(tmp_path):
    x, y = blobs()
    xt, yt = blobs(n_per_class=2, seed=1)
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=xt, y_test=yt)
    data = load_user_data(str(tmp_path / "d.npz"), data_seed=0)
    assert len(data.y_train) == 36 and len(data.y_test) == 6
    assert data.record()["test_split"] == "given"
    mean, sd = x.mean(0), x.std(0)
    np.testing.assert_allclose(data.x_test, (xt - mean) / sd, rtol=1e-5)


def test_function_returning_tensors_or_datasets(tmp_path, monkeypatch):
    x, _ = blobs()
    y = np.repeat([0, 1, 2], 12)
    (tmp_path / "my_loaders.py").write_text(
        "import numpy as np, torch\n"
        "from torch.utils.data import TensorDataset\n"
        f"X = torch.tensor(np.array({x.tolist()!r}), dtype=torch.float32)\n"
        f"Y = torch.tensor({y.tolist()!r})\n"
        "def tensors():\n    return X, Y\n"
        "def datasets():\n    return TensorDataset(X[:30], Y[:30]), TensorDataset(X[30:], Y[30:])\n"
        "def mapping():\n    return {'X': X.numpy(), 'y': Y.numpy()}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    a = load_user_data("my_loaders:tensors", 0)
    assert len(a.y_train) + len(a.y_test) == 36 and not a.labels_mapped
    b = load_user_data("my_loaders:datasets", 0)
    assert (len(b.y_train), len(b.y_test)) == (30, 6)
    c = load_user_data("my_loaders:mapping", 0)
    # The hash is of the arrays: the same values as tensors or as numpy arrays agree.
    assert a.sha256 == c.sha256 and b.sha256 != a.sha256


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda x, y: RawData(x, y[:-1]), "X has 36 rows but y has 35 labels"),
        (lambda x, y: RawData(x[:, 0], y), "X must have one row per sample"),
        (lambda x, y: RawData(x.astype(str), y), "X must hold numbers"),
        (lambda x, y: RawData(np.where(np.arange(36)[:, None] == 4, np.nan, x), y),
         "3 feature value(s) of X are missing, NaN or infinite (in 1 row(s)); the first at "
         "row 4, feature 0"),
        (lambda x, y: RawData(x, np.array(["a"] * 36)), "has a single class ('a')"),
        (lambda x, y: RawData(x, np.r_[np.repeat([0, 1], 17), 2, 0.5]),
         "y has the value 0.5 at row 35"),
        (lambda x, y: RawData(x, np.r_[np.repeat([0, 1], 17), 2, 1]),
         "class(es) with fewer than 2 training samples: 2 (1)"),
        (lambda x, y: RawData(x, np.concatenate([np.repeat(["a", "b"], 17), ["a", ""]])),
         "1 missing label(s), the first at row 35"),
        (lambda x, y: RawData(x, y, x[:4], np.array(["a", "b", "q", "r"])),
         "the test labels 'q', 'r' never occur in the training labels"),
        (lambda x, y: RawData(x, y, x[:4, :2], y[:4]), "X_test has 2 features but X has 3"),
    ],
)
def test_bad_arrays_fail_with_one_clear_line(make, message):
    x, y = blobs()
    with pytest.raises(ValueError) as err:
        prepare_user_data(make(x, y), "d", "h", 0)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
