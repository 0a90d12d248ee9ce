"""Temperature scaling: the one-parameter post-hoc calibrator of Guo et al. (ICML 2017).

Fit T > 0 on held-out logits by minimising the mean negative log-likelihood of
``softmax(z / T)``; argmax, hence accuracy, is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.validation import check_number
from .._inputs import as_labels


def fit_temperature(
    logits: Tensor, labels: Tensor, *, init: float = 1.0, max_iter: int = 100
) -> float:
    r"""Fit the temperature of temperature scaling by L-BFGS on the NLL.

    .. math:: T^\star = \arg\min_{T>0} \frac1N\sum_i -\log\operatorname{softmax}(z_i/T)_{y_i}

    Optimised over log T (keeps T positive, and the NLL is better conditioned in log T), in
    float64 with a strong-Wolfe line search.

    Args:
        logits: (N, C) held-out logits (validation set, not the training set).
        labels: (N,) class indices.
        init: starting temperature.
        max_iter: L-BFGS iterations.

    Returns:
        The fitted temperature as a Python float; apply it with ``logits / T``.

    Example: three copies of ``z = [2, 1, 0]`` with labels ``[0, 0, 1]`` give T = 0.807607
    (scipy's bounded scalar minimiser agrees to 1e-7).

    Reference: Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017, arXiv 1706.04599.
    """
    fn = "fit_temperature"
    if not isinstance(logits, Tensor):
        raise TypeError(f"{fn}: logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point() or logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(
            f"{fn}: logits must be a non-empty floating-point tensor of shape (N, C), "
            f"got dtype {logits.dtype} shape {tuple(logits.shape)}"
        )
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{fn}: logits must be finite, got NaN or inf entries")
    check_number(fn, "init", init, low=0.0, low_open=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"{fn}: max_iter must be a positive int, got {max_iter!r}")
    y = as_labels(fn, labels, logits.shape[0], logits.shape[1])
    z = logits.detach().to(torch.float64)
    log_t = torch.tensor(float(torch.tensor(init).log()), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
        tolerance_grad=1e-12, tolerance_change=1e-14,
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * torch.exp(-log_t), y)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return float(log_t.detach().exp())


def temperature_scale(logits: Tensor, temperature: float) -> Tensor:
    """Return ``logits / temperature`` (the calibrated logits) after checking T > 0."""
    check_number("temperature_scale", "temperature", temperature, low=0.0, low_open=True)
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"temperature_scale: logits must be a torch.Tensor, got {type(logits).__name__}"
        )
    return logits / temperature


__all__ = [
    "fit_temperature",
    "temperature_scale",
]
