r"""Cauchy-Schwarz divergence terms of the CS Information Bottleneck for regression (CS-IB).

Gaussian kernel :math:`\kappa_\sigma(a,b) = e^{-\lVert a-b\rVert^2/(2\sigma^2)}`; Gram matrices on a
batch: :math:`K = \kappa(x,x)`, :math:`L^1 = \kappa(y,y)`, :math:`L^2 = \kappa(\hat y,\hat y)`,
:math:`L^{21}_{ij} = \kappa(\hat y_i, y_j)`. The prediction term (conditional CS divergence
between p(y|x) and q(ŷ|x)), in bits:

.. math::

    \hat D_{CS} = \log_2\sum_j\frac{\sum_i K_{ji}L^1_{ji}}{d_j}
                + \log_2\sum_j\frac{\sum_i K_{ji}L^2_{ji}}{d_j}
                - 2\log_2\sum_j\frac{\sum_i K_{ji}L^{21}_{ji}}{d_j}

with ``denominator="sum_sq"``: :math:`d_j = \sum_i K_{ji}^2` (the official code) or
``"sq_sum"``: :math:`d_j = (\sum_i K_{ji})^2` (the conditional-CS estimator). The compression
term is the CS quadratic mutual information

.. math::

    I_{CS}(x;t) = \log_2\frac{\sum_{ij}K_{ij}L_{ij}}{N^2} + \log_2\frac{(\sum K)(\sum L)}{N^4}
                 - 2\log_2\frac{\mathbf 1^\top K L \mathbf 1}{N^3}

optionally normalised by :math:`\sqrt{I_{CS}(x;x)\,I_{CS}(t;t)}` (the released script).
``sigma=None`` uses the official code's bandwidth helper: 10 × the median of the squared
distances below the diagonal of the distance matrix of the stacked sample ``cat([X, X])``
(at least 1e-2). That set holds every distinct pair four times and the N zero distances
between a point and its copy, and not the 2N zeros of the diagonal; its size N(2N - 1) is even
for even N, where the median is the mean of the two middle values (numpy's). For
x = [0, 1, 3, 4.5, 7] it is 9, so σ = 90 (the median of the full N × N matrix, diagonal
included, would be 6.25). Every log argument is floored at 1e-12. The objective is
:math:`\hat D_{CS} + \beta I_{CS}(x;t)` (β = 0.01).

Example (x = [0, 1, 2], y = [0, 1, 0], ŷ = [0.1, 0.8, 0.3], σ = 1):
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    >>> y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    >>> yp = torch.tensor([0.1, 0.8, 0.3], dtype=torch.float64)
    >>> round(cs_conditional_divergence(x, y, yp).item(), 7)
    0.0310482

Reference: Yu, Yu, Løkse, Jenssen, Príncipe, *Cauchy-Schwarz Divergence Information
Bottleneck for Regression*, ICLR 2024 (arXiv 2404.17951).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.validation import check_choice, check_number, check_tensor
from .._core.distances import similarity_matrix

_FLOOR = 1e-12


def _as_rows(fn: str, name: str, value: object, count: int | None) -> Tensor:
    t = check_tensor(fn, name, value)
    if not t.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got dtype {t.dtype}")
    t = t.unsqueeze(1) if t.dim() == 1 else t
    if t.dim() != 2 or (count is not None and t.shape[0] != count):
        expected = "(N,) or (N, d)" if count is None else f"({count},) or ({count}, d)"
        raise ValueError(f"{fn}: {name} must have shape {expected}, got {tuple(t.shape)}")
    return t.to(torch.promote_types(t.dtype, torch.float32))


def median_bandwidth(x: Tensor) -> float:
    """The official code's σ for (N, d) rows ``x``: 10 × the median of the squared distances
    strictly below the diagonal of ``cat([x, x])``'s distance matrix, at least 1e-2 (the rule
    in the module docstring).

    Example (x = [0, 1, 3, 4.5, 7]: the median is 9):
        >>> import torch
        >>> median_bandwidth(torch.tensor([[0.0], [1.0], [3.0], [4.5], [7.0]]))
        90.0
    """
    both = torch.cat([x, x]).detach()
    sq = -similarity_matrix(both, both, True, "sqeuclidean")
    rows, cols = torch.tril_indices(sq.shape[0], sq.shape[1], offset=-1, device=sq.device)
    values = sq[rows, cols].sort().values
    if values.numel() == 0:  # one sample: no pair; the floor
        return 1e-2
    n = values.numel()
    median = 0.5 * (float(values[(n - 1) // 2]) + float(values[n // 2]))
    return max(10.0 * median, 1e-2)


def _sigma(fn: str, sigma: float | None, *samples: Tensor) -> float:
    if sigma is not None:
        return check_number(fn, "sigma", sigma, low=0.0, low_open=True)
    return median_bandwidth(samples[0])


def gaussian_gram(a: Tensor, b: Tensor, sigma: float) -> Tensor:
    """``exp(-||a_i - b_j||² / (2σ²))`` for rows of (N, d) ``a`` and (M, d) ``b``."""
    sq = -similarity_matrix(a, b, a is b, "sqeuclidean")
    return torch.exp(-sq / (2.0 * sigma * sigma))


def _log2(x: Tensor) -> Tensor:
    return torch.log2(x.clamp_min(_FLOOR))


def cs_conditional_divergence(
    x: Tensor,
    y: Tensor,
    y_pred: Tensor,
    *,
    sigma: float | None = 1.0,
    denominator: str = "sum_sq",
) -> Tensor:
    """Conditional CS divergence D(p(y|x) ‖ q(ŷ|x)) in bits (the CS-IB prediction term).

    Args:
        x: (N,) or (N, d) inputs; y: (N,) or (N, k) targets; y_pred: like ``y``.
        sigma: kernel width (one σ for all Gram matrices) or ``None`` (median rule on x).
        denominator: ``"sum_sq"`` (official code) or ``"sq_sum"``.

    Example (``"sq_sum"`` gives 0.0326024):
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
        >>> y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        >>> yp = torch.tensor([0.1, 0.8, 0.3], dtype=torch.float64)
        >>> round(cs_conditional_divergence(x, y, yp).item(), 7)
        0.0310482
        >>> round(cs_conditional_divergence(x, y, yp, denominator="sq_sum").item(), 7)
        0.0326024
    """
    fn = "cs_conditional_divergence"
    denominator = check_choice(fn, "denominator", denominator, ("sum_sq", "sq_sum"))
    xs = _as_rows(fn, "x", x, None)
    ys = _as_rows(fn, "y", y, xs.shape[0])
    ps = _as_rows(fn, "y_pred", y_pred, xs.shape[0]).to(ys.dtype)
    if ps.shape != ys.shape:
        raise ValueError(f"{fn}: y_pred must have the shape of y {tuple(ys.shape)}, got {tuple(ps.shape)}")
    s = _sigma(fn, sigma, xs)
    k = gaussian_gram(xs, xs, s)
    d = k.square().sum(1) if denominator == "sum_sq" else k.sum(1).square()

    def term(gram: Tensor) -> Tensor:
        return _log2(((k * gram).sum(1) / d).sum())

    return term(gaussian_gram(ys, ys, s)) + term(gaussian_gram(ps, ps, s)) - 2.0 * term(
        gaussian_gram(ps, ys, s)
    )


def _qmi(k: Tensor, ell: Tensor) -> Tensor:
    n = float(k.shape[0])
    a = (k * ell).sum() / n**2
    b = k.sum() * ell.sum() / n**4
    c = (k.sum(0) * ell.sum(1)).sum() / n**3
    return _log2(a) + _log2(b) - 2.0 * _log2(c)


def cs_mutual_information(
    x: Tensor, t: Tensor, *, sigma: float | None = 1.0, normalized: bool = False
) -> Tensor:
    """CS quadratic mutual information I_CS(x; t) in bits (the CS-IB compression term).

    ``normalized`` divides by ``sqrt(I_CS(x;x)·I_CS(t;t))`` as the released training script.

    Example (x = [0, 1, 2], t = [(0, 1), (1, 0), (2, 2)], σ = 1):
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
        >>> t = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
        >>> round(cs_mutual_information(x, t).item(), 7)
        0.4552421
        >>> round(cs_mutual_information(x, t, normalized=True).item(), 7)
        0.9467952
    """
    fn = "cs_mutual_information"
    xs = _as_rows(fn, "x", x, None)
    ts = _as_rows(fn, "t", t, xs.shape[0]).to(xs.dtype)
    sx = _sigma(fn, sigma, xs)
    st = _sigma(fn, sigma, ts)
    kx, kt = gaussian_gram(xs, xs, sx), gaussian_gram(ts, ts, st)
    value = _qmi(kx, kt)
    if normalized:
        value = value / torch.sqrt((_qmi(kx, kx) * _qmi(kt, kt)).clamp_min(_FLOOR))
    return value


def cs_ib_loss(
    x: Tensor,
    y: Tensor,
    y_pred: Tensor,
    t: Tensor,
    *,
    beta: float = 0.01,
    sigma: float | None = 1.0,
    denominator: str = "sum_sq",
    normalized: bool = True,
) -> Tensor:
    """CS-IB objective ``D_CS(p(y|x) ‖ q(ŷ|x)) + β·I_CS(x; t)`` (t: the bottleneck sample).

    Args:
        x: (N,) or (N, d) inputs; y, y_pred: (N,) or (N, k) targets and predictions;
        t: (N,) or (N, e) bottleneck representation; beta: β >= 0 (0.01); sigma, denominator:
        as :func:`cs_conditional_divergence`; normalized: as :func:`cs_mutual_information`.

    Example (0.0310482 + 0.01 × 0.9467952):
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
        >>> y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        >>> yp = torch.tensor([0.1, 0.8, 0.3], dtype=torch.float64)
        >>> t = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
        >>> round(cs_ib_loss(x, y, yp, t).item(), 7)
        0.0405162
    """
    check_number("cs_ib_loss", "beta", beta, low=0.0)
    prediction = cs_conditional_divergence(x, y, y_pred, sigma=sigma, denominator=denominator)
    if beta == 0:
        return prediction
    return prediction + beta * cs_mutual_information(x, t, sigma=sigma, normalized=normalized)


__all__ = [
    "cs_conditional_divergence",
    "cs_ib_loss",
    "cs_mutual_information",
    "gaussian_gram",
]
