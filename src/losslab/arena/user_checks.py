"""The checks and fingerprints of the user's own data and model in a run configuration:
before any training the data is loaded and checked (:mod:`.user_data`) and the model runs one
forward pass (:mod:`.user_models`); :func:`with_fingerprints` adds the sha256 of the data and
of the model factory's source, which the run key then holds. A worker that finds them changed
refuses to train (the sweep was set up on other data)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .._core.errors import RuntimeFailure
from .data import DATASETS, LM_DATASETS, is_user_dataset
from .user_sources import DATA_SUFFIXES, is_callable_spec, is_data_file

if TYPE_CHECKING:
    from .config import RunConfig


def with_fingerprints(config: RunConfig) -> RunConfig:
    """``config`` with the sha256 of the user's data (``data_hash``) and of the model
    factory's module source (``model_hash``) filled in where they apply and are not set."""
    changes = {}
    if is_user_dataset(config.dataset) and not config.data_hash:
        from .user_data import load_user_data

        changes["data_hash"] = load_user_data(config.dataset, config.label_column,
                                              config.data_seed).sha256
    if is_callable_spec(config.model) and not config.model_hash:
        from .user_models import model_sha256

        changes["model_hash"] = model_sha256(config.model)
    return replace(config, **changes) if changes else config


def check_user_dataset(config: RunConfig) -> int:
    """Load and check the user's data (:mod:`.user_data`); return its number of classes. A
    ``data_hash`` that no longer matches means the data changed after the sweep was set up."""
    if not (is_data_file(config.dataset) or is_callable_spec(config.dataset)):
        builtin = ", ".join(map(repr, (*DATASETS, *LM_DATASETS)))
        raise ValueError(
            f"arena: dataset must be one of {builtin}, a data file ({', '.join(DATA_SUFFIXES)}) "
            f"or module:function, got {config.dataset!r}"
        )
    from .user_data import load_user_data

    data = load_user_data(config.dataset, config.label_column, config.data_seed)
    if config.data_hash and config.data_hash != data.sha256:
        raise RuntimeFailure(
            f"arena: dataset {data.name!r} changed since this run was set up (sha256 "
            f"{data.sha256[:12]}, expected {config.data_hash[:12]}); run the command again"
        )
    return data.num_classes


def check_user_model(config: RunConfig) -> None:
    """One forward pass of the run's model on two training samples (:mod:`.user_models`)."""
    import torch

    from .data import run_split
    from .user_models import check_model, model_sha256

    if config.model_hash and config.model_hash != model_sha256(config.model):
        raise RuntimeFailure(
            f"arena: the source of model {config.model!r} changed since this run was set up; "
            f"run the command again"
        )
    split = run_split(config)
    data_key = f"{config.dataset}|{config.label_column}|{config.num_samples}|{config.data_seed}"
    check_model(config, torch.from_numpy(split.x_train[:2]), split.num_classes, data_key)
