r"""Neural-collapse metrics NC1–NC4 (Papyan, Han, Donoho, PNAS 2020, arXiv 2008.08186) and the
orthogonal-frame variant of bias-free deep linear networks (Dang et al., ICML 2023,
arXiv 2301.00437).

Notation: features h (N, d), labels in {0..K−1}, class means μ_c, global mean μ_G,
centred means M = [μ_c − μ_G] (here stored as K×d rows), classifier W (K, d), bias b (K,).

* NC1 = (1/K) Tr(Σ_W Σ_B†), Σ_W = (1/N) Σ (h − μ_y)(h − μ_y)ᵀ, Σ_B = (1/K) Σ_c (μ_c−μ_G)(·)ᵀ.
* NC2: equinorm std/mean of ‖μ_c − μ_G‖ (and ‖w_c‖); equiangularity std of the pairwise
  cosines; max-angle mean |cos + 1/(K−1)|; frame distance
  ‖AAᵀ/‖AAᵀ‖_F − F‖_F with F = (I − 11ᵀ/K)/√(K−1) (simplex ETF) or F = I/√K (orthogonal frame).
* NC3 (self-duality) ‖W/‖W‖_F − M/‖M‖_F‖_F, and Dang et al.'s ‖WMᵀ/‖WMᵀ‖_F − F‖_F.
* NC4: fraction of samples whose classifier prediction argmax(Wh + b) differs from the
  nearest-class-centre prediction argmin_c ‖h − μ_c‖.

With ``frame="orthogonal"`` the means are not centred (μ_G is replaced by 0), as in the
bias-free deep-linear analysis. All sums are in float64; compute on training features in eval
mode. Σ_B has rank ≤ K−1, hence the pseudo-inverse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.validation import check_choice, check_tensor

_FRAMES = ("etf", "orthogonal")


@dataclass(frozen=True)
class NeuralCollapse:
    """All neural-collapse metrics of one feature set (classifier entries are ``None`` when no
    classifier was given)."""

    nc1: float
    equinorm_means: float
    equiangular_means: float
    max_angle_means: float
    frame_distance_means: float
    equinorm_weights: float | None
    equiangular_weights: float | None
    max_angle_weights: float | None
    frame_distance_weights: float | None
    nc3_self_duality: float | None
    nc3_frame_distance: float | None
    nc4_ncc_mismatch: float | None


def _target_frame(k: int, frame: str, like: Tensor) -> Tensor:
    eye = torch.eye(k, dtype=like.dtype, device=like.device)
    if frame == "etf":
        return (eye - 1.0 / k) / math.sqrt(k - 1)
    return eye / math.sqrt(k)


def frame_distance(rows: Tensor, *, frame: str = "etf") -> Tensor:
    r"""Distance of the Gram matrix of ``rows`` (K, d) to a simplex ETF or orthogonal frame:
    :math:`\lVert AA^\top/\lVert AA^\top\rVert_F - F\rVert_F`.

    Example: the three unit vectors at 90°, 210°, 330° are an exact simplex ETF (distance 0).
    """
    check_choice("frame_distance", "frame", frame, _FRAMES)
    a = rows.to(torch.float64)
    gram = a @ a.T
    dist: Tensor = torch.linalg.matrix_norm(gram / torch.linalg.matrix_norm(gram)
                                            - _target_frame(a.shape[0], frame, a))
    return dist


def _angles(rows: Tensor) -> tuple[float, float, float]:
    norms = rows.norm(dim=1)
    k = rows.shape[0]
    cos = (rows @ rows.T) / torch.outer(norms, norms)
    off = cos[~torch.eye(k, dtype=torch.bool, device=rows.device)]
    equinorm = float(norms.std(unbiased=False) / norms.mean())
    return equinorm, float(off.std(unbiased=False)), float((off + 1.0 / (k - 1)).abs().mean())


def class_means(features: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(K, d) class means and (K,) counts, in float64."""
    h = features.to(torch.float64)
    sums = torch.zeros(num_classes, h.shape[1], dtype=torch.float64, device=h.device)
    sums.index_add_(0, labels, h)
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    return sums / counts.unsqueeze(1), counts


