"""losslab.diagnostics exports each module's ``__all__``: every name once, from one module."""

from collections import Counter

import losslab.diagnostics as diagnostics
from losslab.diagnostics import calibration, scaling


def _defining_modules(package):
    return {name: getattr(package, name).__module__ for name in package.__all__
            if hasattr(getattr(package, name), "__module__")}


def test_every_public_name_is_exported_once_and_resolves():
    for package in (diagnostics, calibration, scaling):
        repeated = [name for name, n in Counter(package.__all__).items() if n > 1]
        assert repeated == [], package.__name__
        assert all(hasattr(package, name) for name in package.__all__), package.__name__


def test_each_name_comes_from_the_module_that_lists_it():
    # A star import lets a later module's name shadow an earlier one's silently; the owner
    # of each exported name must be the module whose __all__ lists it.
    for name, module in _defining_modules(diagnostics).items():
        owner = __import__(module, fromlist=["__all__"])
        assert name in owner.__all__, (name, module)


#: Names the sub-packages export beyond the package's own surface (their building blocks).
SUBPACKAGE_ONLY = {"BINNINGS", "NORMS", "bin_statistics", "reduce_gap",
                   "LAWS", "ScalingLaw", "annealing_columns", "huber"}


def test_the_sub_packages_export_part_of_the_package_surface():
    extra = (set(calibration.__all__) | set(scaling.__all__)) - set(diagnostics.__all__)
    assert extra == SUBPACKAGE_ONLY
    assert {"expected_calibration_error", "fit_temperature", "fit_scaling_law",
            "safe_step_radius", "NeuralCollapse", "TokenLossComparison"} <= set(diagnostics.__all__)


#: The public surface of losslab.diagnostics. Star imports make any name a module adds to its
#: __all__ public here; this list makes such an addition a deliberate edit.
SURFACE = {
    'AdaptiveCalibrationError', 'BrierScore', 'CalibrationBins', 'CalibrationError',
    'ClasswiseCalibrationError', 'CorrectnessAwareCalibrator', 'HessianOperator',
    'NegativeLogLikelihood', 'NeuralCollapse', 'ProbeComparison', 'ScalingFit',
    'TokenLossComparison', 'TokenLossSummary', 'adaptive_calibration_error',
    'annealing_areas', 'binary_exact_radius', 'brier_score', 'calibration_bins',
    'class_means', 'classwise_calibration_error', 'compare_probes', 'density_on_grid',
    'directional_logit_derivatives', 'ensemble_log_loss', 'expected_calibration_error',
    'filter_normalized_direction', 'fit_logistic_probe', 'fit_lr_annealing',
    'fit_power_law', 'fit_scaling_law', 'fit_temperature', 'frame_distance',
    'hessian_directions', 'hutchinson_trace', 'lanczos', 'lanczos_eigenvalues',
    'lla_criteria', 'logit_spread', 'loss_landscape', 'make_schedule',
    'maximum_calibration_error', 'negative_log_likelihood', 'neural_collapse',
    'optimal_mixture', 'output_logit_radius', 'plot_landscape', 'plot_spectral_density',
    'plot_token_loss_differences', 'predict_lr_annealing', 'reliability_diagram',
    'safe_step_radius', 'spectral_density', 'temperature_scale', 'top_eigenvalues',
    'view_features'
}


def test_the_package_surface_is_the_documented_one():
    assert set(diagnostics.__all__) == SURFACE
