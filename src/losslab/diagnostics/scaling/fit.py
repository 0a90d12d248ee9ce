r"""Fit scaling laws: Huber loss on log residuals, multi-start L-BFGS-B, bootstrap intervals.

Objective (Hoffmann et al. 2022, approach 3; Tissue et al. 2024):

.. math:: \min_\theta \sum_j \mathrm{Huber}_\delta\big(\log\hat L_\theta(x_j) - \log L_j\big),\qquad
          \mathrm{Huber}_\delta(r) = \begin{cases}\tfrac12 r^2 & |r|\le\delta\\
          \delta(|r| - \tfrac12\delta) & \text{else}\end{cases}

with δ = 1e-3. The whole start grid of the law is scored in one vectorised pass, L-BFGS-B
(scipy, gradients by autograd in float64) runs from the ``n_starts`` best grid points and the
best optimum is kept. Bootstrap intervals refit on rows resampled with replacement, starting
from the full-data optimum, and report percentile intervals. (For one training curve the rows
are correlated steps, so these intervals are optimistic; resample whole runs where you can.)
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .laws import LAWS, ScalingLaw, annealing_areas


def huber(r: Tensor, delta: float = 1e-3) -> Tensor:
    """Elementwise Huber function. Example: Huber_1e-3([5e-4, 2e-3]) = [1.25e-7, 1.5e-6]."""
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r.square(), delta * (a - 0.5 * delta))


@dataclass(frozen=True)
class ScalingFit:
    """A fitted law: reported parameters, the raw vector θ, the objective value, the log
    residuals log L̂ − log L, percentile intervals (empty without bootstrap) and the constants
    the law needs besides its columns (the NMT reference sizes)."""

    law: str
    params: dict[str, float]
    theta: np.ndarray
    objective: float
    residuals: np.ndarray
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)

    def predict(self, **columns: np.ndarray) -> np.ndarray:
        """Predicted loss for new data columns (same names as for the fit)."""
        law = LAWS[self.law]
        data = _tensors("ScalingFit.predict", law, columns, self.constants)
        theta = torch.as_tensor(self.theta, dtype=torch.float64)
        out: np.ndarray = law.log_predict(theta, data).exp().numpy()
        return out


def _tensors(fn: str, law: ScalingLaw, columns: Mapping[str, object],
             constants: Mapping[str, float]) -> dict[str, Tensor]:
    missing = [c for c in law.columns if c not in columns]
    if missing:
        raise ValueError(f"{fn}: law {law.name!r} needs columns {list(law.columns)}, "
                         f"missing {missing}")
    out = {}
    for c in law.columns:
        v = torch.as_tensor(np.asarray(columns[c], dtype=np.float64))
        if v.dim() != 1 or not bool(torch.isfinite(v).all()):
            raise ValueError(f"{fn}: column {c!r} must be a finite 1-D array, got shape "
                             f"{tuple(v.shape)}")
        if c != "s2" and bool((v <= 0).any()):
            raise ValueError(f"{fn}: column {c!r} must be positive (it enters a power law)")
        out[c] = v
    for k, val in constants.items():
        out[k] = torch.tensor(val, dtype=torch.float64)
    return out


def _objective(law: ScalingLaw, theta: Tensor, data: Mapping[str, Tensor], log_loss: Tensor,
               delta: float) -> Tensor:
    return huber(law.log_predict(theta, data) - log_loss, delta).sum(-1)


def _single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    """L-BFGS-B's tiny BLAS calls are 10x slower with a multi-threaded BLAS on a busy machine;
    limit BLAS to one thread when threadpoolctl (a scikit-learn dependency) is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[object] = threadpool_limits(1, user_api="blas")
    return limits


