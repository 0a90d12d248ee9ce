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


class LogitLoss(nn.Module):
    """Base of every generated logit-space loss module.

    Subclasses set ``function`` (the functional loss) and optionally ``check`` (validates
    hyperparameters at construction, so a bad value fails before any training starts).
    ``weight`` is stored as a buffer so that ``.to(device)`` moves it.
    """

    function: Callable[..., Tensor]
    check: HyperparameterCheck | None = None
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
        fn = type(self).function
        defaults = signature_defaults(fn)
        unknown = sorted(set(hyperparameters) - set(defaults))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unexpected hyperparameter "
                f"{', '.join(map(repr, unknown))}; it accepts {', '.join(defaults) or 'none'}"
            )
        self.hyperparameters = {**defaults, **hyperparameters}
        check = type(self).check
        if check is not None:
            check(**self.hyperparameters)
        self.ignore_index = check_ignore_index(type(self).__name__, ignore_index)
        self.reduction = check_reduction(type(self).__name__, reduction)
        self.register_buffer("weight", _class_weight(type(self).__name__, weight))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return type(self).function(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            **self.hyperparameters,
        )

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyperparameters.items()]
        items.append(f"reduction={self.reduction!r}")
        if self.ignore_index != -100:
            items.append(f"ignore_index={self.ignore_index}")
        return ", ".join(items)


def logit_loss_module(
    name: str,
    function: Callable[..., Tensor],
    check: HyperparameterCheck | None = None,
) -> type[LogitLoss]:
    """Create ``class <name>(LogitLoss)`` calling ``function``; its docstring points at it."""
    summary = (function.__doc__ or "").strip().splitlines()
    doc = (
        f"Module form of :func:`losslab.functional.{function.__name__}`.\n\n"
        f"{summary[0] if summary else ''}\n\n"
        f"Construct with the function's keyword arguments (hyperparameters, ``weight``,\n"
        f"``ignore_index``, ``reduction``); call with ``(input, target)``."
    )
    attrs = {
        "function": staticmethod(function),
        "check": None if check is None else staticmethod(check),
        "__doc__": doc,
        "__module__": "losslab.nn",
    }
    return type(name, (LogitLoss,), attrs)
