"""The one factory of ``nn.Module`` forms: :func:`loss_module` builds the module class of a
functional loss from the function alone. No maths lives here.

A module's hyperparameters are the function's keyword-only arguments (defaults included) minus
the calling conventions (``weight``, ``ignore_index``, ``reduction``), the per-call inputs
(``extra_inputs`` such as ``teacher_logits``; an embedding loss's references and mined pairs).
:func:`losslab._core.registry.register` calls the factory when a loss is declared, so a loss's
defaults are written once: in its function's signature.

Three calling conventions, one base each:

* :class:`LogitLoss`: ``module(input, target, **extras)`` (logits, value targets);
* :class:`ModelLoss`: ``module(model, inputs, target)`` (losses that run the model themselves);
* :class:`EmbeddingLoss`: ``module(embeddings, labels, ref_embeddings=None, ref_labels=None,
  **inputs)``, like pytorch-metric-learning.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .validation import check_ignore_index, check_reduction

HyperparameterCheck = Callable[..., Any]

CONVENTION_ARGS = ("input", "target", "weight", "ignore_index", "reduction")
# Keyword arguments of every embedding loss that are per-call inputs, not hyperparameters.
EMBEDDING_CALL_INPUTS = ("ref_embeddings", "ref_labels", "pairs")


def signature_defaults(
    function: Callable[..., Any], extra_inputs: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The hyperparameters of a functional loss: its keyword-only arguments beyond the
    ``F.cross_entropy`` conventions and the ``extra_inputs`` passed at call time (or supplied
    otherwise), with their defaults."""
    skip = set(CONVENTION_ARGS) | set(extra_inputs)
    return {
        p.name: p.default
        for p in inspect.signature(function).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in skip
    }


def _run_check(check: HyperparameterCheck | None, values: dict[str, Any]) -> None:
    """Validate hyperparameters at construction, so a bad value fails before any training.
    ``check`` receives those values that it names (state such as a ``torch.Generator`` is not
    a checked hyperparameter)."""
    if check is None:
        return
    accepted = inspect.signature(check).parameters
    check(**{k: v for k, v in values.items() if k in accepted})


def _unknown_hyperparameters(owner: str, given: dict[str, Any], accepted: dict[str, Any]) -> None:
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise TypeError(
            f"{owner}: unexpected hyperparameter {', '.join(map(repr, unknown))}; "
            f"it accepts {', '.join(accepted) or 'none'}"
        )


def _class_weight(owner: str, weight: object) -> Tensor | None:
    """Check a class-weight vector at construction (its length is checked against C at the
    first call, when C is known). Lists and integer tensors become float32."""
    if weight is None:
        return None
    w = torch.as_tensor(weight)
    if not w.is_floating_point():
        w = w.to(torch.float32)
    if w.dim() != 1:
        raise ValueError(f"{owner}: weight must be 1-D, one entry per class, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{owner}: weight must be finite and non-negative, got {w.tolist()}")
    return w


class LossModule(nn.Module):
    """Hyperparameter handling shared by the logit-space and model loss modules.

    Subclasses set ``function`` (the functional loss), optionally ``check`` (validates
    hyperparameters at construction) and ``extra_inputs`` (keyword inputs given at call time,
    not hyperparameters). ``weight`` is stored as a buffer so that ``.to(device)`` moves it.
    """

    function: Callable[..., Tensor]
    check: HyperparameterCheck | None = None
    extra_inputs: tuple[str, ...] = ()
    weight: Tensor | None

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        **hyperparameters: Any,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        defaults = signature_defaults(type(self).function, type(self).extra_inputs)
        _unknown_hyperparameters(name, hyperparameters, defaults)
        self.hyperparameters = {**defaults, **hyperparameters}
        _run_check(type(self).check, self.hyperparameters)
        self.ignore_index = check_ignore_index(name, ignore_index)
        self.reduction = check_reduction(name, reduction)
        self.register_buffer("weight", _class_weight(name, weight))

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyperparameters.items()]
        items.append(f"reduction={self.reduction!r}")
        if self.ignore_index != -100:
            items.append(f"ignore_index={self.ignore_index}")
        return ", ".join(items)


class LogitLoss(LossModule):
    """Base of every generated logit-space loss module: ``module(input, target, **extras)``.

    ``extras`` are exactly the class's ``extra_inputs`` (row-aligned tensors such as
    ``teacher_logits``), passed by keyword; a missing or unexpected one is a TypeError.
    """

    def forward(self, input: Tensor, target: Tensor, **extras: Tensor) -> Tensor:
        expected = type(self).extra_inputs
        name = type(self).__name__
        missing = [n for n in expected if n not in extras]
        if missing:
            raise TypeError(
                f"{name}: forward needs the extra input(s) "
                f"{', '.join(missing)} as keyword arguments"
            )
        unexpected = sorted(set(extras) - set(expected))
        if unexpected:
            takes = ", ".join(expected) if expected else "no extra inputs"
            raise TypeError(
                f"{name}: forward got unexpected keyword argument(s) "
                f"{', '.join(unexpected)}; it takes {takes}"
            )
        return type(self).function(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            **self.hyperparameters,
            **extras,
        )


