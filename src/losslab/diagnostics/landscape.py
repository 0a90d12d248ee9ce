r"""1-D and 2-D loss landscapes :math:`L(\theta + a d_1 + b d_2)` along filter-normalised random
directions (Li, Xu, Taylor, Studer, Goldstein, NeurIPS 2018, arXiv 1712.09913) or Hessian
eigenvectors (from :func:`losslab.diagnostics.hessian.top_eigenvalues`), with plots.

Filter normalisation rescales each filter (row along the first dimension) of a random
Gaussian direction to the norm of the matching filter of θ, so that plots of networks with
different weight scales are comparable; 0-/1-dimensional parameters (biases, norm layers) get
a zero direction, as in Li et al.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


def _trainable(model: nn.Module) -> list[Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def filter_normalized_direction(model: nn.Module, *, seed: int = 0) -> list[Tensor]:
    """A random direction shaped like the trainable parameters, filter-normalised.

    For a weight θ of shape (F, ...), row f of the direction is d_f · ‖θ_f‖ / ‖d_f‖.
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in _trainable(model):
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device)
        dn = d.reshape(d.shape[0], -1).norm(dim=1).clamp_min(1e-12)
        pn = p.detach().reshape(p.shape[0], -1).norm(dim=1)
        out.append(d * (pn / dn).view(-1, *([1] * (p.dim() - 1))))
    return out


def hessian_directions(
    model: nn.Module,
    criterion: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    targets: Tensor,
    *,
    k: int = 2,
    max_iter: int = 100,
    tol: float = 1e-3,
) -> tuple[Tensor, list[list[Tensor]]]:
    """Top-k Hessian eigenvalues and their eigenvectors shaped like the trainable parameters,
    ready for :func:`loss_landscape` (unit-norm; no filter normalisation)."""
    from .hessian import HessianOperator, top_eigenvalues

    op = HessianOperator.for_model(model, criterion, inputs, targets)
    values, vectors = top_eigenvalues(op, k, max_iter=max_iter, tol=tol)
    return values, [[t.clone() for t in op.unflatten(v)] for v in vectors]


def loss_landscape(
    model: nn.Module,
    loss_fn: Callable[[], Tensor],
    directions: Sequence[Sequence[Tensor]],
    *,
    steps: int = 40,
    distance: float = 1.0,
) -> tuple[list[Tensor], Tensor]:
    """Evaluate ``loss_fn()`` on a grid θ + a·d₁ (+ b·d₂), a, b ∈ [−distance, distance].

    Args:
        model: the network; its trainable parameters are moved and restored afterwards.
        loss_fn: evaluates the loss on a fixed batch (e.g. ``lambda: F.cross_entropy(model(x), y)``).
        directions: one or two directions, each a sequence of tensors shaped like the
            trainable parameters.
        steps: grid points per axis (LLA default 40).

    Returns:
        ``(coords, losses)``: a list of 1 or 2 coordinate vectors and losses of shape
        (steps,) or (steps, steps) (rows: d₁, columns: d₂).
    """
    fn = "loss_landscape"
    params = _trainable(model)
    if len(directions) not in (1, 2):
        raise ValueError(f"{fn}: directions must hold 1 or 2 directions, got {len(directions)}")
    for d in directions:
        if len(d) != len(params) or any(t.shape != p.shape for t, p in zip(d, params,
                                                                            strict=False)):
            raise ValueError(f"{fn}: every direction needs one tensor per trainable parameter "
                             f"with the parameter's shape")
    if steps < 2:
        raise ValueError(f"{fn}: steps must be at least 2, got {steps}")
    coords = [torch.linspace(-distance, distance, steps, dtype=torch.float64)
              for _ in directions]
    base = [p.detach().clone() for p in params]
    losses = torch.empty(*(steps for _ in directions), dtype=torch.float64)
    try:
        with torch.no_grad():
            for index in torch.cartesian_prod(*[torch.arange(steps)] * len(directions)).reshape(
                    -1, len(directions)):
                for p, b, *ds in zip(params, base, *directions, strict=True):
                    shift = sum(float(coords[i][index[i]]) * ds[i] for i in range(len(ds)))
                    p.copy_(b + shift)
                losses[tuple(index.tolist())] = float(loss_fn())
    finally:
        with torch.no_grad():
            for p, b in zip(params, base, strict=True):
                p.copy_(b)
    return coords, losses


def plot_landscape(
    coords: list[Tensor], losses: Tensor, *, title: str = "", path: str | Path | None = None
) -> Any:
    """Line plot (1-D) or contour plot (2-D) of :func:`loss_landscape`'s output; returns the
    matplotlib Figure and saves a PNG when ``path`` is given."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    if len(coords) == 1:
        ax.plot(coords[0].numpy(), losses.numpy())
        ax.set_xlabel("a")
        ax.set_ylabel("loss")
    else:
        cs = ax.contourf(coords[1].numpy(), coords[0].numpy(), losses.numpy(), levels=30)
        fig.colorbar(cs, ax=ax, label="loss")
        ax.set_xlabel("b (d2)")
        ax.set_ylabel("a (d1)")
    ax.set_title(title or "loss landscape")
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), dpi=110)
    return fig


__all__ = [
    "filter_normalized_direction",
    "hessian_directions",
    "loss_landscape",
    "plot_landscape",
]
