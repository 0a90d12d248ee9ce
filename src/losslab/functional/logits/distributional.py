r"""Distributional value losses: regression as classification over bins ("Stop Regressing").

A scalar target y is encoded as a distribution over m bins of a support [v_min, v_max] and the
loss is the cross-entropy between that distribution and softmax(logits); the prediction is the
expectation of the bin values under softmax(logits).

* HL-Gauss (histogram loss with a Gaussian target): bins of width ς = (v_max − v_min)/m with
  edges e_0..e_m and centres c_i; p_i(y) is the mass of N(y, σ²) in bin i, renormalised to the
  support; σ = ``sigma_ratio``·ς with the paper's σ/ς = 0.75.
* Two-hot: m atoms z_j = linspace(v_min, v_max, m); y (clipped) is split between its two
  neighbouring atoms so that Σ p_j z_j = y exactly.

Targets outside the support are clipped to it. Value losses take logits (N, m) or
(N, m, d1, ...) and real targets (N,) / (N, d1, ...); NaN targets mark missing values and are
dropped like ignored rows. ``weight`` is an optional (m,) per-bin weight, applied like
``cross_entropy``'s class weights with probability targets (−Σ_i w_i p_i log q_i; ``mean``
divides by the number of kept rows).

Reference: Farebrother et al., *Stop Regressing: Training Value Functions via Classification
for Scalable Deep RL*, ICML 2024 (arXiv 2403.03950); Imani & White, *Improving Regression
Performance with Distributional Losses*, ICML 2018.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..._core.logit_loss import compute_dtype
from ..._core.reduction import reduce_rows
from ..._core.registry import Paper, register
from ..._core.validation import (
    check_class_weight,
    check_number,
    check_reduction,
    check_tensor,
    expected_target_shape,
    flatten_logits,
    values_checkable,
)
from .._core.softmax_objectives import sparse_soft_cross_entropy


def _check_support(fn: str, v_min: float, v_max: float, num_bins: int, min_bins: int) -> None:
    check_number(fn, "v_min", v_min)
    check_number(fn, "v_max", v_max)
    if not v_max > v_min:
        raise ValueError(
            f"{fn}: v_max must be greater than v_min, got v_min={v_min}, v_max={v_max}"
        )
    if isinstance(num_bins, bool) or not isinstance(num_bins, int):
        raise TypeError(f"{fn}: num_bins must be an int, got {type(num_bins).__name__}")
    if num_bins < min_bins:
        raise ValueError(f"{fn}: num_bins must be >= {min_bins}, got {num_bins}")


def _check_hl_gauss(*, v_min: float, v_max: float, num_bins: int, sigma_ratio: float) -> None:
    _check_support("hl_gauss", v_min, v_max, num_bins, 1)
    check_number("hl_gauss", "sigma_ratio", sigma_ratio, low=0.0, low_open=True)


def _check_two_hot(*, v_min: float, v_max: float, num_bins: int) -> None:
    _check_support("two_hot", v_min, v_max, num_bins, 2)


def _value_dtype(values: Tensor) -> torch.dtype:
    """float32 for integer and half inputs, float64 kept: erf and CE need the precision."""
    return compute_dtype(values) if values.is_floating_point() else torch.float32


def _values(fn: str, values: Tensor, dtype: torch.dtype) -> Tensor:
    check_tensor(fn, "target", values)
    if values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"{fn}: target must hold real values, got dtype {values.dtype}")
    return values.to(dtype)


def hl_gauss_encode(
    values: Tensor, *, v_min: float, v_max: float, num_bins: int, sigma_ratio: float = 0.75
) -> Tensor:
    r"""HL-Gauss target distribution of each value: (...,) → (..., m), rows sum to 1.

    p_i(y) = [Φ((e_{i+1} − y)/σ) − Φ((e_i − y)/σ)] / [Φ((e_m − y)/σ) − Φ((e_0 − y)/σ)],
    computed with erf at the edges; y is clipped to the support, the normaliser clamped ≥ 1e-12.

    Example:
        >>> import torch, losslab.functional as LF
        >>> p = LF.hl_gauss_encode(torch.tensor(0.3, dtype=torch.float64), v_min=0, v_max=1,
        ...                        num_bins=4)
        >>> [round(v, 6) for v in p.tolist()]
        [0.359815, 0.488914, 0.142697, 0.008574]
    """
    _check_hl_gauss(v_min=v_min, v_max=v_max, num_bins=num_bins, sigma_ratio=sigma_ratio)
    y = _values("hl_gauss_encode", values, _value_dtype(values))
    edges = torch.linspace(v_min, v_max, num_bins + 1, dtype=y.dtype, device=y.device)
    sigma = sigma_ratio * (v_max - v_min) / num_bins
    y = y.clamp(v_min, v_max).unsqueeze(-1)
    cdf = torch.erf((edges - y) / (math.sqrt(2.0) * sigma))
    z = (cdf[..., -1:] - cdf[..., :1]).clamp_min(1e-12)
    return (cdf[..., 1:] - cdf[..., :-1]) / z


# erf(x) is exactly ±1 in float32 beyond |x| = 3.93 and in float64 beyond 5.93: edges farther
# than this many σ·√2 from y give cdf differences of exactly 0.
_ERF_SATURATED = 6.5


def _hl_gauss_band(
    y: Tensor, *, v_min: float, v_max: float, num_bins: int, sigma_ratio: float
) -> tuple[Tensor, Tensor]:
    """The nonzero part of :func:`hl_gauss_encode` of (K,) values: bin indices (K, W) and
    their probabilities (K, W), equal to the dense encoding's entries (the same erf calls on
    the same edges); every other bin is exactly 0 there because erf saturates."""
    edges = torch.linspace(v_min, v_max, num_bins + 1, dtype=y.dtype, device=y.device)
    sigma = sigma_ratio * (v_max - v_min) / num_bins
    scale = math.sqrt(2.0) * sigma
    width = (v_max - v_min) / num_bins
    reach = math.ceil(_ERF_SATURATED * scale / width) + 1
    n_edges = min(2 * reach + 2, num_bins + 1)
    yc = y.clamp(v_min, v_max).unsqueeze(-1)
    first = torch.floor((yc - v_min) / width).long() - reach
    first = first.clamp(0, num_bins + 1 - n_edges)
    eidx = first + torch.arange(n_edges, device=y.device)
    cdf = torch.erf((edges[eidx] - yc) / scale)
    ends = torch.erf((edges[[0, -1]] - yc) / scale)
    norm = (ends[..., 1:] - ends[..., :1]).clamp_min(1e-12)
    return eidx[..., :-1], (cdf[..., 1:] - cdf[..., :-1]) / norm


def _two_hot_band(
    y: Tensor, *, v_min: float, v_max: float, num_bins: int
) -> tuple[Tensor, Tensor]:
    """The two nonzero bins of :func:`two_hot_encode` of (K,) values: indices and masses."""
    step = (v_max - v_min) / (num_bins - 1)
    pos = (y.clamp(v_min, v_max) - v_min) / step
    low = pos.floor().clamp(0, num_bins - 2)
    frac = (pos - low).unsqueeze(-1)
    idx = low.long().unsqueeze(-1)
    return torch.cat([idx, idx + 1], -1), torch.cat([1.0 - frac, frac], -1)


def hl_gauss_centers(
    *, v_min: float, v_max: float, num_bins: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Bin centres (e_i + e_{i+1})/2 of the HL-Gauss support."""
    edges = torch.linspace(v_min, v_max, num_bins + 1, dtype=dtype)
    return (edges[:-1] + edges[1:]) / 2


