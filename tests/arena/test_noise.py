"""Label-noise generators: exact rates, flip targets, determinism (losslab.arena.noise)."""

import numpy as np
import pytest

from losslab.arena.noise import add_label_noise, max_noise_rate

K = 10


def labels(n_per_class=200):
    return np.repeat(np.arange(K), n_per_class)


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.4, 0.8])
def test_symmetric_flips_exactly_rate_of_each_class_to_other_classes(rate):
    y = labels()
    noisy = add_label_noise(y, "symmetric", rate, K, np.random.default_rng(0))
    for c in range(K):
        flipped = noisy[y == c] != c
        assert flipped.sum() == round(rate * 200)
    # Flipped labels never land on the true class (checked above) and cover all others.
    if rate >= 0.4:
        for c in range(K):
            targets = set(noisy[(y == c) & (noisy != c)].tolist())
            assert targets == set(range(K)) - {c}


def test_symmetric_other_classes_are_roughly_uniform():
    y = np.zeros(90_000, dtype=np.int64)
    noisy = add_label_noise(y, "symmetric", 0.9 * 0.999, K, np.random.default_rng(1))
    counts = np.bincount(noisy[noisy != 0], minlength=K)[1:]
    expected = counts.sum() / (K - 1)
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


def test_asymmetric_is_a_pair_flip_to_next_class():
    y = labels()
    noisy = add_label_noise(y, "asymmetric", 0.3, K, np.random.default_rng(0))
    moved = noisy != y
    assert moved.sum() == 0.3 * len(y)
    np.testing.assert_array_equal(noisy[moved], (y[moved] + 1) % K)


def test_instance_noise_rate_and_dependence_on_features():
    rng = np.random.default_rng(0)
    y = labels(300)
    x = rng.standard_normal((len(y), 1, 20))
    noisy = add_label_noise(y, "instance", 0.3, K, np.random.default_rng(2), features=x)
    assert abs((noisy != y).mean() - 0.3) < 0.03
    # Identical features give identical flip distributions: duplicate one sample many times.
    x_same = np.repeat(x[:1], len(y), axis=0)
    y_same = np.full(len(y), y[0])
    noisy_same = add_label_noise(y_same, "instance", 0.3, K, np.random.default_rng(3),
                                 features=x_same)
    # The flips of one instance follow a softmax over a random projection, far from the
    # uniform spread of symmetric noise: compare chi-square statistics against uniform.
    def chi2_vs_uniform(noisy, true):
        flips = noisy[noisy != true]
        counts = np.bincount(flips, minlength=K)[np.arange(K) != true]
        expected = len(flips) / (K - 1)
        return float(((counts - expected) ** 2 / expected).sum())

    symmetric = add_label_noise(y_same, "symmetric", 0.3, K, np.random.default_rng(3))
    assert chi2_vs_uniform(symmetric, y[0]) < 30  # 8 degrees of freedom: p ~ 2e-4
    assert chi2_vs_uniform(noisy_same, y[0]) > 100


@pytest.mark.parametrize("kind", ["symmetric", "asymmetric", "instance"])
def test_deterministic_given_generator(kind):
    y = labels(50)
    x = np.random.default_rng(5).standard_normal((len(y), 1, 8))
    a = add_label_noise(y, kind, 0.3, K, np.random.default_rng(7), features=x)
    b = add_label_noise(y, kind, 0.3, K, np.random.default_rng(7), features=x)
    c = add_label_noise(y, kind, 0.3, K, np.random.default_rng(8), features=x)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_none_and_bad_kind():
    y = labels(5)
    np.testing.assert_array_equal(add_label_noise(y, "none", 0.5, K, np.random.default_rng()), y)
    with pytest.raises(ValueError, match="add_label_noise: kind must be one of"):
        add_label_noise(y, "pairwise", 0.2, K, np.random.default_rng())


def test_max_noise_rate():
    assert max_noise_rate("symmetric", 10) == pytest.approx(0.9)
    assert max_noise_rate("asymmetric", 10) == 0.5
