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
