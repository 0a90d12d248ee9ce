"""Every ``>>>`` example in ``src/losslab`` runs and prints what it shows.

Each module of the package is imported (found with :mod:`pkgutil`, so a new module is
covered without a list to maintain) and its doctests are run with ELLIPSIS and
NORMALIZE_WHITESPACE. A module whose optional dependency is not installed (transformers,
ray, triton, matplotlib, …) is skipped with the missing module named as the reason.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest
import torch

import losslab

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = [losslab.__name__]
    for info in pkgutil.walk_packages(losslab.__path__, prefix=f"{losslab.__name__}."):
        # A __main__ module runs its program when imported (python -m); it holds no examples.
        if info.name.rsplit(".", 1)[-1] != "__main__":
            names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:  # an optional dependency, not a losslab module
        if err.name is None or err.name.split(".")[0] == "losslab":
            raise
        pytest.skip(f"{name} needs the optional dependency {err.name!r}")


def test_every_module_is_walked() -> None:
    assert "losslab.functional.logits.overlap" in MODULES
    assert "losslab.fused.api" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    module = _import(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = finder.find(module, name)
    state = torch.get_rng_state()
    try:
        for test in tests:
            runner.run(test, out=_collect)
    finally:
        torch.set_rng_state(state)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(_REPORT) or f"{result.failed} doctest(s) failed in {name}"


_REPORT: list[str] = []


def _collect(text: str) -> None:
    _REPORT.append(text)


@pytest.fixture(autouse=True)
def _clear_report() -> None:
    _REPORT.clear()
