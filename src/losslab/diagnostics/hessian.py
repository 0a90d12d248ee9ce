r"""Hessian diagnostics from Hessian-vector products: top eigenvalues (power iteration and
Lanczos), Hutchinson trace, stochastic Lanczos quadrature (SLQ) spectral density and the LLA
criteria of Gabdullin (2024, arXiv 2412.10146).

Every tool works on a :class:`HessianOperator`, which applies H = ∇²_θ L to flat vectors
with one double-backward pass, :math:`Hv = \nabla_\theta(\nabla_\theta L\cdot v)`. The
gradient graph is built once and reused, so each product costs one backward. Keep batch-norm
in eval mode (or the batch fixed) so H belongs to one fixed function.

References: Yao, Gholami, Keutzer, Mahoney, "PyHessian", arXiv 1912.07145 (power iteration,
Hutchinson, SLQ); Ghorbani, Krishnan, Xiao, ICML 2019 (SLQ density); Gabdullin 2024
(re, Kh_n criteria).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


class HessianOperator:
    """The Hessian of a scalar ``loss`` with respect to ``params``, applied to flat vectors.

    Example::

        op = HessianOperator.for_model(model, F.cross_entropy, x, y)
        hv = op(torch.randn(op.size, dtype=op.dtype))
    """

    def __init__(self, loss: Tensor, params: Sequence[Tensor]) -> None:
        fn = "HessianOperator"
        if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise ValueError(f"{fn}: loss must be a scalar tensor that requires grad")
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError(f"{fn}: params holds no tensor that requires grad")
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True)
        self.size = sum(p.numel() for p in self.params)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.calls = 0

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        criterion: Callable[[Tensor, Tensor], Tensor],
        inputs: Tensor,
        targets: Tensor,
    ) -> HessianOperator:
        """Hessian of ``criterion(model(inputs), targets)`` in the model's trainable params."""
        params = [p for p in model.parameters() if p.requires_grad]
        return cls(criterion(model(inputs), targets), params)

    def gradient(self) -> Tensor:
        """The flat gradient ∇L."""
        return torch.cat([g.detach().reshape(-1) for g in self.grads])

    def unflatten(self, v: Tensor) -> list[Tensor]:
        """Split a flat vector into tensors shaped like the parameters."""
        return [t.view_as(p) for t, p in
                zip(torch.split(v, [p.numel() for p in self.params]), self.params,
                    strict=True)]

    def __call__(self, v: Tensor) -> Tensor:
        self.calls += 1
        hv = torch.autograd.grad(self.grads, self.params, grad_outputs=self.unflatten(v),
                                 retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach()


def _generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(0 if seed is None else seed)
    return g


def _rademacher(op: HessianOperator, g: torch.Generator) -> Tensor:
    r = torch.randint(0, 2, (op.size,), generator=g).to(op.dtype) * 2 - 1
    return r.to(op.device)


def top_eigenvalues(
    op: HessianOperator, k: int = 2, *, max_iter: int = 100, tol: float = 1e-3, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Top-k eigenvalues by power iteration with deflation (PyHessian / LLA defaults).

    Each vector is re-orthogonalised against the eigenvectors already found; iteration stops
    when ``|λ_new − λ_old| / (|λ_old| + 1e-6) < tol``. Power iteration finds the eigenvalues of
    largest **magnitude**, which can be negative. Returns ``(values (k,), vectors (k, P))``.

    Example: L = ½ wᵀ diag(3, 1, −0.5) w gives [3, 1].
    """
    if k < 1 or k > op.size:
        raise ValueError(f"top_eigenvalues: k must lie in [1, {op.size}], got {k}")
    g = _generator(seed)
    values: list[float] = []
    vectors: list[Tensor] = []
    for _ in range(k):
        v = torch.randn(op.size, generator=g, dtype=op.dtype).to(op.device)
        v = v / v.norm()
        eig = 0.0
        for it in range(max_iter):
            for u in vectors:
                v = v - torch.dot(v, u) * u
            v = v / v.norm()
            hv = op(v)
            new = float(torch.dot(v, hv))
            v = hv / hv.norm().clamp_min(torch.finfo(op.dtype).tiny)
            if it > 0 and abs(new - eig) / (abs(eig) + 1e-6) < tol:
                eig = new
                break
            eig = new
        for u in vectors:
            v = v - torch.dot(v, u) * u
        vectors.append(v / v.norm())
        values.append(eig)
    return torch.tensor(values, dtype=torch.float64), torch.stack(vectors)


def lanczos(
    op: HessianOperator, m: int, *, start: Tensor | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """m Lanczos steps from ``start`` (default a normalised Rademacher vector) with full
    re-orthogonalisation. Returns the tridiagonal matrix T (m', m') in float64 and the basis
    Q (m', P); m' < m when an invariant subspace is found early."""
    if m < 1:
        raise ValueError(f"lanczos: m must be a positive int, got {m}")
    m = min(m, op.size)
    q = _rademacher(op, _generator(seed)) if start is None else start.to(op.dtype).clone()
    q = q / q.norm()
    basis = [q]
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(m):
        w = op(basis[j])
        alpha = float(torch.dot(w, basis[j]))
        alphas.append(alpha)
        # full re-orthogonalisation (twice is enough): Lanczos loses orthogonality otherwise
        for _ in range(2):
            coeffs = torch.stack(basis) @ w
            w = w - coeffs @ torch.stack(basis)
        beta = float(w.norm())
        if j == m - 1 or beta < 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        basis.append(w / beta)
    n = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if n > 1:
        off = torch.tensor(betas[: n - 1], dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t, torch.stack(basis[:n])


def lanczos_eigenvalues(op: HessianOperator, *, m: int = 30, seed: int = 0) -> Tensor:
    """Ritz values of an m-step Lanczos run, ascending: the extremes (most positive and most
    negative eigenvalues) converge first.

    Example: L = ½ wᵀ diag(3, 1, −0.5) w with m = 3 (= P) gives every eigenvalue,
    tensor([-0.5000, 1.0000, 3.0000]).
    """
    t, _ = lanczos(op, m, seed=seed)
    values: Tensor = torch.linalg.eigvalsh(t)
    return values


def hutchinson_trace(
    op: HessianOperator, *, max_iter: int = 100, tol: float = 1e-3, seed: int = 0
) -> float:
    """Hutchinson estimate Tr H ≈ mean_r zᵀHz over Rademacher z; stops when the running mean
    changes by less than ``tol`` relative (LLA defaults). Example: diag(3, 1, −0.5) → 3.5
    (exact for a diagonal H, where zᵀHz = Σ_i H_ii z_i² = Tr H for every Rademacher z)."""
    g = _generator(seed)
    total, mean = 0.0, 0.0
    for r in range(1, max_iter + 1):
        z = _rademacher(op, g)
        total += float(torch.dot(z, op(z)))
        new = total / r
        if r > 1 and abs(new - mean) / (abs(mean) + 1e-6) < tol:
            return new
        mean = new
    return mean


def spectral_density(
    op: HessianOperator, *, n_iter: int = 100, n_v: int = 1, seed: int = 0
) -> tuple[Tensor, Tensor]:
    r"""Stochastic Lanczos quadrature: for each of ``n_v`` Rademacher starts, run ``n_iter``
    Lanczos steps, diagonalise T = UΛUᵀ; nodes λ_k = Λ_kk and weights ω_k = U_{1k}².

    Returns ``(nodes, weights)`` of shape (n_v, m). The density is
    :math:`\sum_k \omega_k \mathcal N(\lambda_k, s^2)` (see :func:`density_on_grid`).

    Example: L = ½ wᵀ diag(3, 1, −0.5) w, ``n_iter=3``: nodes [−0.5, 1, 3] (the eigenvalues)
    with weights [1/3, 1/3, 1/3] (a normalised Rademacher start has equal weight on every
    eigenvector of a diagonal matrix).
    """
    nodes, weights = [], []
    m = min(n_iter, op.size)
    for r in range(n_v):
        t, _ = lanczos(op, m, seed=seed + r)
        lam, u = torch.linalg.eigh(t)
        pad = m - lam.numel()  # early invariant subspace: pad with zero-weight nodes
        nodes.append(torch.cat([lam, lam.new_zeros(pad)]))
        weights.append(torch.cat([u[0] ** 2, lam.new_zeros(pad)]))
    return torch.stack(nodes), torch.stack(weights)


def density_on_grid(
    nodes: Tensor, weights: Tensor, grid: Tensor, *, sigma2: float = 1e-5
) -> Tensor:
    """Gaussian-smoothed SLQ density on ``grid``, averaged over the runs."""
    diff = grid.reshape(1, 1, -1).double() - nodes.unsqueeze(-1)
    kernel = torch.exp(-diff.square() / (2 * sigma2)) / math.sqrt(2 * math.pi * sigma2)
    return (weights.unsqueeze(-1) * kernel).sum(1).mean(0)


def lla_criteria(nodes: Tensor, weights: Tensor, *, n: float = 0.5) -> tuple[float, float]:
    r"""Gabdullin's criteria from SLQ nodes and weights, averaged over runs:
    :math:`re = |\min_k\lambda_k / \max_k\lambda_k|` and
    :math:`Kh_n = \sum_{\lambda_k<0}|\lambda_k\omega_k|^n / \sum_{\lambda_k>0}(\lambda_k\omega_k)^n`.

    Example: nodes [−0.5, 1, 3], weights 1/3 each → re = 0.1666667, Kh_0.5 = 0.2588190.
    Meaningful for mainly-positive spectra only (see the follow-up, arXiv 2504.17618).
    """
    if n <= 0:
        raise ValueError(f"lla_criteria: n must be positive (0 < n < 1 recommended), got {n}")
    res, khs = [], []
    for lam, w in zip(nodes, weights, strict=True):
        keep = w > 0
        lam, w = lam[keep], w[keep]
        res.append(float((lam.min() / lam.max()).abs()))
        prod = lam * w
        pos = prod[lam > 0].pow(n).sum()
        neg = prod[lam < 0].abs().pow(n).sum()
        khs.append(float(neg / pos))
    return sum(res) / len(res), sum(khs) / len(khs)


def plot_spectral_density(
    nodes: Tensor, weights: Tensor, *, sigma2: float = 1e-5, points: int = 2000,
    path: str | Path | None = None,
) -> Any:
    """Plot the smoothed SLQ density (log scale, as in PyHessian) with re and Kh₀.₅ in the
    title; returns the matplotlib Figure and saves a PNG when ``path`` is given."""
    from matplotlib.figure import Figure

    lo, hi = float(nodes.min()), float(nodes.max())
    pad = 0.05 * max(hi - lo, 1e-3) + 3 * math.sqrt(sigma2)
    grid = torch.linspace(lo - pad, hi + pad, points, dtype=torch.float64)
    dens = density_on_grid(nodes, weights, grid, sigma2=sigma2).clamp_min(1e-12)
    re, kh = lla_criteria(nodes, weights)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.semilogy(grid.numpy(), dens.numpy())
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title(f"Hessian spectral density (re = {re:.3g}, Kh_0.5 = {kh:.3g})", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), dpi=110)
    return fig


__all__ = [
    "HessianOperator",
    "density_on_grid",
    "hutchinson_trace",
    "lanczos",
    "lanczos_eigenvalues",
    "lla_criteria",
    "plot_spectral_density",
    "spectral_density",
    "top_eigenvalues",
]
