"""Modules and registry entries for the distributional value losses (HL-Gauss, two-hot).

Their targets are real values (kind ``"value"``), not class indices.
"""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import distributional as F
from ._factory import logit_loss_module

STOP_REGRESSING = Paper(
    "Stop Regressing: Training Value Functions via Classification for Scalable Deep RL",
    2024,
    authors="Farebrother et al.",
    arxiv="2403.03950",
)

HLGauss = logit_loss_module("HLGauss", F.hl_gauss, F._check_hl_gauss)
TwoHot = logit_loss_module("TwoHot", F.two_hot, F._check_two_hot)

_BAD_SUPPORT = ({"v_max": -20.0}, {"num_bins": 0})

register(
    "hl-gauss",
    family="distributional",
    paper=STOP_REGRESSING,
    function=F.hl_gauss,
    module=HLGauss,
    kind="value",
    invalid_hyperparameters=(*_BAD_SUPPORT, {"sigma_ratio": 0.0}),
)
register(
    "two-hot",
    family="distributional",
    paper=STOP_REGRESSING,
    function=F.two_hot,
    module=TwoHot,
    kind="value",
    invalid_hyperparameters=(*_BAD_SUPPORT, {"num_bins": 1}),
)
