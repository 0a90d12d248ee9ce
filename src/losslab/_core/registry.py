"""The loss registry: the one place the CLI, the arena and the conformance suite look up losses.

A loss is declared once, with :func:`register` right after its function in its family file
(``losslab/functional/<kind>/<family>.py``): the call records it and builds its ``nn.Module``
class, which :mod:`losslab.nn` exports. ``get_loss`` builds that module with hyperparameters,
``list_losses`` returns :class:`LossInfo` records.

The registry imports nothing of losslab: the package root imports every module that registers
a loss, and Python imports ``losslab`` before any of its submodules, so the registry is full
whenever this module can be reached.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .loss_modules import EMBEDDING_CALL_INPUTS, loss_module, signature_defaults


@dataclass(frozen=True)
class Paper:
    title: str
    year: int
    authors: str = ""
    arxiv: str = ""

    def __str__(self) -> str:
        return f"{self.title} ({self.year})"


@dataclass(frozen=True)
class LossInfo:
    """What the library knows about one registered loss.

    Attributes:
        name: short registry name (``"gce"``).
        family: module family (``"softmax"``, ``"robust"``, ...).
        paper: the paper it comes from.
        function: the functional form.
        module: the ``nn.Module`` class.
        defaults: hyperparameter defaults, read from the function's signature.
        kind: what the loss consumes: ``"logits"`` (``(input, target)`` like
            ``F.cross_entropy``) or another kind such as ``"embeddings"``.
        soft_targets: whether probability targets shaped like the input are accepted.
        invalid_hyperparameters: example hyperparameter settings that must be rejected with a
            ``ValueError`` (the conformance suite tries each).
        identities: free-form notes on identities the tests check.
        extra_inputs: names of extra per-sample forward arguments (e.g. ``sample_ids``).
        batch_level: the loss couples the rows of a batch (e.g. a soft confusion matrix), so
            it is not a mean of per-row terms; ``reduction="none"`` is not per-row for it.
        summary: first line of the function's docstring.
    """

    name: str
    family: str
    paper: Paper
    function: Callable[..., Any]
    module: type[nn.Module]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "logits"
    soft_targets: bool = False
    invalid_hyperparameters: tuple[Mapping[str, Any], ...] = ()
    extra_inputs: tuple[str, ...] = ()
    batch_level: bool = False
    summary: str = ""


_REGISTRY: dict[str, LossInfo] = {}


def register(
    function: Callable[..., Any],
    *,
    name: str,
    family: str,
    paper: Paper,
    module: str | type[nn.Module],
    check: Callable[..., Any] | None = None,
    kind: str = "logits",
    soft_targets: bool = False,
    invalid_hyperparameters: tuple[Mapping[str, Any], ...] = (),
    extra_inputs: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    batch_level: bool = False,
    note: str = "",
) -> type[nn.Module]:
    """Declare a loss, right after its function in its family file: record it under ``name``
    and return its ``nn.Module`` class, which :mod:`losslab.nn` exports.

    ``module`` is the class name to generate (``"CrossEntropy"``, by
    :func:`losslab._core.loss_modules.loss_module` from ``function``, validated at construction
    by ``check``) or a hand-written class, for modules with behaviour of their own (state,
    buffers). The record's ``defaults`` are read from the function's signature: its keyword-only
    arguments minus the calling conventions, the per-call ``extra_inputs`` and the ``options``:
    keyword arguments that the module accepts or supplies but that are not hyperparameters of
    the loss (a process group, a memory chunk size, a state the module owns). ``note`` is added
    to a generated module's docstring; the other arguments are :class:`LossInfo`'s fields.
    """
    if name in _REGISTRY:
        raise ValueError(f"register: a loss named {name!r} is already registered")
    if isinstance(module, str):
        module = loss_module(module, function, check, kind=kind, extra_inputs=extra_inputs,
                             note=note)
    elif check is not None or note:
        raise TypeError(f"register: {name!r} has a hand-written module class; it checks its own "
                        "hyperparameters and has its own docstring (pass no check= or note=)")
    skipped = extra_inputs + options + (EMBEDDING_CALL_INPUTS if kind == "embeddings" else ())
    doc = (function.__doc__ or "").strip().splitlines()
    _REGISTRY[name] = LossInfo(
        name=name,
        family=family,
        paper=paper,
        function=function,
        module=module,
        defaults=signature_defaults(function, skipped),
        kind=kind,
        soft_targets=soft_targets,
        invalid_hyperparameters=invalid_hyperparameters,
        extra_inputs=extra_inputs,
        batch_level=batch_level,
        summary=doc[0] if doc else "",
    )
    return module


def list_losses(kind: str | None = None, family: str | None = None) -> list[LossInfo]:
    """All registered losses, sorted by family then name, optionally filtered."""
    for label, value, known in (
        ("kind", kind, {i.kind for i in _REGISTRY.values()}),
        ("family", family, {i.family for i in _REGISTRY.values()}),
    ):
        if value is not None and value not in known:
            raise ValueError(
                f"list_losses: unknown {label} {value!r}; known: {', '.join(sorted(known))}"
            )
    infos = sorted(_REGISTRY.values(), key=lambda i: (i.family, i.name))
    return [
        i for i in infos if (kind is None or i.kind == kind) and (family is None or i.family == family)
    ]


def loss_info(name: str) -> LossInfo:
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"get_loss: unknown loss {name!r}; registered losses: {known}")
    return _REGISTRY[name]


def get_loss(name: str, **hyperparameters: Any) -> nn.Module:
    """Build the module of a registered loss: ``get_loss("gce", q=0.5)``.

    Unknown names and unknown or out-of-domain hyperparameters raise at once.
    """
    info = loss_info(name)
    allowed = set(info.defaults) | {"weight", "ignore_index", "reduction"}
    init_params = inspect.signature(info.module.__init__).parameters.values()
    allowed |= {
        p.name for p in init_params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    unknown = sorted(set(hyperparameters) - allowed)
    if unknown:
        raise TypeError(
            f"get_loss: loss {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"it accepts {', '.join(sorted(allowed))}"
        )
    return info.module(**hyperparameters)
