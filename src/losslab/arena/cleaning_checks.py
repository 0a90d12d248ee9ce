"""What the arena checks about a run's label cleaning before any training (the method, the
fold count, an installed cleanlab, folds no larger than the smallest class), and cleanlab's
version for the run key. The cleaning itself is :mod:`.cleaning`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING

import numpy as np

from .data import training_set

if TYPE_CHECKING:
    from .config import RunConfig

CLEANINGS = ("none", "cleanlab", "cleanlab-relabel")
CLEANLAB_INSTALL = "pip install 'losslab[clean]'"


def cleanlab_version() -> str | None:
    """The installed cleanlab's version (part of a cleaned run's key), None without it."""
    try:
        return importlib.metadata.version("cleanlab")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_folds(value: object) -> None:
    """``cleaning_folds`` must be an integer K >= 2."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(
            f"arena: cleaning_folds must be an integer >= 2 (K-fold cross-validation needs "
            f"two folds), got {value!r}"
        )


def check_cleaning(config: RunConfig) -> None:
    """Reject, before any training, an unknown method, K < 2, a missing cleanlab, and K larger
    than the smallest class of the run's noisy training set (a stratified fold would miss it).
    """
    if config.cleaning not in CLEANINGS:
        raise ValueError(
            f"arena: cleaning must be one of {', '.join(map(repr, CLEANINGS))}, "
            f"got {config.cleaning!r}"
        )
    if config.cleaning == "none":
        return
    check_folds(config.cleaning_folds)
    if importlib.util.find_spec("cleanlab") is None:
        raise ValueError(
            f"arena: cleaning {config.cleaning!r} needs the optional dependency cleanlab, "
            f"which is not installed; install it with: {CLEANLAB_INSTALL}"
        )
    data = training_set(config)
    counts = np.bincount(data.y.numpy(), minlength=data.num_classes)
    smallest = int(np.argmin(counts))
    if config.cleaning_folds > counts[smallest]:
        raise ValueError(
            f"arena: cleaning_folds={config.cleaning_folds} is larger than the smallest class "
            f"of the noisy training set (class {smallest} has {counts[smallest]} samples); "
            f"lower cleaning_folds or use more samples"
        )
