"""Modules and registry entries for the distillation family (KD, PLD, multi-aspect KD).

These losses take row-aligned extra inputs (teacher logits, aspect logits), so their modules
are called as ``module(input, target, teacher_logits=...)``.
"""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import distillation as F
from ._factory import LogitLoss, logit_loss_module

# Kept for code written against the former distillation-only base: every generated module
# now takes its extra inputs through :class:`LogitLoss` itself.
ExtraInputLogitLoss = LogitLoss

_TEACHER = ("teacher_logits",)
_ASPECTS = ("aspect_logits", "aspect_targets")

KnowledgeDistillation = logit_loss_module(
    "KnowledgeDistillation", F.kd, F._check_kd, extra_inputs=_TEACHER
)
PlackettLuceDistillation = logit_loss_module(
    "PlackettLuceDistillation", F.pld, F._check_pld, extra_inputs=_TEACHER
)
MultiAspectDistillation = logit_loss_module(
    "MultiAspectDistillation", F.multi_aspect_kd, F._check_multi_aspect_kd, extra_inputs=_ASPECTS
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
    invalid_hyperparameters=({"alpha": -1.0}, {"ce_weight": -0.5}),
)
