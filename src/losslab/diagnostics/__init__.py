"""Training diagnostics: calibration, safe step radius, neural collapse, Hessian and loss
landscape, scaling laws, probes, ensemble log-loss and per-token loss comparison.

Calibration metrics are pure functions of ``(probs_or_logits, labels)`` plus stateful
``update/compute`` classes; see ``docs/diagnostics.md``.
"""

from .calibration import (
    AdaptiveCalibrationError,
    BrierScore,
    CalibrationBins,
    CalibrationError,
    ClasswiseCalibrationError,
    CorrectnessAwareCalibrator,
    NegativeLogLikelihood,
    adaptive_calibration_error,
    brier_score,
    calibration_bins,
    classwise_calibration_error,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
    temperature_scale,
    view_features,
)
from .collapse import NeuralCollapse, class_means, frame_distance, neural_collapse
from .ensemble import ensemble_log_loss
from .hessian import (
    HessianOperator,
    density_on_grid,
    hutchinson_trace,
    lanczos,
    lanczos_eigenvalues,
    lla_criteria,
    plot_spectral_density,
    spectral_density,
    top_eigenvalues,
)
from .landscape import (
    filter_normalized_direction,
    hessian_directions,
    loss_landscape,
    plot_landscape,
)
from .probes import ProbeComparison, compare_probes, fit_logistic_probe
from .safe_step import (
    binary_exact_radius,
    directional_logit_derivatives,
    logit_spread,
    output_logit_radius,
    safe_step_radius,
)
from .scaling import (
    ScalingFit,
    annealing_areas,
    fit_lr_annealing,
    fit_power_law,
    fit_scaling_law,
    make_schedule,
    optimal_mixture,
    predict_lr_annealing,
)
from .token_compare import TokenLossComparison, TokenLossSummary, plot_token_loss_differences

__all__ = [
    "AdaptiveCalibrationError",
    "BrierScore",
    "CalibrationBins",
    "CalibrationError",
    "ClasswiseCalibrationError",
    "CorrectnessAwareCalibrator",
    "HessianOperator",
    "NegativeLogLikelihood",
    "NeuralCollapse",
    "ProbeComparison",
    "ScalingFit",
    "TokenLossComparison",
    "TokenLossSummary",
    "adaptive_calibration_error",
    "annealing_areas",
    "binary_exact_radius",
    "brier_score",
    "calibration_bins",
    "class_means",
    "classwise_calibration_error",
    "compare_probes",
    "density_on_grid",
    "directional_logit_derivatives",
    "ensemble_log_loss",
    "expected_calibration_error",
    "filter_normalized_direction",
    "fit_logistic_probe",
    "fit_lr_annealing",
    "fit_power_law",
    "fit_scaling_law",
    "fit_temperature",
    "frame_distance",
    "hessian_directions",
    "hutchinson_trace",
    "lanczos",
    "lanczos_eigenvalues",
    "lla_criteria",
    "logit_spread",
    "loss_landscape",
    "make_schedule",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "neural_collapse",
    "optimal_mixture",
    "output_logit_radius",
    "plot_landscape",
    "plot_spectral_density",
    "plot_token_loss_differences",
    "predict_lr_annealing",
    "reliability_diagram",
    "safe_step_radius",
    "spectral_density",
    "temperature_scale",
    "top_eigenvalues",
    "view_features",
]
