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
