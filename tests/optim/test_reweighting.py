"""Decorrelation sample weights remove a subgroup's spurious correlation."""

import pytest
import torch

from losslab.optim.reweighting import decorrelation_weights, weighted_cross_correlation


def test_weights_decorrelate_a_spurious_subgroup():
    g = torch.Generator().manual_seed(0)
    n = 400
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    spurious = torch.arange(n) < 120  # in this subgroup variable 1 copies variable 0
    z[spurious, 1] = z[spurious, 0] + 0.1 * torch.randn(120, generator=g, dtype=torch.float64)
    clusters = [[0], [1, 2]]
    ones = torch.ones(n, dtype=torch.float64)
    before = weighted_cross_correlation(z, ones, clusters).item()
    w = decorrelation_weights(z, clusters, steps=200)
    after = weighted_cross_correlation(z, w, clusters).item()
    assert after < 0.1 * before
    assert (w > 0).all() and w.mean().item() == pytest.approx(1.0)
    assert w[spurious].mean() < w[~spurious].mean()  # the correlated subgroup is down-weighted


def test_errors():
    with pytest.raises(ValueError, match=r"^decorrelation_weights: clusters must be"):
        decorrelation_weights(torch.randn(5, 2), [[0, 1]])


def test_non_finite_features_are_rejected():
    x = torch.randn(6, 3, dtype=torch.float64)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"^decorrelation_weights: features must be finite"):
        decorrelation_weights(x, steps=1)


def test_shared_conftest_runs_on_one_thread():
    assert torch.get_num_threads() == 1


def test_docstring_example():
    x = torch.tensor([[1., 1.], [2., 2.], [3., 3.5], [1., 3.], [3., 1.], [2., 1.5]])
    ones = torch.ones(6, dtype=torch.float64)
    before = weighted_cross_correlation(x.double(), ones, [[0], [1]])
    # with unit weights the objective is the squared Pearson correlation of the two columns
    r = torch.corrcoef(x.double().T)[0, 1]
    assert before.item() == pytest.approx(r.item() ** 2, rel=1e-12)
    assert before.item() == pytest.approx(0.0114, abs=5e-5)
    w = decorrelation_weights(x)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-6) and bool((w > 0).all())
    assert weighted_cross_correlation(x.double(), w.double(), [[0], [1]]).item() < 1e-6
