"""Calibration: metrics as pure functions of ``(probs_or_logits, labels)`` (:mod:`.metrics`),
the same metrics as stateful ``update/compute`` classes (:mod:`.metric_classes`), temperature
scaling (:mod:`.temperature`), the correctness-aware calibrator (:mod:`.correctness_aware`) and
reliability diagrams (:mod:`.reliability`). See ``docs/diagnostics.md``."""

from .correctness_aware import CorrectnessAwareCalibrator, view_features
from .metric_classes import (
    AdaptiveCalibrationError,
    BrierScore,
    CalibrationError,
    ClasswiseCalibrationError,
    NegativeLogLikelihood,
)
from .metrics import (
    BINNINGS,
    NORMS,
    CalibrationBins,
    adaptive_calibration_error,
    bin_statistics,
    brier_score,
    calibration_bins,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reduce_gap,
)
from .reliability import reliability_diagram
from .temperature import fit_temperature, temperature_scale

__all__ = [
    "BINNINGS",
    "NORMS",
    "AdaptiveCalibrationError",
    "BrierScore",
    "CalibrationBins",
    "CalibrationError",
    "ClasswiseCalibrationError",
    "CorrectnessAwareCalibrator",
    "NegativeLogLikelihood",
    "adaptive_calibration_error",
    "bin_statistics",
    "brier_score",
    "calibration_bins",
    "classwise_calibration_error",
    "expected_calibration_error",
    "fit_temperature",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reduce_gap",
    "reliability_diagram",
    "temperature_scale",
    "view_features",
]
