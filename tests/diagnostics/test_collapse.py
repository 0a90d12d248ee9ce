"""Neural-collapse metrics (spec B§16): worked examples, exact collapse on constructed
simplex-ETF and orthogonal-frame features, and a numpy reference for random features."""

import math

import numpy as np
import pytest
import torch

from losslab.diagnostics import frame_distance, neural_collapse

H2 = torch.tensor([[1.0, 0.1], [0.9, -0.1], [-1.0, 0.2], [-1.2, 0.0]], dtype=torch.float64)
Y2 = torch.tensor([0, 0, 1, 1])


def test_spec_example_k2():
    w = torch.tensor([[1.0, 0.05], [-1.0, 0.0]], dtype=torch.float64)
    r = neural_collapse(H2, Y2, w)
    assert r.nc1 == pytest.approx(0.0026250, abs=1e-7)
    assert r.frame_distance_means == pytest.approx(0.0, abs=1e-12)
    assert r.frame_distance_weights == pytest.approx(0.0010819, abs=1e-7)
    assert r.nc3_self_duality == pytest.approx(0.0778283, abs=1e-7)
    assert r.nc4_ncc_mismatch == 0.0


def test_spec_example_k3():
    angles = [math.radians(a) for a in (90, 210, 330)]
    rows, labels = [], []
    for c, a in enumerate(angles):
        for dx in (-0.1, 0.1):
            rows.append([math.cos(a) + dx, math.sin(a)])
            labels.append(c)
    h = torch.tensor(rows, dtype=torch.float64)
    w = torch.tensor([[0.0, 1.1], [-0.9, -0.5], [0.95, -0.5]], dtype=torch.float64)
    r = neural_collapse(h, torch.tensor(labels), w)
    assert r.nc1 == pytest.approx(0.0066667, abs=1e-7)
    for v in (r.equinorm_means, r.equiangular_means, r.max_angle_means, r.frame_distance_means):
        assert v == pytest.approx(0.0, abs=1e-12)
    assert r.frame_distance_weights == pytest.approx(0.0514639, abs=1e-7)
    assert r.nc3_self_duality == pytest.approx(0.0366070, abs=1e-7)
    assert r.nc4_ncc_mismatch == 0.0


def _rotation(d, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


@pytest.mark.parametrize("k,d", [(3, 5), (7, 12), (10, 10)])
def test_exact_collapse_on_simplex_etf(k, d):
    etf = math.sqrt(k / (k - 1)) * (torch.eye(k, dtype=torch.float64) - 1.0 / k)  # K x K
    means = 2.5 * torch.cat([etf, torch.zeros(k, d - k, dtype=torch.float64)], 1) @ _rotation(d, k)
    offset = torch.randn(d, dtype=torch.float64)  # a global mean shift changes nothing
    labels = torch.arange(k).repeat_interleave(4)
    h = means[labels] + offset
    r = neural_collapse(h, labels, 0.3 * means, -0.3 * means @ offset)
    for v in (r.nc1, r.equinorm_means, r.equiangular_means, r.max_angle_means,
              r.frame_distance_means, r.equinorm_weights, r.equiangular_weights,
              r.max_angle_weights, r.frame_distance_weights, r.nc3_self_duality,
              r.nc3_frame_distance, r.nc4_ncc_mismatch):
        assert v == pytest.approx(0.0, abs=1e-10)
    # the same geometry is far from an orthogonal frame
    assert neural_collapse(h - offset, labels, means, frame="orthogonal").frame_distance_means > 0.1


def test_orthogonal_frame_variant_is_exact_on_orthogonal_means():
    k, d = 4, 6
    means = 3.0 * torch.eye(k, d, dtype=torch.float64) @ _rotation(d, 1)
    labels = torch.arange(k).repeat(3)
    r = neural_collapse(means[labels], labels, means, frame="orthogonal")
    assert r.frame_distance_means == pytest.approx(0.0, abs=1e-12)
    assert r.frame_distance_weights == pytest.approx(0.0, abs=1e-12)
    assert r.nc3_self_duality == pytest.approx(0.0, abs=1e-12)
    assert r.nc3_frame_distance == pytest.approx(0.0, abs=1e-12)
    assert frame_distance(means, frame="etf").item() > 0.1


def test_random_features_match_numpy_reference():
    g = np.random.default_rng(0)
    k, d, n = 4, 6, 60
    y = np.arange(n) % k
    h = g.normal(size=(n, d)) + 2 * g.normal(size=(k, d))[y]
    w = g.normal(size=(k, d))
    b = g.normal(size=k)
    mu_g = h.mean(0)
    mus = np.stack([h[y == c].mean(0) for c in range(k)])
    sw = sum(np.outer(x - mus[c], x - mus[c]) for x, c in zip(h, y, strict=True)) / n
    sb = sum(np.outer(m - mu_g, m - mu_g) for m in mus) / k
    nc1 = np.trace(sw @ np.linalg.pinv(sb)) / k
    pred = (h @ w.T + b).argmax(1)
    ncc = np.argmin(((h[:, None] - mus[None]) ** 2).sum(-1), 1)
    r = neural_collapse(torch.tensor(h), torch.tensor(y), torch.tensor(w), torch.tensor(b))
    assert r.nc1 == pytest.approx(nc1, rel=1e-10)
    assert r.nc4_ncc_mismatch == pytest.approx((pred != ncc).mean())
    assert r.nc4_ncc_mismatch > 0  # the random classifier disagrees with NCC somewhere


def test_errors():
    with pytest.raises(ValueError, match=r"^neural_collapse: classes \[2\] have no samples"):
        neural_collapse(H2, Y2, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^neural_collapse: weight must have shape"):
        neural_collapse(H2, Y2, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^neural_collapse: frame must be one of"):
        neural_collapse(H2, Y2, frame="simplex")


def test_non_finite_and_empty_inputs_are_rejected():
    nan_h = H2.clone()
    nan_h[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^neural_collapse: features must be finite"):
        neural_collapse(nan_h, Y2)
    with pytest.raises(ValueError, match=r"^neural_collapse: features is empty"):
        neural_collapse(H2[:0], Y2[:0])
    with pytest.raises(ValueError, match=r"^neural_collapse: weight must be a finite tensor"):
        neural_collapse(H2, Y2, torch.full((2, 2), float("nan"), dtype=torch.float64))
