"""Modules and registry entries for the softmax family."""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import softmax as F
from ._factory import logit_loss_module

CrossEntropy = logit_loss_module("CrossEntropy", F.cross_entropy, F._check_cross_entropy)

register(
    "ce",
    family="softmax",
    paper=Paper("Cross-entropy (with the PaLM z-loss option)", 2022, arxiv="2204.02311"),
    function=F.cross_entropy,
    module=CrossEntropy,
    soft_targets=True,
    invalid_hyperparameters=(
        {"label_smoothing": -0.1},
        {"label_smoothing": 1.5},
        {"temperature": 0.0},
        {"softcap": -1.0},
        {"z_loss": -1e-4},
    ),
)

CompSum = logit_loss_module("CompSum", F.comp_sum, F._check_comp_sum)

register(
    "comp-sum",
    family="softmax",
    paper=Paper(
        "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
        2023,
        authors="Mao, Mohri, Zhong",
        arxiv="2304.07288",
    ),
    function=F.comp_sum,
    module=CompSum,
    invalid_hyperparameters=({"tau": -0.5}, {"tau": float("nan")}),
)

SphericalZLoss = logit_loss_module("SphericalZLoss", F.spherical_z_loss, F._check_spherical_z_loss)

register(
    "z-loss",
    family="softmax",
    paper=Paper(
        "The Z-loss: a shift and scale invariant classification loss belonging to the "
        "Spherical Family",
        2016,
        authors="de Brébisson, Vincent",
        arxiv="1604.08859",
    ),
    function=F.spherical_z_loss,
    module=SphericalZLoss,
    invalid_hyperparameters=({"a": 0.0}, {"a": -1.0}, {"b": float("inf")}),
)
