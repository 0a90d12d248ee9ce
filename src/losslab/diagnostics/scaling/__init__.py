"""Scaling-law fitting: the public surface of :mod:`.laws` (law forms, S1/S2,
schedules, optimal multilingual mixture) and :mod:`.fit` (Huber-on-log multi-start
L-BFGS-B with bootstrap intervals). See docs/diagnostics.md."""

from .fit import (
    ScalingFit,
    annealing_columns,
    fit_lr_annealing,
    fit_power_law,
    fit_scaling_law,
    huber,
    predict_lr_annealing,
)
from .laws import LAWS, ScalingLaw, annealing_areas, make_schedule, optimal_mixture

__all__ = [
    "LAWS",
    "ScalingFit",
    "ScalingLaw",
    "annealing_areas",
    "annealing_columns",
    "fit_lr_annealing",
    "fit_power_law",
    "fit_scaling_law",
    "huber",
    "make_schedule",
    "optimal_mixture",
    "predict_lr_annealing",
]
