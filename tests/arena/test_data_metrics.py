"""Datasets, the long-tail subsample and test metrics (losslab.arena.data / metrics)."""

import random

import numpy as np
import pytest
import torch

from losslab.arena.data import load_split, long_tail_indices, prepare
from losslab.arena.metrics import evaluate, macro_f1
from losslab.diagnostics.calibration import expected_calibration_error


def test_mnist1d_split_shapes_and_no_global_rng_side_effect():
    random.seed(123)
    np.random.seed(123)
    before = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    s = load_split("mnist1d", 500, 42)
    after = (random.random(), np.random.rand())
    assert before == after
    assert s.x_train.shape == (400, 1, 40) and s.x_test.shape == (100, 1, 40)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert set(np.unique(s.y_train)) <= set(range(10))


def test_digits_split():
    s = load_split("digits", 10_000, 0)
    assert s.x_train.shape[1:] == (1, 64)
    assert len(s.y_train) + len(s.y_test) == 1797
    assert abs(float(s.x_train.mean())) < 1e-4


def test_long_tail_profile():
    y = np.repeat(np.arange(10), 100)
    idx = long_tail_indices(y, 10, 10.0, np.random.default_rng(0))
    counts = np.bincount(y[idx], minlength=10)
    assert counts[0] == 100 and counts[-1] == 10
    assert all(counts[i] >= counts[i + 1] for i in range(9))


def test_prepare_only_touches_training_labels():
    s = load_split("digits", 10_000, 0)
    d = prepare(s, noise="symmetric", noise_rate=0.4, imbalance=1.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(d.y_test, s.y_test)
    np.testing.assert_array_equal(d.y_train_clean, s.y_train)
    assert (d.y_train != d.y_train_clean).mean() == pytest.approx(0.4, abs=0.01)


def test_macro_f1_hand_value():
    pred = torch.tensor([0, 0, 1, 1, 2])
    y = torch.tensor([0, 1, 1, 1, 0])
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp0 fn1 -> 0.8; class 2: tp0 fp1 -> 0
    assert macro_f1(pred, y, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_evaluate_matches_diagnostics_and_handles_divergence():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 4, generator=g) * 3
    y = torch.randint(0, 4, (200,), generator=g)
    ev = evaluate(logits, y)
    assert ev.accuracy == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert ev.ece == pytest.approx(
        float(expected_calibration_error(logits, y, n_bins=15, from_logits=True))
    )
    assert sum(ev.reliability["count"]) == 200
    assert ev.nll == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-6)
    bad = logits.clone()
    bad[0, 0] = float("nan")
    assert np.isnan(evaluate(bad, y).ece)


def test_coverage_hand_value():
    from losslab.arena.metrics import coverage

    # p_y = 0.5 and 0.1: 1 - 0.5^16 and 1 - 0.9^16.
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.1, 0.9]], dtype=torch.float64))
    y = torch.tensor([0, 0])
    expected = ((1 - 0.5**16) + (1 - 0.9**16)) / 2
    assert coverage(logits, y) == pytest.approx(expected, rel=1e-9)
    assert coverage(logits, y, n=1) == pytest.approx(0.3, rel=1e-9)  # pass@1 = mean p_y