class ModelLoss(LossModule):
    """Base of the generated modules of losses that run the model themselves (kind
    ``"model"``, e.g. adversarial losses): ``module(model, inputs, target)``."""

    def forward(self, model: nn.Module, inputs: Tensor, target: Tensor) -> Tensor:
        return type(self).function(
            model,
            inputs,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            **self.hyperparameters,
        )


class EmbeddingLoss(nn.Module):
    """Base of the generated embedding-loss modules (kind ``"embeddings"``).

    Subclasses set ``function``; ``check`` validates the hyperparameters at construction.
    Construct with the function's keyword arguments (hyperparameters and ``reduction`` where
    the function has one; ``repr`` leaves out a ``process_group``); call with
    ``(embeddings, labels, ref_embeddings=None, ref_labels=None, **inputs)``, where ``inputs``
    are per-call arguments such as ``pairs=`` of the MS loss.
    """

    function: Callable[..., Tensor]
    check: HyperparameterCheck | None = None

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__()
        owner = type(self).__name__
        accepted = {
            p.name: p.default
            for p in inspect.signature(type(self).function).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in EMBEDDING_CALL_INPUTS
        }
        _unknown_hyperparameters(owner, hyperparameters, accepted)
        values = {**accepted, **hyperparameters}
        reduction = values.pop("reduction", None)
        self.reduction = None if reduction is None else check_reduction(owner, reduction)
        _run_check(type(self).check, values)
        self.hyperparameters = values

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        **inputs: Any,
    ) -> Tensor:
        extra = {} if self.reduction is None else {"reduction": self.reduction}
        return type(self).function(
            embeddings, labels, ref_embeddings=ref_embeddings, ref_labels=ref_labels,
            **inputs, **extra, **self.hyperparameters,
        )

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyperparameters.items() if k != "process_group"]
        if self.reduction is not None:
            items.append(f"reduction={self.reduction!r}")
        return ", ".join(items)


_BASES: dict[str, type[nn.Module]] = {"embeddings": EmbeddingLoss, "model": ModelLoss}
_CALLS = {
    "embeddings": "(embeddings, labels, ref_embeddings=None, ref_labels=None)",
    "model": "(model, inputs, target)",
}
_CONSTRUCT = {
    "embeddings": "hyperparameters, and ``reduction`` where the function has one",
}


def loss_module(
    name: str,
    function: Callable[..., Tensor],
    check: HyperparameterCheck | None = None,
    *,
    kind: str = "logits",
    extra_inputs: tuple[str, ...] = (),
    note: str = "",
) -> type[nn.Module]:
    """Create ``class <name>`` calling ``function``, on the base of its calling convention
    (``kind``: ``"embeddings"`` → :class:`EmbeddingLoss`, ``"model"`` → :class:`ModelLoss`,
    any other → :class:`LogitLoss`); its docstring points at the function, ``note`` is added.

    ``extra_inputs`` names a logit loss's row-aligned keyword inputs (e.g. ``teacher_logits``):
    they are not hyperparameters and are passed at call time,
    ``module(input, target, teacher_logits=t)``.
    """
    base = _BASES.get(kind, LogitLoss)
    # The function docstring's first paragraph (its first line can stop mid-sentence).
    summary = inspect.cleandoc(function.__doc__ or "").split("\n\n", 1)[0]
    call = _CALLS.get(kind) or "({})".format(
        ", ".join(["input", "target", *(f"{e}=..." for e in extra_inputs)])
    )
    construct = _CONSTRUCT.get(kind, "hyperparameters, ``weight``,\n``ignore_index``, ``reduction``")
    doc = (
        f"Module form of :func:`losslab.functional.{function.__name__}`.\n\n"
        f"{summary}\n\n"
        f"Construct with the function's keyword arguments ({construct}); call with "
        f"``{call}``."
    )
    if note:
        doc += f"\n\n{note}"
    attrs: dict[str, Any] = {
        "function": staticmethod(function),
        "check": None if check is None else staticmethod(check),
        "__doc__": doc,
        "__module__": "losslab.nn",
    }
    if base is not EmbeddingLoss:
        attrs["extra_inputs"] = tuple(extra_inputs)
    return type(name, (base,), attrs)
