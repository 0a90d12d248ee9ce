"""Hessian tools (spec B§21) against torch.autograd.functional.hessian on a small model, the
spec's quadratic worked example, and the landscape grid."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from losslab.diagnostics.hessian import (
    HessianOperator,
    density_on_grid,
    hutchinson_trace,
    lanczos,
    lanczos_eigenvalues,
    lla_criteria,
    spectral_density,
    top_eigenvalues,
)
from losslab.diagnostics.landscape import (
    filter_normalized_direction,
    loss_landscape,
    plot_landscape,
)


def _quadratic():
    w = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)
    loss = 0.5 * (w * torch.tensor([3.0, 1.0, -0.5], dtype=torch.float64) * w).sum()
    return HessianOperator(loss, [w])


def _small_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (10,))
    return model, x, y


def _full_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(theta):
        parts = theta.split([math.prod(s) for s in shapes])
        params = {n: t.view(s) for n, t, s in zip(names, parts, shapes, strict=True)}
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(loss_of, flat)


def test_spec_quadratic_example():
    op = _quadratic()
    t, _ = lanczos(op, 3, start=torch.ones(3, dtype=torch.float64))
    nodes, u = torch.linalg.eigh(t)
    torch.testing.assert_close(nodes, torch.tensor([-0.5, 1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(u[0] ** 2, torch.full((3,), 1 / 3, dtype=torch.float64))
    re, kh = lla_criteria(nodes.unsqueeze(0), (u[0] ** 2).unsqueeze(0))
    assert re == pytest.approx(0.1666667, abs=1e-7)
    assert kh == pytest.approx(0.2588190, abs=1e-7)
    values, _ = top_eigenvalues(op, k=2, tol=1e-10, max_iter=500)
    torch.testing.assert_close(values, torch.tensor([3.0, 1.0], dtype=torch.float64))
    # Rademacher z has zᵢ² = 1, so every sample of zᵀ diag z equals the trace exactly
    assert hutchinson_trace(op) == pytest.approx(3.5, abs=1e-12)


def test_against_autograd_functional_hessian():
    model, x, y = _small_model()
    h = _full_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(h)
    op = HessianOperator.for_model(model, F.cross_entropy, x, y)
    assert op.size == h.shape[0] == 31
    v = torch.randn(op.size, dtype=torch.float64)
    torch.testing.assert_close(op(v), h @ v, rtol=1e-10, atol=1e-12)
    # power iteration: the largest-|λ| eigenvalues, to the requested relative tolerance
    by_magnitude = exact[exact.abs().argsort(descending=True)]
    values, vectors = top_eigenvalues(op, k=2, tol=1e-8, max_iter=2000)
    torch.testing.assert_close(values, by_magnitude[:2], rtol=1e-4, atol=1e-6)
    for lam, vec in zip(values, vectors, strict=True):  # eigenvectors converge more slowly
        assert (h @ vec - lam * vec).norm().item() < 1e-2 * abs(lam.item())
    # full Lanczos stops at the Krylov dimension (repeated eigenvalues, e.g. the null space of
    # softmax's shift invariance, count once); every Ritz value is then an exact eigenvalue
    full = lanczos_eigenvalues(op, m=31)
    assert 20 <= full.numel() <= 31
    assert (full.unsqueeze(1) - exact.unsqueeze(0)).abs().min(1).values.max().item() < 1e-8
    assert full.max().item() == pytest.approx(exact.max().item(), rel=1e-9)
    short = lanczos_eigenvalues(op, m=15)
    assert short.max().item() == pytest.approx(exact.max().item(), rel=1e-6)
    assert short.min().item() == pytest.approx(exact.min().item(), rel=1e-3, abs=1e-6)
    # Hutchinson is unbiased: the average over many probes approaches the trace
    est = hutchinson_trace(op, max_iter=400, tol=0.0)
    assert est == pytest.approx(torch.trace(h).item(), rel=0.15)


def test_slq_weights_and_density():
    model, x, y = _small_model()
    op = HessianOperator.for_model(model, F.cross_entropy, x, y)
    exact = torch.linalg.eigvalsh(_full_hessian(model, x, y))
    nodes, weights = spectral_density(op, n_iter=31, n_v=2)
    assert nodes.shape == weights.shape == (2, 31)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, dtype=torch.float64))
    # with m = P the nodes are the exact eigenvalues; sum ω λ = zᵀHz/‖z‖² for the start z
    kept = nodes[0][weights[0] > 1e-14]
    assert min(abs(kept.max().item() - exact.max().item()), 1.0) < 1e-8
    grid = torch.linspace(float(exact.min()) - 0.1, float(exact.max()) + 0.1, 4001,
                          dtype=torch.float64)
    dens = density_on_grid(nodes, weights, grid, sigma2=1e-4)
    area = torch.trapezoid(dens, grid)
    assert area.item() == pytest.approx(1.0, abs=1e-3)


def test_landscape_grid_and_restore(tmp_path):
    model, x, y = _small_model()
    before = [p.detach().clone() for p in model.parameters()]
    d1 = filter_normalized_direction(model, seed=1)
    d2 = filter_normalized_direction(model, seed=2)
    for d, p in zip(d1, model.parameters(), strict=True):
        if p.dim() > 1:
            torch.testing.assert_close(d.norm(dim=1), p.detach().norm(dim=1))
        else:
            assert torch.count_nonzero(d) == 0
    loss_fn = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    coords, grid = loss_landscape(model, loss_fn, [d1, d2], steps=5, distance=0.5)
    assert grid.shape == (5, 5)
    for p, b in zip(model.parameters(), before, strict=True):  # parameters restored exactly
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=0)
    assert grid[2, 2].item() == pytest.approx(loss_fn().item(), rel=1e-12)  # centre = θ
    moved = {n: p.detach() + 0.5 * a - 0.25 * b
             for (n, p), a, b in zip(model.named_parameters(), d1, d2, strict=True)}
    corner = F.cross_entropy(functional_call(model, moved, (x,)), y).item()
    assert grid[4, 1].item() == pytest.approx(corner, rel=1e-10)
    c1, line = loss_landscape(model, loss_fn, [d1], steps=7)
    assert line.shape == (7,)
    plot_landscape(coords, grid, path=tmp_path / "l2.png")
    plot_landscape(c1, line, path=tmp_path / "l1.png")
    assert (tmp_path / "l2.png").read_bytes()[:4] == b"\x89PNG"


def test_errors():
    with pytest.raises(ValueError, match=r"^HessianOperator: loss must be a scalar"):
        HessianOperator(torch.zeros(2, requires_grad=True), [])
    with pytest.raises(ValueError, match=r"^top_eigenvalues: k must lie in \[1, 3\]"):
        top_eigenvalues(_quadratic(), k=4)
    with pytest.raises(ValueError, match=r"^lla_criteria: n must be positive"):
        lla_criteria(torch.ones(1, 2), torch.ones(1, 2), n=-1)


def test_hessian_directions_curve_the_landscape():
    from losslab.diagnostics.landscape import hessian_directions

    model, x, y = _small_model()
    values, dirs = hessian_directions(model, F.cross_entropy, x, y, k=1, tol=1e-8, max_iter=500)
    _, line = loss_landscape(model, lambda: F.cross_entropy(model(x), y), dirs, steps=3,
                             distance=1e-3)
    # second difference along the top eigenvector ≈ λ_max · t²
    curvature = (line[0] + line[2] - 2 * line[1]).item() / 1e-6
    assert curvature == pytest.approx(values[0].item(), rel=1e-3)


def test_plot_spectral_density(tmp_path):
    from losslab.diagnostics.hessian import plot_spectral_density

    nodes = torch.tensor([[-0.5, 1.0, 3.0]], dtype=torch.float64)
    weights = torch.full((1, 3), 1 / 3, dtype=torch.float64)
    fig = plot_spectral_density(nodes, weights, path=tmp_path / "esd.png")
    assert "re = 0.167" in fig.axes[0].get_title()
    assert (tmp_path / "esd.png").read_bytes()[:4] == b"\x89PNG"


def test_spectral_density_docstring_example():
    nodes, weights = spectral_density(_quadratic(), n_iter=3)
    torch.testing.assert_close(nodes, torch.tensor([[-0.5, 1.0, 3.0]], dtype=torch.float64))
    torch.testing.assert_close(weights, torch.full((1, 3), 1 / 3, dtype=torch.float64))
    torch.testing.assert_close(lanczos_eigenvalues(_quadratic(), m=3),
                               torch.tensor([-0.5, 1.0, 3.0], dtype=torch.float64))
