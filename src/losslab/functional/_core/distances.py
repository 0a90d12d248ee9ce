r"""Pairwise distances and similarities shared by every embedding loss and distance head.

Every function maps ``x`` of shape (..., N, D) and ``y`` of shape (..., M, D) (``y=None``
means ``y = x``) to a (..., N, M) matrix; leading batch dimensions broadcast.

Metrics (``metric=``):

==============  ==========================================================================
``euclidean``   :math:`\lVert x-y\rVert_2`
``sqeuclidean`` :math:`\lVert x-y\rVert_2^2`
``cosine``      :math:`1-\cos(x,y)` (a distance; the similarity is :math:`\cos(x,y)`)
``dot``         a similarity only, :math:`\langle x,y\rangle`
``manhattan``   :math:`\sum_j |x_j-y_j|`
``chebyshev``   :math:`\max_j |x_j-y_j|`
``minkowski``   :math:`(\sum_j |x_j-y_j|^p)^{1/p}`, ``p >= 1``
``braycurtis``  :math:`\sum_j |x_j-y_j| / \sum_j |x_j+y_j|` (SciPy's definition)
``canberra``    :math:`\sum_j |x_j-y_j| / (|x_j|+|y_j|)`, a 0/0 term counts 0 (SciPy's)
``mahalanobis`` :math:`\sqrt{(x-y)^\top P (x-y)}` for a given (D, D) matrix ``P``
==============  ==========================================================================

Zero distances are safe: values are exact zeros and gradients are finite (zero) there, where a
plain ``sqrt`` or ``pow`` would return ``inf``/``NaN`` gradients. When ``y`` is ``None`` the
diagonal of the Euclidean-type matrices is set to exactly zero, removing the cancellation error
of the ``|x|^2 + |y|^2 - 2 x.y`` expansion.

Under ``torch.autocast`` the matrices are computed with autocast switched off, in the inputs'
(float32-promoted) dtype: autocast would run the Gram matrix ``x @ y.T`` in bfloat16/float16,
and every loss built on it would then be computed, and returned, at that precision.

Example:
    >>> import torch
    >>> from losslab.functional import pairwise_distance
    >>> pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), metric="euclidean")
    tensor([[0., 5.],
            [5., 0.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import Tensor

from ..._core.validation import check_choice, check_number, check_tensor
from .autocast_off import outside_autocast

DISTANCES = (
    "euclidean",
    "sqeuclidean",
    "cosine",
    "manhattan",
    "chebyshev",
    "minkowski",
    "braycurtis",
    "canberra",
    "mahalanobis",
)
SIMILARITIES = ("cosine", "dot")
METRICS = (*DISTANCES, "dot")


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(max(x, 0))`` whose gradient is 0 (not ``inf``) where ``x <= 0``."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).sqrt(), 0.0)


def safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0 where ``den == 0`` and finite gradients everywhere."""
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), 0.0)


