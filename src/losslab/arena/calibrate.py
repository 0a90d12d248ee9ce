"""Post-hoc calibration of a trained arena model on a held-out part of the training set.

The held-out labels carry the same noise as the training labels: a practitioner with noisy
labels has no clean validation set either.

* ``temperature``: temperature scaling, T minimising held-out NLL
  (:func:`losslab.diagnostics.fit_temperature`; Guo et al., ICML 2017).
* ``ca-temperature``: one temperature minimising the correctness-aware calibration loss
  (registry ``ca-calib``; Liu et al. 2024, arXiv 2404.13016) on held-out logits, by a grid over
  log T in [-3, 3] (step 0.025; the loss is not smooth in T because its balancing weights use
  the batch accuracy). The paper fits a per-sample temperature network; a single temperature
  is the smallest member of that family.

Both keep the argmax, hence accuracy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.registry import get_loss
from ..diagnostics.calibration.temperature import fit_temperature

CALIBRATIONS = ("none", "temperature", "ca-temperature")
_LOG_T_GRID = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64)


def fit_calibration(method: str, logits: Tensor, labels: Tensor) -> float:
    """The temperature ``method`` fits on held-out ``logits`` (N, C) and ``labels`` (N,)."""
    if method == "none":
        return 1.0
    if method == "temperature":
        return fit_temperature(logits, labels)
    if method == "ca-temperature":
        loss_fn = get_loss("ca-calib")
        z = logits.detach().to(torch.float64)
        with torch.no_grad():
            values = torch.stack([loss_fn(z * torch.exp(-t), labels) for t in _LOG_T_GRID])
        # First minimiser: ties (flat stretches) resolve to the smallest temperature.
        return float(torch.exp(_LOG_T_GRID[int(torch.argmin(values))]))
    raise ValueError(
        f"fit_calibration: method must be one of {', '.join(map(repr, CALIBRATIONS))}, "
        f"got {method!r}"
    )
