"""Modules and registry entries for the distillation family (KD, PLD, multi-aspect KD).

These losses take row-aligned extra inputs (teacher logits, aspect logits), so their modules
are called as ``module(input, target, teacher_logits=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .._core.registry import Paper, register, signature_defaults
from .._core.validation import check_ignore_index, check_reduction
from ..functional import distillation as F
from ._factory import HyperparameterCheck, LogitLoss


class ExtraInputLogitLoss(LogitLoss):
    """A :class:`LogitLoss` whose function also takes row-aligned keyword inputs
    (``extra_inputs``), given at call time: ``module(input, target, teacher_logits=t)``."""

    extra_inputs: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        **hyperparameters: Any,
    ) -> None:
        nn.Module.__init__(self)
        name = type(self).__name__
        # Extra inputs are keyword-only arguments without defaults, not hyperparameters.
        defaults = {
            k: v
            for k, v in signature_defaults(type(self).function).items()
            if k not in self.extra_inputs
        }
        unknown = sorted(set(hyperparameters) - set(defaults))
        if unknown:
            raise TypeError(
                f"{name}: unexpected hyperparameter {', '.join(map(repr, unknown))}; "
                f"it accepts {', '.join(defaults) or 'none'}"
            )
        self.hyperparameters = {**defaults, **hyperparameters}
        check = type(self).check
        if check is not None:
            check(**self.hyperparameters)
        self.ignore_index = check_ignore_index(name, ignore_index)
        self.reduction = check_reduction(name, reduction)
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def forward(self, input: Tensor, target: Tensor, **extras: Tensor) -> Tensor:
        missing = [n for n in self.extra_inputs if n not in extras]
        if missing:
            raise TypeError(
                f"{type(self).__name__}: forward needs the extra input(s) "
                f"{', '.join(missing)} as keyword arguments"
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


def extra_input_module(
    name: str,
    function: Callable[..., Tensor],
    check: HyperparameterCheck | None,
    extra_inputs: tuple[str, ...],
) -> type[ExtraInputLogitLoss]:
    """Create ``class <name>(ExtraInputLogitLoss)`` calling ``function``."""
    summary = (function.__doc__ or "").strip().splitlines()
    doc = (
        f"Module form of :func:`losslab.functional.{function.__name__}`.\n\n"
        f"{summary[0] if summary else ''}\n\n"
        f"Construct with the function's hyperparameters, ``weight``, ``ignore_index``,\n"
        f"``reduction``; call with ``(input, target, {', '.join(f'{e}=...' for e in extra_inputs)})``."
    )
    attrs = {
        "function": staticmethod(function),
        "check": None if check is None else staticmethod(check),
        "extra_inputs": extra_inputs,
        "__doc__": doc,
        "__module__": "losslab.nn",
    }
    return type(name, (ExtraInputLogitLoss,), attrs)


def hyperparameter_defaults(
    function: Callable[..., Tensor], extra_inputs: tuple[str, ...]
) -> dict[str, Any]:
    return {k: v for k, v in signature_defaults(function).items() if k not in extra_inputs}


_TEACHER = ("teacher_logits",)
_ASPECTS = ("aspect_logits", "aspect_targets")

KnowledgeDistillation = extra_input_module("KnowledgeDistillation", F.kd, F._check_kd, _TEACHER)
PlackettLuceDistillation = extra_input_module(
    "PlackettLuceDistillation", F.pld, F._check_pld, _TEACHER
)
MultiAspectDistillation = extra_input_module(
    "MultiAspectDistillation", F.multi_aspect_kd, F._check_multi_aspect_kd, _ASPECTS
)

register(
    "kd",
    family="distillation",
    paper=Paper(
        "Distilling the Knowledge in a Neural Network",
        2015,
        authors="Hinton, Vinyals, Dean",
        arxiv="1503.02531",
    ),
    function=F.kd,
    module=KnowledgeDistillation,
    extra_inputs=_TEACHER,
    defaults=hyperparameter_defaults(F.kd, _TEACHER),
    invalid_hyperparameters=({"temperature": 0.0}, {"ce_weight": -1.0}),
)
register(
    "pld",
    family="distillation",
    paper=Paper(
        "PLD: A Choice-Theoretic List-Wise Knowledge Distillation",
        2025,
        authors="Bassam, Zhu, Bian",
        arxiv="2506.12542",
    ),
    function=F.pld,
    module=PlackettLuceDistillation,
    extra_inputs=_TEACHER,
    defaults=hyperparameter_defaults(F.pld, _TEACHER),
    invalid_hyperparameters=({"teacher_temperature": -1.0},),
)
register(
    "multi-aspect-kd",
    family="distillation",
    paper=Paper(
        "Multi-aspect Knowledge Distillation with Large Language Model",
        2025,
        authors="Lee, Bang, Kwon, Kim",
        arxiv="2501.13341",
    ),
    function=F.multi_aspect_kd,
    module=MultiAspectDistillation,
    extra_inputs=_ASPECTS,
    defaults=hyperparameter_defaults(F.multi_aspect_kd, _ASPECTS),
    invalid_hyperparameters=({"alpha": -1.0}, {"ce_weight": -0.5}),
)
