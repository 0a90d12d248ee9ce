"""Registered defaults cannot drift from the functions: every hyperparameter default a
registration lists (derived from the signature or spelled out by hand) must be the default of
a parameter of that loss's functional form, and the module must be constructible from them."""

import inspect

import pytest

from losslab._core.registry import list_losses

INFOS = list_losses()


@pytest.mark.parametrize("info", INFOS, ids=[i.name for i in INFOS])
def test_registered_defaults_are_the_function_defaults(info):
    params = inspect.signature(info.function).parameters
    for name, value in info.defaults.items():
        assert name in params, f"{info.name}: {name!r} is not a parameter of the function"
        default = params[name].default
        assert default is not inspect.Parameter.empty, f"{info.name}: {name!r} has no default"
        assert default is value or default == value, (
            f"{info.name}: registry says {name}={value!r}, the function {default!r}")
    info.module(**info.defaults)  # the module accepts (and validates) every default by name
