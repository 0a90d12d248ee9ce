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


def test_the_sub_packages_export_part_of_the_package_surface():
    assert set(calibration.__all__) | set(scaling.__all__) <= set(diagnostics.__all__)
    assert {"expected_calibration_error", "fit_temperature", "fit_scaling_law",
            "safe_step_radius", "NeuralCollapse", "TokenLossComparison"} <= set(diagnostics.__all__)
