"""Sweep settings from presets, TOML files and command-line flags, merged in that order (later
wins) and checked key by key.

A settings mapping has the grid keys ``losses`` (names, ``"name:k=v"`` strings or tables
``{name = "gce", q = 0.5}``), ``seeds`` (a count or a list), ``noise_rates``,
``calibrations`` (post-hoc calibrators, see :mod:`losslab.arena.calibrate`), ``cleaning``
(``none``, ``cleanlab``, ``cleanlab-relabel``, see :mod:`losslab.arena.cleaning`), ``variants``
(tables of run fields, optionally with their own ``noise_rates``, each a copy of the grid
over those fields: several datasets or noise kinds in one sweep), ``heads``
(``"linear"``, ``"harmonic"``, ``"harmonic:distance=cosine,n=2"`` or a table
``{name = "harmonic", distance = "cosine"}``), the executor keys ``workers``, ``executor``
(``process`` or ``ray``) and ``ray_address``, and any
:class:`~losslab.arena.config.RunConfig` field (``dataset``, ``label_column``, ``model``,
``noise``, ``epochs``, ``head_distance``, ...). Unknown keys are rejected by name.

The user's own data: ``dataset`` may be a data file or ``module:function``, and
``label_column`` names a table's label column (also per variant); it is folded into the run's
``dataset`` as ``path#column``. A relative file path in a TOML file is relative to the TOML
file's directory (elsewhere: to the current directory). Where the settings name no ``model``,
the user's data gets the ``mlp``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from .config import LossSpec, RunConfig
from .data import is_user_dataset
from .sweep import Sweep
from .user_sources import absolute_data_path, is_data_file, split_label_column, with_label_column

# The losses a sweep compares when the settings name none (the ``minimal`` preset's).
DEFAULT_LOSSES = ("ce", "focal", "gce", "sce", "nce+rce", "ldr-kl", "aldr-kl")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

GRID_KEYS = (
    "losses", "seeds", "noise_rates", "calibrations", "heads", "cleaning", "variants", "workers",
    "executor", "ray_address", "preset", "label_column",
)
BASE_KEYS = tuple(
    f.name
    for f in dataclasses.fields(RunConfig)
    if f.name not in ("loss", "seed", "noise_rate", "calibration", "head", "cleaning")
)
KNOWN_KEYS = GRID_KEYS + BASE_KEYS


def check_keys(settings: dict[str, Any], origin: str) -> None:
    for key in settings:
        if key not in KNOWN_KEYS:
            raise ValueError(
                f"arena: unknown configuration key {key!r} in {origin}; known keys: "
                f"{', '.join(KNOWN_KEYS)}"
            )


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a sweep file; a ``[sweep]`` table, if present, holds the settings."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"arena: config file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ValueError(f"arena: config file {str(p)!r} is not UTF-8 text (byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"arena: config file {str(p)!r} is not valid TOML ({err})") from err
    settings = data.get("sweep", data)
    if "sweep" in data:
        others = [k for k in data if k != "sweep"]
        if others:
            raise ValueError(
                f"arena: config file {str(p)!r} has a [sweep] table and also the top-level "
                f"key(s) {', '.join(map(repr, others))}, which would be ignored; move them "
                f"into [sweep]"
            )
        if not isinstance(settings, dict):
            raise ValueError(f"arena: config file {str(p)!r}: sweep must be a table, got "
                             f"{settings!r}")
    check_keys(settings, repr(str(p)))
    return _paths_relative_to(dict(settings), p.resolve().parent)


def _paths_relative_to(settings: dict[str, Any], base: Path) -> dict[str, Any]:
    """Data-file paths of ``dataset`` (also in variants) made absolute against ``base``."""
    def fix(table: dict[str, Any]) -> dict[str, Any]:
        value = table.get("dataset")
        if not isinstance(value, str):
            return table
        source, column = split_label_column(value)
        if not is_data_file(source):
            return table
        return {**table, "dataset": with_label_column(absolute_data_path(source, base), column)}

    settings = fix(settings)
    variants = settings.get("variants")
    if isinstance(variants, list):
        settings["variants"] = [fix(v) if isinstance(v, dict) else v for v in variants]
    return settings


def _loss_spec(entry: Any, index: int) -> LossSpec:
    if isinstance(entry, str):
        return LossSpec.parse(entry)
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        hp = {k: v for k, v in entry.items() if k != "name"}
        return LossSpec.of(entry["name"], hp)
    raise ValueError(
        f"arena: losses[{index}] must be a name, 'name:key=value' or a table with a 'name', "
        f"got {entry!r}"
    )


# Options of a ``heads`` entry -> RunConfig fields.
_HEAD_OPTIONS = {"distance": "head_distance", "n": "head_n"}


def _head_entry(entry: Any, index: int) -> tuple[tuple[str, Any], ...]:
    """``"harmonic:distance=cosine,n=2"`` or ``{name = "harmonic", distance = "cosine"}`` ->
    the RunConfig head fields it sets."""
    if isinstance(entry, str):
        spec = LossSpec.parse(entry)  # the same name:key=value syntax as losses
        name, options = spec.name, spec.hp
    elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
        name, options = entry["name"], {k: v for k, v in entry.items() if k != "name"}
    else:
        raise ValueError(
            f"arena: heads[{index}] must be a name, 'name:key=value' or a table with a 'name', "
            f"got {entry!r}"
        )
    unknown = [k for k in options if k not in _HEAD_OPTIONS]
    if unknown:
        raise ValueError(
            f"arena: heads[{index}] {entry!r} has unknown option {unknown[0]!r}; known options: "
            f"{', '.join(_HEAD_OPTIONS)}"
        )
    if name == "linear" and options:
        raise ValueError(f"arena: heads[{index}] {entry!r}: a linear head takes no options")
    fields = {"head": name, **{_HEAD_OPTIONS[k]: v for k, v in options.items()}}
    return tuple(sorted(fields.items()))


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"arena: seeds must be a positive count or a list, got {value!r}")
        return tuple(range(value))
    if isinstance(value, (list, tuple)) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in value
    ):
        return tuple(value)
    raise ValueError(f"arena: seeds must be a positive count or a list of integers, got {value!r}")


def _rates(value: Any) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"arena: noise_rates must be numbers, got {v!r}")
    return tuple(float(v) for v in values)


def _names(settings: dict[str, Any], key: str, default: str) -> tuple[str, ...]:
    """A grid key of method names (a name or a list of names)."""
    value = settings.get(key, [default])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"arena: {key} must be a list of names, got {value!r}")
    return tuple(value)


# What a variant may set: run fields, its own noise rates and label column.
_VARIANT_KEYS = (*BASE_KEYS, "noise_rates", "label_column")
_TABLE_SUFFIXES = (".csv", ".parquet")


def _with_label_column(fields: dict[str, Any], column: Any) -> dict[str, Any]:
    """``fields`` with ``label_column`` (its own, else ``column``) folded into its dataset as
    ``path#column``; fields that set no dataset are returned unchanged."""
    fields = dict(fields)
    column = fields.pop("label_column", column)
    if column is None or "dataset" not in fields:
        return fields
    dataset = fields["dataset"]
    if not isinstance(column, str) or not column.strip():
        raise ValueError(f"arena: label_column must name a column, got {column!r}")
    source = split_label_column(dataset)[0] if isinstance(dataset, str) else ""
    if not source.lower().endswith(_TABLE_SUFFIXES):
        raise ValueError(f"arena: label_column={column!r} applies to a .csv or .parquet "
                         f"dataset, got dataset {dataset!r}")
    return {**fields, "dataset": with_label_column(source, column.strip())}