def compute_dtype(t: Tensor) -> Tensor:
    """``t`` in float32 when it is half or bfloat16 (their range overflows squared distances and
    ``cdist`` lacks half kernels on CPU); other dtypes unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def check_pair_inputs(fn: str, x: object, y: object) -> tuple[Tensor, Tensor, bool]:
    """Validate ``x`` (..., N, D) and optional ``y`` (..., M, D); return them (half precision
    promoted to float32) and whether y is x."""
    x = check_tensor(fn, "x", x)
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{fn}: x must have shape (..., N, D), got shape {tuple(x.shape)}")
    if y is None:
        x = compute_dtype(x)
        return x, x, True
    y = check_tensor(fn, "y", y)
    if not y.is_floating_point():
        raise TypeError(f"{fn}: y must be a floating-point tensor, got dtype {y.dtype}")
    if y.dim() < 2 or y.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"{fn}: y must have shape (..., M, D) with D={x.shape[-1]} like x, "
            f"got shape {tuple(y.shape)}"
        )
    same = y is x
    x = compute_dtype(x)
    y = x if same else compute_dtype(y)
    if y.dtype != x.dtype:
        # mixed float32/float64 inputs: compute in the wider one
        wide = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(wide), y.to(wide)
    return x, y, same


def _squared_from_gram(xx: Tensor, yy: Tensor, xy: Tensor, same: bool) -> Tensor:
    sq = (xx.unsqueeze(-1) + yy.unsqueeze(-2) - 2.0 * xy).clamp_min(0.0)
    if same:
        n = sq.shape[-1]
        sq = sq.masked_fill(torch.eye(n, dtype=torch.bool, device=sq.device), 0.0)
    return sq


def _squared_euclidean(x: Tensor, y: Tensor, same: bool) -> Tensor:
    xy = x @ y.transpose(-1, -2)
    return _squared_from_gram(x.square().sum(-1), y.square().sum(-1), xy, same)


def _squared_mahalanobis(x: Tensor, y: Tensor, matrix: Tensor, same: bool) -> Tensor:
    # Only the symmetric part of P enters a quadratic form; the expansion needs it explicitly.
    p = 0.5 * (matrix + matrix.transpose(-1, -2))
    xp, yp = x @ p, y @ p
    return _squared_from_gram((xp * x).sum(-1), (yp * y).sum(-1), xp @ y.transpose(-1, -2), same)


def _check_matrix(fn: str, matrix: object, dim: int) -> Tensor:
    if matrix is None:
        raise ValueError(f"{fn}: metric='mahalanobis' needs matrix=P of shape ({dim}, {dim})")
    m = check_tensor(fn, "matrix", matrix)
    if m.dim() < 2 or m.shape[-2:] != (dim, dim):
        raise ValueError(
            f"{fn}: matrix must have shape ({dim}, {dim}) for D={dim}, got {tuple(m.shape)}"
        )
    if not m.is_floating_point():
        m = m.to(torch.float32)
    check_psd_matrix(fn, m)
    return m


def check_psd_matrix(fn: str, matrix: Tensor) -> None:
    """Reject a matrix that is not symmetric positive semi-definite (relative tolerance 1e-6 of
    its largest entry): a negative eigenvalue makes the quadratic form negative, and the clamp
    at zero would silently return zero distances."""
    m = matrix.detach().to(torch.float64)
    scale = float(m.abs().amax()) if m.numel() else 0.0
    tol = 1e-6 * max(scale, 1e-30)
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{fn}: matrix must be finite, got a NaN or inf entry")
    asym = float((m - m.transpose(-1, -2)).abs().amax()) if m.numel() else 0.0
    if asym > tol:
        raise ValueError(
            f"{fn}: matrix must be symmetric positive semi-definite (e.g. L @ L.T), "
            f"got max |P - P^T| = {asym:.3g}"
        )
    low = float(torch.linalg.eigvalsh(m).amin()) if m.numel() else 0.0
    if low < -tol:
        raise ValueError(
            f"{fn}: matrix must be symmetric positive semi-definite (e.g. L @ L.T), "
            f"got smallest eigenvalue {low:.3g}"
        )


def _distance(x: Tensor, y: Tensor, same: bool, metric: str, p: float, matrix: Tensor | None) -> Tensor:
    if metric == "sqeuclidean":
        return _squared_euclidean(x, y, same)
    if metric == "euclidean":
        return safe_sqrt(_squared_euclidean(x, y, same))
    if metric == "mahalanobis":
        if matrix is None:  # checked by the public entry; keeps mypy narrowing honest
            raise ValueError("pairwise_distance: metric='mahalanobis' needs matrix")
        return safe_sqrt(_squared_mahalanobis(x, y, matrix.to(x.dtype), same))
    if metric == "cosine":
        dist = (1.0 - _cosine(x, y)).clamp_min(0.0)
        if same:
            dist = dist.masked_fill(torch.eye(dist.shape[-1], dtype=torch.bool, device=x.device), 0.0)
        return dist
    if metric in ("manhattan", "chebyshev", "minkowski"):
        order = {"manhattan": 1.0, "chebyshev": float("inf")}.get(metric, p)
        # cdist's own backward returns 0 at zero distance; its direct (non-mm) mode is exact.
        return torch.cdist(x, y, p=order, compute_mode="donot_use_mm_for_euclid_dist")
    diff = x.unsqueeze(-2) - y.unsqueeze(-3)
    if metric == "braycurtis":
        return safe_divide(diff.abs().sum(-1), (x.unsqueeze(-2) + y.unsqueeze(-3)).abs().sum(-1))
    # canberra
    den = x.abs().unsqueeze(-2) + y.abs().unsqueeze(-3)
    return safe_divide(diff.abs(), den).sum(-1)


def _cosine(x: Tensor, y: Tensor) -> Tensor:
    return TF.normalize(x, dim=-1) @ TF.normalize(y, dim=-1).transpose(-1, -2)


def _check_metric_args(fn: str, metric: object, p: object, choices: tuple[str, ...]) -> tuple[str, float]:
    name = check_choice(fn, "metric", metric, choices)
    order = check_number(fn, "p", p, low=1.0)
    return name, order


def pairwise_distance(
    x: Tensor,
    y: Tensor | None = None,
    *,
    metric: str = "euclidean",
    p: float = 2.0,
    matrix: Tensor | None = None,
) -> Tensor:
    """Pairwise distance matrix between the rows of ``x`` and ``y``.

    Args:
        x: (..., N, D) floating tensor.
        y: (..., M, D) or ``None`` (then ``y = x`` and the diagonal is exactly 0).
        metric: one of :data:`DISTANCES` (see the module docstring for formulas).
        p: Minkowski order, ``p >= 1`` (only for ``metric="minkowski"``).
        matrix: (D, D) symmetric positive semi-definite matrix ``P`` for
            ``metric="mahalanobis"``, e.g. ``L @ L.T``; anything else (asymmetric beyond 1e-6
            relative, or a negative eigenvalue) raises ``ValueError``.

    Returns:
        (..., N, M) distances in the dtype of ``x``; float16/bfloat16 inputs are computed and
        returned in float32 (their range overflows squared distances).
    """
    fn = "pairwise_distance"
    metric, p = _check_metric_args(fn, metric, p, DISTANCES)
    x, y, same = check_pair_inputs(fn, x, y)
    if metric == "mahalanobis":
        matrix = _check_matrix(fn, matrix, x.shape[-1])
    return outside_autocast(_distance, x, y, same, metric, p, matrix)


def pairwise_similarity(
    x: Tensor,
    y: Tensor | None = None,
    *,
    metric: str = "cosine",
    p: float = 2.0,
    matrix: Tensor | None = None,
) -> Tensor:
    """Pairwise similarity: cosine or dot product, or ``-distance`` for any other metric.

    Larger is more similar for every metric, so a loss written on similarities serves every
    geometry (as pytorch-metric-learning's inverted distances do).

    Args:
        x: (..., N, D); y: (..., M, D) or ``None``.
        metric: ``"cosine"``, ``"dot"`` or any name in :data:`DISTANCES`.

    Returns:
        (..., N, M) similarities.
    """
    fn = "pairwise_similarity"
    metric, p = _check_metric_args(fn, metric, p, METRICS)
    x, y, same = check_pair_inputs(fn, x, y)
    return similarity_matrix(x, y, same, metric, p, matrix)


def similarity_matrix(
    x: Tensor, y: Tensor, same: bool, metric: str, p: float = 2.0, matrix: Tensor | None = None
) -> Tensor:
    """Unchecked inner form of :func:`pairwise_similarity` for callers that validated already
    (half precision is computed in float32 here too)."""
    x = compute_dtype(x)
    y = x if same else compute_dtype(y)
    if metric == "mahalanobis":
        matrix = _check_matrix("pairwise_similarity", matrix, x.shape[-1])
    return outside_autocast(_similarity, x, y, same, metric, p, matrix)


def _similarity(x: Tensor, y: Tensor, same: bool, metric: str, p: float, matrix: Tensor | None) -> Tensor:
    if metric == "cosine":
        return _cosine(x, y)
    if metric == "dot":
        return x @ y.transpose(-1, -2)
    return -_distance(x, y, same, metric, p, matrix)


def distance_matrix(
    x: Tensor, y: Tensor, metric: str, p: float = 2.0, matrix: Tensor | None = None
) -> Tensor:
    """Unchecked inner form of :func:`pairwise_distance` for callers that validated already
    (``HarmonicHead``: its learned Mahalanobis matrix is PSD by construction, so the per-call
    eigenvalue check is skipped). Half precision is computed in float32."""
    x, y = compute_dtype(x), compute_dtype(y)
    return outside_autocast(_distance, x, y, False, metric, p, None if matrix is None else matrix.to(x.dtype))
