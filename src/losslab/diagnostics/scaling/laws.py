r"""Scaling-law forms, the learning-rate-annealing areas S1/S2, learning-rate schedules, and the
optimal multilingual sampling mixture.

Every law predicts the *log* loss from a parameter vector θ (last dimension) and named data
columns, vectorised so a whole grid of θ is scored at once:

* ``power``: :math:`L = L_\infty + (x_0/x)^{\alpha}`, θ = (log x₀, α, log L_∞)
  (Henighan et al. 2020, arXiv 2010.14701; Kaplan et al. 2020).
* ``chinchilla``: :math:`L = E + A N^{-\alpha} + B D^{-\beta}`, θ = (log A, log B, log E, α, β)
  (Hoffmann et al. 2022, arXiv 2203.15556, approach 3).
* ``nmt``: :math:`L = \alpha (\bar N_e/N_e)^{p_e} (\bar N_d/N_d)^{p_d} + L_\infty`,
  θ = (log α, p_e, p_d, log L_∞) (Ghorbani et al., ICLR 2022, arXiv 2109.07740).
* ``lr-annealing``: :math:`L(s) = L_0 + A S_1^{-\alpha} - C S_2`, θ = (L₀, A, α, C)
  (Tissue, Wang, Wang 2024, arXiv 2408.11029).
* ``multilingual``: :math:`L_i = p_i^{-\gamma}(E + A N^{-\alpha} + B D^{-\beta})` for one
  language family, θ = (log A, log B, log E, α, β, γ) (He et al. 2024, arXiv 2410.12883).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def _col(theta: Tensor, i: int) -> Tensor:
    return theta[..., i : i + 1]


def _lse(*terms: Tensor) -> Tensor:
    shape = torch.Size(np.broadcast_shapes(*(tuple(t.shape) for t in terms)))
    return torch.logsumexp(torch.stack([t.expand(shape) for t in terms]), dim=0)


def _power(t: Tensor, d: Mapping[str, Tensor]) -> Tensor:
    return _lse(_col(t, 1) * (_col(t, 0) - d["x"].log()), _col(t, 2))


def _chinchilla(t: Tensor, d: Mapping[str, Tensor]) -> Tensor:
    return _lse(_col(t, 0) - _col(t, 3) * d["n"].log(), _col(t, 1) - _col(t, 4) * d["d"].log(),
                _col(t, 2))


def _nmt(t: Tensor, d: Mapping[str, Tensor]) -> Tensor:
    reducible = (_col(t, 0) + _col(t, 1) * (d["ref_enc"] / d["n_enc"]).log()
                 + _col(t, 2) * (d["ref_dec"] / d["n_dec"]).log())
    return _lse(reducible, _col(t, 3))


def _annealing(t: Tensor, d: Mapping[str, Tensor]) -> Tensor:
    loss = _col(t, 0) + _col(t, 1) * d["s1"].pow(-_col(t, 2)) - _col(t, 3) * d["s2"]
    # a non-positive prediction has no log; a tiny floor keeps the objective finite and large
    return loss.clamp_min(1e-6).log()


def _multilingual(t: Tensor, d: Mapping[str, Tensor]) -> Tensor:
    return -_col(t, 5) * d["p"].log() + _chinchilla(t, d)


@dataclass(frozen=True)
class ScalingLaw:
    """A law: parameter names, the columns it reads, its log-prediction, a start grid (one
    list of values per parameter) and L-BFGS-B bounds; ``public`` maps θ to the reported
    parameters (for example log L_∞ → L_∞)."""

    name: str
    params: tuple[str, ...]
    columns: tuple[str, ...]
    log_predict: Callable[[Tensor, Mapping[str, Tensor]], Tensor]
    grid: tuple[tuple[float, ...], ...]
    bounds: tuple[tuple[float | None, float | None], ...]
    public: Callable[[np.ndarray], dict[str, float]]


def _exp_named(names: tuple[str, ...], logged: tuple[bool, ...]) -> Callable[[np.ndarray], dict[str, float]]:
    def public(theta: np.ndarray) -> dict[str, float]:
        return {n: float(math.exp(v) if lg else v) for n, v, lg in zip(names, theta, logged,
                                                                        strict=True)}
    return public


_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
LAWS: dict[str, ScalingLaw] = {
    "power": ScalingLaw(
        "power", ("log_x0", "alpha", "log_L_inf"), ("x",), _power,
        ((0.0, 10.0, 20.0), (0.05, 0.2, 0.5, 1.0), _E), ((None, None), (0.0, 5.0), (-10, 5)),
        _exp_named(("x0", "alpha", "L_inf"), (True, False, True)),
    ),
    "chinchilla": ScalingLaw(
        "chinchilla", ("a", "b", "e", "alpha", "beta"), ("n", "d"), _chinchilla,
        ((0.0, 5.0, 10.0, 15.0, 20.0, 25.0), (0.0, 5.0, 10.0, 15.0, 20.0, 25.0), _E,
         (0.0, 0.5, 1.0, 1.5, 2.0), (0.0, 0.5, 1.0, 1.5, 2.0)),
        ((None, None), (None, None), (-10, 5), (0.0, 5.0), (0.0, 5.0)),
        _exp_named(("A", "B", "E", "alpha", "beta"), (True, True, True, False, False)),
    ),
    "nmt": ScalingLaw(
        "nmt", ("log_alpha", "p_e", "p_d", "log_L_inf"), ("n_enc", "n_dec"), _nmt,
        ((-1.0, 0.0, 1.0), (0.0, 0.25, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0), _E),
        ((-10, 10), (0.0, 5.0), (0.0, 5.0), (-10, 5)),
        _exp_named(("alpha", "p_e", "p_d", "L_inf"), (True, False, False, True)),
    ),
    "lr-annealing": ScalingLaw(
        "lr-annealing", ("L0", "A", "alpha", "C"), ("s1", "s2"), _annealing,
        ((1.0, 2.0, 4.0), (0.3, 1.0, 3.0, 10.0), (0.2, 0.5, 1.0), (0.0, 0.3, 1.0, 3.0)),
        ((0.1, 10.0), (0.1, 100.0), (0.1, 3.0), (0.0, 10.0)),
        _exp_named(("L0", "A", "alpha", "C"), (False, False, False, False)),
    ),
    "multilingual": ScalingLaw(
        "multilingual", ("a", "b", "e", "alpha", "beta", "gamma"), ("n", "d", "p"), _multilingual,
        ((0.0, 10.0, 20.0), (0.0, 10.0, 20.0), _E, (0.0, 0.5, 1.0), (0.0, 0.5, 1.0),
         (0.0, 0.1, 0.3)),
        ((None, None), (None, None), (-10, 5), (0.0, 5.0), (0.0, 5.0), (-1.0, 3.0)),
        _exp_named(("A", "B", "E", "alpha", "beta", "gamma"),
                   (True, True, True, False, False, False)),
    ),
}


def annealing_areas(
    lrs: np.ndarray | list[float],
    *,
    decay: float = 0.999,
    warmup_steps: int = 0,
    warmup: str = "include",
) -> tuple[np.ndarray, np.ndarray]:
    r"""Forward area S1 and annealing area S2 of a learning-rate schedule (Tissue et al. 2024).

    .. math::

        S_1(s) = \sum_{i\le s}\eta_i,\qquad m_i = \lambda m_{i-1} + (\eta_{i-1} - \eta_i),\
        m_1 = 0,\qquad S_2(s) = \sum_{i\le s} m_i

    by the O(T) recursion. ``lrs[i]`` is η of step i+1, so the returned arrays are indexed the
    same way (entry s−1 is the value after s steps). Warm-up (the first ``warmup_steps``):
    ``"include"`` uses η as given; ``"as_peak"`` counts warm-up steps at the peak η;
    ``"exclude"`` starts both sums after warm-up (S1 = 0 during warm-up: do not fit those steps).

    Example: η = [1, 1, 0.5, 0.25] → S1 = [1, 2, 2.5, 2.75], S2 = [0, 0, 0.5, 1.2495].
    """
    eta = np.asarray(lrs, dtype=np.float64).copy()
    if eta.ndim != 1 or eta.size == 0 or not np.all(np.isfinite(eta)) or np.any(eta < 0):
        raise ValueError(f"annealing_areas: lrs must be a non-empty 1-D array of finite "
                         f"non-negative learning rates, got shape {eta.shape}")
    if warmup not in ("include", "as_peak", "exclude"):
        raise ValueError(f"annealing_areas: warmup must be 'include', 'as_peak' or 'exclude', "
                         f"got {warmup!r}")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"annealing_areas: decay must lie in [0, 1), got {decay}")
    w = int(warmup_steps)
    if warmup == "as_peak" and w > 0:
        eta[:w] = eta.max()
    start = w if warmup == "exclude" else 0
    s1 = np.zeros_like(eta)
    s2 = np.zeros_like(eta)
    s1[start:] = np.cumsum(eta[start:])
    m = 0.0
    total = 0.0
    for i in range(start + 1, eta.size):
        m = decay * m + (eta[i - 1] - eta[i])
        total += m
        s2[i] = total
    return s1, s2


def make_schedule(spec: str, steps: int) -> np.ndarray:
    """Learning rates for ``steps`` steps from a short spec ``kind:key=value,...``.

    * ``constant:lr=1e-3``
    * ``cosine:lr=1e-3,final=0,warmup=0`` — linear warm-up then cosine to ``final``
    * ``wsd:lr=1e-3,decay=0.2,final=0,warmup=0`` — warm-up, stable, linear decay over the
      last ``decay`` fraction
    * ``step:lr=1e-3,gamma=0.1,milestones=3000/6000``
    """
    fn = "make_schedule"
    kind, _, rest = spec.partition(":")
    opts: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"{fn}: schedule option {item!r} must look like key=value")
        opts[key.strip()] = value.strip()
    if steps < 1:
        raise ValueError(f"{fn}: steps must be positive, got {steps}")
    lr = float(opts.pop("lr", "1.0"))
    warm = int(float(opts.pop("warmup", "0")))
    final = float(opts.pop("final", "0"))
    s = np.arange(1, steps + 1, dtype=np.float64)
    if kind == "constant":
        eta = np.full(steps, lr)
    elif kind == "cosine":
        frac = np.clip((s - warm) / max(steps - warm, 1), 0, 1)
        eta = final + (lr - final) * 0.5 * (1 + np.cos(math.pi * frac))
    elif kind == "wsd":
        begin = steps - float(opts.pop("decay", "0.2")) * steps
        frac = np.clip((s - begin) / max(steps - begin, 1), 0, 1)
        eta = lr + (final - lr) * frac
    elif kind == "step":
        gamma = float(opts.pop("gamma", "0.1"))
        marks = [float(m) for m in filter(None, opts.pop("milestones", "").split("/"))]
        eta = lr * gamma ** np.array([sum(x >= m for m in marks) for x in s], dtype=np.float64)
    else:
        raise ValueError(f"{fn}: schedule kind must be constant, cosine, wsd or step, got {kind!r}")
    if opts:
        raise ValueError(f"{fn}: unknown options {sorted(opts)} for schedule {kind!r}")
    if warm > 0:
        eta[:warm] = lr * s[:warm] / warm
    return eta


def optimal_mixture(gammas: np.ndarray | list[float]) -> np.ndarray:
    r"""Sampling ratios minimising :math:`\sum_i p_i^{-\gamma_i}` subject to
    :math:`\sum_i p_i = 1` (He et al. 2024): :math:`p_i = (\gamma_i/\mu)^{1/(1+\gamma_i)}` with μ
    found by root finding.

    Example: γ = [0.08, 0.10, 0.15] → p* = [0.241523, 0.303583, 0.454894].
    """
    from scipy.optimize import brentq

    g = np.asarray(gammas, dtype=np.float64)
    if g.ndim != 1 or g.size < 1 or np.any(g <= 0):
        raise ValueError(f"optimal_mixture: gammas must be a 1-D array of positive numbers, got {g}")

    def excess(log_mu: float) -> float:
        return float(np.sum((g / math.exp(log_mu)) ** (1.0 / (1.0 + g))) - 1.0)

    log_mu = brentq(excess, -60.0, 60.0, xtol=1e-14)
    p: np.ndarray = (g / math.exp(log_mu)) ** (1.0 / (1.0 + g))
    return p


__all__ = [
    "annealing_areas",
    "make_schedule",
    "optimal_mixture",
]