def _minimise(law: ScalingLaw, start: np.ndarray, data: Mapping[str, Tensor],
              log_loss: Tensor, delta: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    # L-BFGS-B's stopping tests are absolute for objectives below 1; rescaling the Huber sum by
    # 1/(δ n) (argmin unchanged) puts a typical fit at O(|residual|/δ) and makes them meaningful.
    scale = 1.0 / (delta * log_loss.numel())

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        val = _objective(law, theta, data, log_loss, delta) * scale
        (grad,) = torch.autograd.grad(val, theta)
        return float(val.detach()), grad.numpy().copy()

    with _single_threaded_blas():
        res = minimize(value_and_grad, start, jac=True, method="L-BFGS-B", bounds=law.bounds,
                       options={"maxiter": 1000, "ftol": 1e-10, "gtol": 1e-7})
    return np.asarray(res.x, dtype=np.float64), float(res.fun) / scale


def _clip_to_bounds(law: ScalingLaw, grid: np.ndarray) -> np.ndarray:
    lo = np.array([-np.inf if b[0] is None else b[0] for b in law.bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in law.bounds])
    clipped: np.ndarray = np.clip(grid, lo, hi)
    return clipped


def fit_scaling_law(
    law: str,
    loss: np.ndarray | list[float],
    *,
    columns: Mapping[str, object],
    constants: Mapping[str, float] | None = None,
    delta: float = 1e-3,
    n_starts: int = 8,
    bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> ScalingFit:
    """Fit one of :data:`~losslab.diagnostics.scaling.laws.LAWS` to observed losses.

    Args:
        law: ``"power"``, ``"chinchilla"``, ``"nmt"``, ``"lr-annealing"`` or ``"multilingual"``.
        loss: (n,) observed losses (positive).
        columns: the law's inputs, e.g. ``{"x": sizes}`` or ``{"s1": ..., "s2": ...}``.
        constants: ``ref_enc``/``ref_dec`` for ``nmt`` (default: geometric means of the data).
        n_starts: L-BFGS-B runs from the best points of the start grid.
        bootstrap: number of bootstrap refits (0: no intervals).

    Example: losses from L = 1.5 + (1e6/x)^0.1 at x = 1e6..1e10 are fitted back to
        L_inf = 1.5, x0 = 1e6, alpha = 0.1 (see tests/diagnostics/test_scaling.py).
    """
    fn = "fit_scaling_law"
    if law not in LAWS:
        raise ValueError(f"{fn}: law must be one of {sorted(LAWS)}, got {law!r}")
    spec = LAWS[law]
    y = np.asarray(loss, dtype=np.float64)
    if y.ndim != 1 or y.size < len(spec.params) or not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError(f"{fn}: loss must be a 1-D array of at least {len(spec.params)} finite "
                         f"positive values, got shape {y.shape}")
    consts = dict(constants or {})
    if law == "nmt":
        for key, col in (("ref_enc", "n_enc"), ("ref_dec", "n_dec")):
            if key not in consts and col in columns:
                consts[key] = float(np.exp(np.mean(np.log(np.asarray(columns[col], float)))))
    data = _tensors(fn, spec, columns, consts)
    for c in spec.columns:
        if data[c].shape[0] != y.size:
            raise ValueError(f"{fn}: column {c!r} has {data[c].shape[0]} rows but loss has "
                             f"{y.size}")
    log_loss = torch.as_tensor(np.log(y))
    grid = _clip_to_bounds(spec, np.array(list(itertools.product(*spec.grid))))
    scores = _objective(spec, torch.as_tensor(grid), data, log_loss, delta).numpy()
    best_theta, best_val = grid[0], np.inf
    for i in np.argsort(np.nan_to_num(scores, nan=np.inf))[: max(1, n_starts)]:
        theta, val = _minimise(spec, grid[i], data, log_loss, delta)
        if val < best_val:
            best_theta, best_val = theta, val
    t = torch.as_tensor(best_theta)
    residuals = (spec.log_predict(t, data) - log_loss).numpy()
    intervals: dict[str, tuple[float, float]] = {}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            idx = torch.as_tensor(rng.integers(0, y.size, y.size))
            sub = {k: (v[idx] if v.dim() == 1 else v) for k, v in data.items()}
            theta, _ = _minimise(spec, best_theta, sub, log_loss[idx], delta)
            draws.append(list(spec.public(theta).values()))
        arr = np.array(draws)
        tail = 100 * (1 - confidence) / 2
        for j, name in enumerate(spec.public(best_theta)):
            intervals[name] = (float(np.percentile(arr[:, j], tail)),
                               float(np.percentile(arr[:, j], 100 - tail)))
    return ScalingFit(law, spec.public(best_theta), best_theta, best_val, residuals, intervals,
                      consts)


def fit_power_law(x: np.ndarray | list[float], loss: np.ndarray | list[float],
                  **kwargs: object) -> ScalingFit:
    """``fit_scaling_law("power", loss, columns={"x": x})``: L = L_inf + (x0/x)^alpha."""
    return fit_scaling_law("power", loss, columns={"x": x}, **kwargs)  # type: ignore[arg-type]


def annealing_columns(
    steps: np.ndarray | list[int],
    lrs: np.ndarray | list[float],
    *,
    decay: float = 0.999,
    warmup_steps: int = 0,
    warmup: str = "include",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(s1, s2, keep)`` at 1-based ``steps`` of a run with per-step learning rates ``lrs``;
    ``keep`` is False inside an excluded warm-up (S1 = 0 there, no prediction)."""
    s = np.asarray(steps, dtype=np.int64)
    s1, s2 = annealing_areas(lrs, decay=decay, warmup_steps=warmup_steps, warmup=warmup)
    if s.ndim != 1 or s.size == 0 or s.min() < 1 or s.max() > s1.size:
        raise ValueError(f"fit_lr_annealing: steps must be 1-based counts in [1, {s1.size}] "
                         f"(the schedule's length)")
    keep = s1[s - 1] > 0
    return s1[s - 1], s2[s - 1], keep


def fit_lr_annealing(
    runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    decay: float = 0.999,
    warmup_steps: int = 0,
    warmup: str = "include",
    **kwargs: object,
) -> ScalingFit:
    """Fit L(s) = L0 + A·S1^(−alpha) − C·S2 jointly to one or more loss curves.

    ``runs`` holds ``(steps, loss, lrs)`` per run: 1-based step counts where the loss was
    measured, the losses, and the run's learning rate at every step. One constant and one
    decaying schedule pin down the law far better than a single curve (L0 and A trade off).
    """
    cols: dict[str, list[np.ndarray]] = {"s1": [], "s2": [], "loss": []}
    for steps, loss, lrs in runs:
        s1, s2, keep = annealing_columns(steps, lrs, decay=decay, warmup_steps=warmup_steps,
                                         warmup=warmup)
        y = np.asarray(loss, dtype=np.float64)
        if y.shape != keep.shape:
            raise ValueError(f"fit_lr_annealing: a run has {keep.size} steps but {y.size} losses")
        cols["s1"].append(s1[keep])
        cols["s2"].append(s2[keep])
        cols["loss"].append(y[keep])
    if not cols["loss"]:
        raise ValueError("fit_lr_annealing: runs is empty; give at least one (steps, loss, lrs)")
    data = {k: np.concatenate(v) for k, v in cols.items()}
    return fit_scaling_law("lr-annealing", data.pop("loss"), columns=data,
                           **kwargs)  # type: ignore[arg-type]


def predict_lr_annealing(
    fit: ScalingFit,
    lrs: np.ndarray | list[float],
    *,
    decay: float = 0.999,
    warmup_steps: int = 0,
    warmup: str = "include",
) -> np.ndarray:
    """Loss after every step of another schedule ``lrs`` under a fitted ``lr-annealing`` law
    (NaN inside an excluded warm-up): the law's use for choosing a schedule."""
    if fit.law != "lr-annealing":
        raise ValueError(f"predict_lr_annealing: fit must be an 'lr-annealing' fit, got {fit.law!r}")
    s1, s2 = annealing_areas(lrs, decay=decay, warmup_steps=warmup_steps, warmup=warmup)
    out = np.full(s1.size, np.nan)
    keep = s1 > 0
    out[keep] = fit.predict(s1=s1[keep], s2=s2[keep])
    return out


__all__ = [
    "ScalingFit",
    "fit_lr_annealing",
    "fit_power_law",
    "fit_scaling_law",
    "predict_lr_annealing",
]
