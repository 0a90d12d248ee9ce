"""Optimiser wrappers that use the diagnostics: the safe-step controller, SAM/GSAM with the
RSGS entropy filter, gradient-norm sharpness penalties (IGNITE) and decorrelation sample
weights. See
``docs/diagnostics.md``."""

from .gradient_norm import IgniteConstraint, gradient_norm_penalty, surrogate_sharpness
from .reweighting import decorrelation_weights, weighted_cross_correlation
from .safe_step import SafeStep, SafeStepRecord
from .sharpness import (
    GSAM,
    SAM,
    SharpnessRecord,
    entropy_filter_mask,
    filtered_entropy,
)

__all__ = [
    "GSAM",
    "SAM",
    "IgniteConstraint",
    "SafeStep",
    "SafeStepRecord",
    "SharpnessRecord",
    "decorrelation_weights",
    "entropy_filter_mask",
    "filtered_entropy",
    "gradient_norm_penalty",
    "surrogate_sharpness",
    "weighted_cross_correlation",
]
