"""Builds the thin ``nn.Module`` wrapper of a functional loss. No maths lives here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .._core.registry import signature_defaults
from .._core.validation import check_ignore_index, check_reduction

HyperparameterCheck = Callable[..., Any]


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
    """Hyperparameter handling shared by every generated loss module.

    Subclasses set ``function`` (the functional loss), optionally ``check`` (validates
    hyperparameters at construction, so a bad value fails before any training starts),
    ``extra_inputs`` (keyword inputs given at call time, not hyperparameters) and
    ``unchecked`` (hyperparameters stored but not passed to ``check``, e.g. a generator).
    ``weight`` is stored as a buffer so that ``.to(device)`` moves it.
    """

    function: Callable[..., Tensor]
    check: HyperparameterCheck | None = None
    extra_inputs: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()
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
        unknown = sorted(set(hyperparameters) - set(defaults))
        if unknown:
            raise TypeError(
                f"{name}: unexpected hyperparameter "
                f"{', '.join(map(repr, unknown))}; it accepts {', '.join(defaults) or 'none'}"
            )
        self.hyperparameters = {**defaults, **hyperparameters}
        check = type(self).check
        if check is not None:
            skip = type(self).unchecked
            check(**{k: v for k, v in self.hyperparameters.items() if k not in skip})
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


def logit_loss_module(
    name: str,
    function: Callable[..., Tensor],
    check: HyperparameterCheck | None = None,
    extra_inputs: tuple[str, ...] = (),
) -> type[LogitLoss]:
    """Create ``class <name>(LogitLoss)`` calling ``function``; its docstring points at it.

    ``extra_inputs`` names the function's row-aligned keyword inputs (e.g. ``teacher_logits``):
    they are not hyperparameters and are passed at call time,
    ``module(input, target, teacher_logits=t)``.
    """
    summary = (function.__doc__ or "").strip().splitlines()
    call = ", ".join(["input", "target", *(f"{e}=..." for e in extra_inputs)])
    doc = (
        f"Module form of :func:`losslab.functional.{function.__name__}`.\n\n"
        f"{summary[0] if summary else ''}\n\n"
        f"Construct with the function's keyword arguments (hyperparameters, ``weight``,\n"
        f"``ignore_index``, ``reduction``); call with ``({call})``."
    )
    attrs = {
        "function": staticmethod(function),
        "check": None if check is None else staticmethod(check),
        "extra_inputs": tuple(extra_inputs),
        "__doc__": doc,
        "__module__": "losslab.nn",
    }
    return type(name, (LogitLoss,), attrs)