def two_hot_encode(values: Tensor, *, v_min: float, v_max: float, num_bins: int) -> Tensor:
    r"""Two-hot target distribution: (...,) → (..., m) with Σ p_j z_j = clip(y) exactly.

    Example:
        >>> import torch, losslab.functional as LF
        >>> p = LF.two_hot_encode(torch.tensor(0.3, dtype=torch.float64), v_min=0, v_max=1,
        ...                       num_bins=4)
        >>> [round(v, 6) for v in p.tolist()]
        [0.1, 0.9, 0.0, 0.0]
    """
    _check_two_hot(v_min=v_min, v_max=v_max, num_bins=num_bins)
    y = _values("two_hot_encode", values, _value_dtype(values))
    step = (v_max - v_min) / (num_bins - 1)
    pos = (y.clamp(v_min, v_max) - v_min) / step
    low = pos.floor().clamp(0, num_bins - 2)
    frac = (pos - low).unsqueeze(-1)
    idx = low.long().unsqueeze(-1)
    out = torch.zeros((*y.shape, num_bins), dtype=y.dtype, device=y.device)
    return out.scatter(-1, idx, 1.0 - frac).scatter(-1, idx + 1, frac)


def two_hot_atoms(
    *, v_min: float, v_max: float, num_bins: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Atoms linspace(v_min, v_max, m) of the two-hot support."""
    return torch.linspace(v_min, v_max, num_bins, dtype=dtype)


def _decode(logits: Tensor, support: Callable[[torch.dtype], Tensor], dim: int) -> Tensor:
    probs = torch.softmax(logits.to(compute_dtype(logits)), dim=dim)
    shape = [1] * probs.dim()
    shape[dim] = -1
    # The support is built in the compute dtype: a float32 linspace would cost 1e-7 absolute.
    return (probs * support(probs.dtype).to(probs.device).reshape(shape)).sum(dim)


def hl_gauss_decode(
    logits: Tensor, *, v_min: float, v_max: float, num_bins: int, dim: int = 1
) -> Tensor:
    """Predicted value Σ_i softmax(logits)_i c_i along ``dim`` (the bin dimension).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[0.0, 1.0, 0.5, -1.0]], dtype=torch.float64)
        >>> round(LF.hl_gauss_decode(z, v_min=0, v_max=1, num_bins=4).item(), 7)
        0.4353535
    """
    _check_support("hl_gauss_decode", v_min, v_max, num_bins, 1)
    return _decode(
        logits,
        lambda dt: hl_gauss_centers(v_min=v_min, v_max=v_max, num_bins=num_bins, dtype=dt),
        dim,
    )


def two_hot_decode(
    logits: Tensor, *, v_min: float, v_max: float, num_bins: int, dim: int = 1
) -> Tensor:
    """Predicted value Σ_j softmax(logits)_j z_j along ``dim`` (the bin dimension)."""
    _check_support("two_hot_decode", v_min, v_max, num_bins, 2)
    return _decode(
        logits,
        lambda dt: two_hot_atoms(v_min=v_min, v_max=v_max, num_bins=num_bins, dtype=dt),
        dim,
    )


def _value_loss(
    fn: str,
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    num_bins: int,
    encode: Callable[[Tensor], tuple[Tensor, Tensor]],
) -> Tensor:
    reduction = check_reduction(fn, reduction)
    if ignore_index != -100:
        raise ValueError(
            f"{fn}: ignore_index does not apply to value targets (got {ignore_index!r}); "
            f"mark missing targets with NaN"
        )
    check_tensor(fn, "target", target)
    z, m = flatten_logits(fn, input)
    if m != num_bins:
        raise ValueError(
            f"{fn}: input has {m} logits per position but num_bins={num_bins}; "
            f"they must be equal (input shape {tuple(input.shape)})"
        )
    z = z.to(compute_dtype(z))
    bin_weight = check_class_weight(fn, weight, m, z)
    shape = expected_target_shape(input)
    if tuple(target.shape) != shape:
        raise ValueError(
            f"{fn}: target must have shape {shape} for input of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    y = _values(fn, target, z.dtype).reshape(-1)
    missing = torch.isnan(y)
    if not values_checkable(z, y):
        # Traced or meta: no data-dependent row selection. Missing rows are scored on a
        # stand-in value (0) and masked out, so value and gradient equal the eager path's.
        keep = (~missing).to(z.dtype)
        idx, t = encode(torch.where(missing, torch.zeros_like(y), y))
        if bin_weight is not None:
            t = t * bin_weight[idx]
        per_row = sparse_soft_cross_entropy(z, idx, t) * keep
        return reduce_rows(per_row, reduction=reduction, row_weight=keep, out_shape=shape)
    kept: Tensor | None = None
    if bool(missing.any()):
        kept = ~missing
        z, y = z[kept], y[kept]
    # -(t * log_softmax(z)).sum(1) with t nonzero on a few bins only: a sparse soft-target
    # CE (one softmax, hand-written backward), no dense (K, m) target.
    idx, t = encode(y)
    if bin_weight is not None:
        t = t * bin_weight[idx]
    per_row = sparse_soft_cross_entropy(z, idx, t)
    return reduce_rows(per_row, reduction=reduction, kept=kept, out_shape=shape)


STOP_REGRESSING = Paper(
    "Stop Regressing: Training Value Functions via Classification for Scalable Deep RL",
    2024,
    authors="Farebrother et al.",
    arxiv="2403.03950",
)
_BAD_SUPPORT = ({"v_max": -20.0}, {"num_bins": 0})


def hl_gauss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    v_min: float = -10.0,
    v_max: float = 10.0,
    num_bins: int = 51,
    sigma_ratio: float = 0.75,
) -> Tensor:
    r"""HL-Gauss loss: CE between the Gaussian-histogram encoding of y and softmax(logits).

    .. math:: \ell = -\sum_i p_i(y)\,\log\mathrm{softmax}(z)_i

    with p(y) from :func:`hl_gauss_encode`; predict with :func:`hl_gauss_decode`. The support
    and m are task-specific (the default [−10, 10] with 51 bins is the Atari setup as recalled,
    unverified); σ/ς = 0.75 is the paper's recommendation. Edges are linspace(v_min, v_max, m+1)
    and values are bin centres (the other public convention, atoms at linspace with edges half
    a bin beyond, is not used).

    Args:
        input: logits (N, m) or (N, m, d1, ...); target: real values (N,) / (N, d1, ...),
            NaN for missing ones. weight: optional (m,) per-bin weights.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[0.0, 1.0, 0.5, -1.0]], dtype=torch.float64)
        >>> y = torch.tensor([0.3], dtype=torch.float64)
        >>> round(LF.hl_gauss(z, y, v_min=0, v_max=1, num_bins=4).item(), 7)
        1.1948783

    Reference: Farebrother et al., ICML 2024 (arXiv 2403.03950); Imani & White, ICML 2018.
    """
    _check_hl_gauss(v_min=v_min, v_max=v_max, num_bins=num_bins, sigma_ratio=sigma_ratio)
    return _value_loss(
        "hl_gauss",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        num_bins=num_bins,
        encode=lambda y: _hl_gauss_band(
            y, v_min=v_min, v_max=v_max, num_bins=num_bins, sigma_ratio=sigma_ratio
        ),
    )


register(hl_gauss, name="hl-gauss", module="HLGauss", check=_check_hl_gauss,
         family="distributional", paper=STOP_REGRESSING, kind="value",
         invalid_hyperparameters=(*_BAD_SUPPORT, {"sigma_ratio": 0.0}))


def two_hot(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    v_min: float = -10.0,
    v_max: float = 10.0,
    num_bins: int = 51,
) -> Tensor:
    r"""Two-hot loss: CE between the two-hot encoding of y and softmax(logits).

    .. math:: \ell = -\sum_j p_j(y)\,\log\mathrm{softmax}(z)_j,\quad
              p_j = \frac{z_{j+1} - y}{z_{j+1} - z_j},\ p_{j+1} = 1 - p_j\ (z_j \le y \le z_{j+1})

    Predict with :func:`two_hot_decode`. Arguments as in :func:`hl_gauss` (m ≥ 2).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[0.0, 1.0, 0.5, -1.0]], dtype=torch.float64)
        >>> y = torch.tensor([0.3], dtype=torch.float64)
        >>> round(LF.two_hot(z, y, v_min=0, v_max=1, num_bins=4).item(), 6)
        0.846567

    Reference: Farebrother et al., ICML 2024 (arXiv 2403.03950); Schrittwieser et al., MuZero.
    """
    _check_two_hot(v_min=v_min, v_max=v_max, num_bins=num_bins)
    return _value_loss(
        "two_hot",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        num_bins=num_bins,
        encode=lambda y: _two_hot_band(y, v_min=v_min, v_max=v_max, num_bins=num_bins),
    )


register(two_hot, name="two-hot", module="TwoHot", check=_check_two_hot,
         family="distributional", paper=STOP_REGRESSING, kind="value",
         invalid_hyperparameters=(*_BAD_SUPPORT, {"num_bins": 1}))


__all__ = [
    "hl_gauss",
    "hl_gauss_centers",
    "hl_gauss_decode",
    "hl_gauss_encode",
    "two_hot",
    "two_hot_atoms",
    "two_hot_decode",
    "two_hot_encode",
]
