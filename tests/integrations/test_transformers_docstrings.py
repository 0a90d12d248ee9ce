"""The docstring examples of the transformers integration run and print what they say."""

import doctest
import importlib

import pytest

pytest.importorskip("transformers")

MODULES = [
    "losslab.integrations.transformers.patch",
    "losslab.integrations.transformers.loss_functions",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
