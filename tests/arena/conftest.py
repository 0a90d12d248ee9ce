"""Shared tiny settings: a few hundred MNIST-1D samples and one or two epochs keep every
training test to a fraction of a second."""

import pytest

from losslab.arena.config import LossSpec, RunConfig

TINY = {"num_samples": 400, "epochs": 2, "batch_size": 64, "width": 8}


@pytest.fixture
def tiny_config():
    def make(loss="ce", **changes):
        spec = loss if isinstance(loss, LossSpec) else LossSpec.parse(loss)
        return RunConfig(loss=spec, **{**TINY, **changes})

    return make


@pytest.fixture
def tiny():
    return dict(TINY)


@pytest.fixture(autouse=True)
def fresh_code_version():
    """Each test reads the code version from the sources as they are now, as the worker
    processes it starts will: in a tree others edit while the suite runs, a version cached
    minutes earlier would (rightly) make the driver refuse its workers' results."""
    from losslab.arena.version import code_version, training_digest

    code_version.cache_clear()
    training_digest.cache_clear()
