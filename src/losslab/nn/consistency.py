"""Modules and registry entries for the consistency family (RMT SCE, LegoGCD LER / DKL,
TraCoCo CBC)."""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import consistency as F
from ._factory import logit_loss_module

_TEACHER = ("teacher_logits",)
_VIEW = ("view_logits",)

SymmetricCrossEntropyConsistency = logit_loss_module(
    "SymmetricCrossEntropyConsistency", F.sce_consistency, None, extra_inputs=_TEACHER
)
LocalEntropyRegularization = logit_loss_module("LocalEntropyRegularization", F.ler, F._check_ler)
DualViewKL = logit_loss_module("DualViewKL", F.dkl, F._check_dkl, extra_inputs=_VIEW)
ConfidentBinaryCrossEntropy = logit_loss_module(
    "ConfidentBinaryCrossEntropy", F.cbc, F._check_cbc, extra_inputs=_TEACHER
)

LEGOGCD = Paper(
    "Solving the Catastrophic Forgetting Problem in Generalized Category Discovery",
    2024,
    authors="Cao, Zheng, Wang, Yang",
    arxiv="2501.05272",
)

register(
    "sce-consistency",
    family="consistency",
    paper=Paper(
        "Robust Mean Teacher for Continual and Gradual Test-Time Adaptation",
        2023,
        authors="Döbler, Marsden, Yang",
        arxiv="2211.13081",
    ),
    function=F.sce_consistency,
    module=SymmetricCrossEntropyConsistency,
    extra_inputs=_TEACHER,
)
register(
    "ler",
    family="consistency",
    paper=LEGOGCD,
    function=F.ler,
    module=LocalEntropyRegularization,
    invalid_hyperparameters=(
        {"threshold": 1.5},
        {"temperature": 0.0},
        {"selection_temperature": -1.0},
        {"num_known": -2},
    ),
)
register(
    "dkl",
    family="consistency",
    paper=LEGOGCD,
    function=F.dkl,
    module=DualViewKL,
    extra_inputs=_VIEW,
    invalid_hyperparameters=({"temperature": 0.0},),
)
register(
    "cbc",
    family="consistency",
    paper=Paper(
        "Translation Consistent Semi-supervised Segmentation for 3D Medical Images",
        2022,
        authors="Liu, Wang, Chen, Liu, Pu, Yang, Carneiro",
        arxiv="2203.14523",
    ),
    function=F.cbc,
    module=ConfidentBinaryCrossEntropy,
    extra_inputs=_TEACHER,
    batch_level=True,
    invalid_hyperparameters=(
        {"positive_threshold": 1.5},
        {"negative_threshold": -0.1},
        {"negatives": "some"},
    ),
)