def neural_collapse(
    features: Tensor,
    labels: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    *,
    frame: str = "etf",
) -> NeuralCollapse:
    """Compute NC1–NC4 from penultimate features, labels and (optionally) the last layer.

    Args:
        features: (N, d) penultimate features.
        labels: (N,) class indices; every class 0..K−1 must occur (K = max label + 1, or
            ``weight.shape[0]`` when a classifier is given).
        weight: (K, d) classifier (for a deep linear head, the end-to-end product).
        bias: (K,) classifier bias (NC4 only).
        frame: ``"etf"`` (centred means, simplex ETF) or ``"orthogonal"`` (uncentred means,
            orthogonal frame).

    Example: H = [[1,.1],[.9,−.1],[−1,.2],[−1.2,0]], labels [0,0,1,1],
        W = [[1,.05],[−1,0]] → NC1 = 0.0026250, weight ETF distance 0.0010819,
        NC3 = 0.0778283, NC4 = 0.
    """
    fn = "neural_collapse"
    h = check_tensor(fn, "features", features)
    y = check_tensor(fn, "labels", labels)
    check_choice(fn, "frame", frame, _FRAMES)
    if h.dim() != 2 or not h.is_floating_point():
        raise ValueError(f"{fn}: features must be a float (N, d) tensor, got {h.dtype} "
                         f"{tuple(h.shape)}")
    if y.shape != (h.shape[0],) or y.is_floating_point():
        raise ValueError(f"{fn}: labels must be integer class indices of shape ({h.shape[0]},), "
                         f"got {y.dtype} {tuple(y.shape)}")
    if h.shape[0] == 0:
        raise ValueError(f"{fn}: features is empty (N=0); neural collapse needs samples")
    if not bool(torch.isfinite(h).all()):
        raise ValueError(f"{fn}: features must be finite, got NaN or inf entries")
    if weight is not None and (not isinstance(weight, Tensor)
                               or not bool(torch.isfinite(weight).all())):
        raise ValueError(f"{fn}: weight must be a finite tensor, got NaN/inf or a non-tensor")
    y = y.long()
    k = int(weight.shape[0]) if weight is not None else int(y.max()) + 1
    if weight is not None and (weight.dim() != 2 or weight.shape[1] != h.shape[1]):
        raise ValueError(f"{fn}: weight must have shape (K, {h.shape[1]}), got "
                         f"{tuple(weight.shape)}")
    if k < 2 or int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"{fn}: labels must lie in [0, K-1] with K >= 2 classes, got range "
                         f"[{int(y.min())}, {int(y.max())}] and K={k}")
    mu, counts = class_means(h, y, k)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"{fn}: classes {missing} have no samples; every class needs features")
    h64 = h.to(torch.float64)
    centre = h64.mean(0) if frame == "etf" else torch.zeros_like(mu[0])
    m = mu - centre  # (K, d)
    within = h64 - mu[y]
    sigma_w = within.T @ within / h.shape[0]
    centred = mu - h64.mean(0)  # NC1 always uses between-class scatter around the global mean
    sigma_b = centred.T @ centred / k
    nc1 = float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)) / k)
    eq_m, ang_m, max_m = _angles(m)
    dist_m = float(frame_distance(m, frame=frame))
    if weight is None:
        return NeuralCollapse(nc1, eq_m, ang_m, max_m, dist_m, *([None] * 7))
    w = weight.detach().to(torch.float64)
    eq_w, ang_w, max_w = _angles(w)
    dist_w = float(frame_distance(w, frame=frame))
    nc3 = float(torch.linalg.matrix_norm(w / torch.linalg.matrix_norm(w)
                                         - m / torch.linalg.matrix_norm(m)))
    wm = w @ m.T
    nc3_frame = float(torch.linalg.matrix_norm(wm / torch.linalg.matrix_norm(wm)
                                               - _target_frame(k, frame, wm)))
    scores = h64 @ w.T + (0.0 if bias is None else bias.detach().to(torch.float64))
    ncc = torch.cdist(h64, mu).argmin(1)
    nc4 = float((scores.argmax(1) != ncc).to(torch.float64).mean())
    return NeuralCollapse(nc1, eq_m, ang_m, max_m, dist_m, eq_w, ang_w, max_w, dist_w, nc3,
                          nc3_frame, nc4)


__all__ = [
    "NeuralCollapse",
    "class_means",
    "frame_distance",
    "neural_collapse",
]
