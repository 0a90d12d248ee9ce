"""The checks and fingerprints of the user's own data and model in a run configuration:
before any training the data is loaded and checked (:mod:`.user_data`) and the model runs one
forward pass (:mod:`.user_models`); :func:`fingerprints` are the sha256 of the data and of the
model factory's source, which the run key holds and each result reports (the sweep refuses a
result trained on data or a model that changed after its key was computed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data import DATASETS, LM_DATASETS, is_user_dataset
from .user_sources import DATA_SUFFIXES, is_callable_spec, is_data_file, split_label_column

if TYPE_CHECKING:
    from .config import RunConfig


def fingerprints(config: RunConfig) -> dict[str, str]:
    """The sha256 of the user's data (``data_sha256``: file bytes, or the arrays a function
    returns) and of the model factory's module source (``model_sha256``), where they apply;
    empty for built-in data and models."""
    out = {}
    if is_user_dataset(config.dataset):
        from .user_data import load_user_data

        out["data_sha256"] = load_user_data(config.dataset, config.data_seed).sha256
    if is_callable_spec(config.model):
        from .user_models import model_sha256

        out["model_sha256"] = model_sha256(config.model)
    return out


def check_user_dataset(config: RunConfig) -> int:
    """Load and check the user's data (:mod:`.user_data`); return its number of classes."""
    source, _ = split_label_column(config.dataset)
    if not (is_data_file(source) or is_callable_spec(source)):
        builtin = ", ".join(map(repr, (*DATASETS, *LM_DATASETS)))
        raise ValueError(
            f"arena: dataset must be one of {builtin}, a data file ({', '.join(DATA_SUFFIXES)}) "
            f"or module:function, got {config.dataset!r}"
        )
    from .user_data import load_user_data

    return load_user_data(config.dataset, config.data_seed).num_classes


def check_user_model(config: RunConfig) -> None:
    """One forward pass of the run's model on two training samples (:mod:`.user_models`)."""
    import torch

    from .data import run_split
    from .user_models import check_model

    split = run_split(config)
    data_key = f"{config.dataset}|{config.num_samples}|{config.data_seed}"
    check_model(config, torch.from_numpy(split.x_train[:2]), split.num_classes, data_key)