# The model the user's data gets when the settings name none (the MLP takes any input shape).
USER_DATA_MODEL = "mlp"


def _user_data_without_model(fields: dict[str, Any]) -> bool:
    dataset = fields.get("dataset")
    return isinstance(dataset, str) and is_user_dataset(dataset) and "model" not in fields


def _variants(
    value: Any, model_set: bool, label_column: Any
) -> tuple[tuple[tuple[str, Any], ...], ...]:
    if value is None:
        return ((),)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"arena: variants must be a list of tables of run fields, got {value!r}")
    out = []
    for i, variant in enumerate(value):
        for key in variant:
            if key not in _VARIANT_KEYS:
                raise ValueError(
                    f"arena: variants[{i}] has unknown key {key!r}; a variant sets run fields "
                    f"({', '.join(BASE_KEYS)}) or noise_rates"
                )
        fields = _with_label_column(variant, label_column)
        if not model_set and _user_data_without_model(fields):
            fields["model"] = USER_DATA_MODEL
        if "noise_rates" in fields:
            fields["noise_rates"] = _rates(fields["noise_rates"])
        elif fields.get("noise") == "none":
            fields["noise_rates"] = (0.0,)
        out.append(tuple(sorted(fields.items())))
    return tuple(out)


def to_sweep(settings: dict[str, Any]) -> tuple[Sweep, int]:
    """Build the sweep and the worker count from merged settings."""
    check_keys(settings, "the settings")
    losses = settings.get("losses", list(DEFAULT_LOSSES))
    if isinstance(losses, str):
        losses = [losses]
    specs = tuple(_loss_spec(e, i) for i, e in enumerate(losses))
    workers = settings.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"arena: workers must be a positive integer, got {workers!r}")
    label_column = settings.get("label_column")
    variants = settings.get("variants")
    if label_column is not None and "dataset" not in settings and not (
            isinstance(variants, list) and any(isinstance(v, dict) and "dataset" in v
                                               for v in variants)):
        raise ValueError(f"arena: label_column={label_column!r} applies to a .csv or .parquet "
                         f"dataset, but no dataset is set (the default is 'mnist1d')")
    base = _with_label_column({k: settings[k] for k in BASE_KEYS if k in settings},
                              label_column)
    if _user_data_without_model(base):
        base["model"] = USER_DATA_MODEL
    calibrations = _names(settings, "calibrations", "none")
    cleanings = _names(settings, "cleaning", "none")
    if "cleaning_folds" in settings:
        # Checked even where no run cleans, so a bad K never passes silently.
        from .cleaning_checks import check_folds

        check_folds(settings["cleaning_folds"])
    heads = settings.get("heads", ["linear"])
    if isinstance(heads, (str, dict)):
        heads = [heads]
    if not isinstance(heads, (list, tuple)):
        raise ValueError(f"arena: heads must be a list of heads, got {heads!r}")
    sweep = Sweep(
        heads=tuple(_head_entry(h, i) for i, h in enumerate(heads)),
        calibrations=calibrations,
        cleanings=cleanings,
        variants=_variants(variants, "model" in settings, label_column),
        losses=specs,
        # Clean labels have one rate; 0.4 is the default of the noisy kinds.
        noise_rates=_rates(settings.get("noise_rates",
                                        0.0 if settings.get("noise") == "none" else 0.4)),
        seeds=_seeds(settings.get("seeds", 2)),
        base=base,
    )
    return sweep, workers


def executor_settings(settings: dict[str, Any]) -> tuple[str, str | None]:
    """The executor name and Ray address, checked (a missing ``ray`` fails here, before any
    training)."""
    from .executors import check_executor

    executor = check_executor(settings.get("executor", "process"))
    address = settings.get("ray_address")
    if address is not None and not isinstance(address, str):
        raise ValueError(f"arena: ray_address must be a string, got {address!r}")
    if address is not None and executor != "ray":
        raise ValueError(
            f"arena: ray_address is set ({address!r}) but executor is {executor!r}; "
            f"add executor = 'ray' (--executor ray)"
        )
    return executor, address
