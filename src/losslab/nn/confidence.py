"""Modules and registry entries for the confidence family (DCO, reward-shaped NTP, CA calib)."""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import confidence as F
from ._factory import logit_loss_module

DirectCoverage = logit_loss_module("DirectCoverage", F.dco, F._check_dco)
RewardShapedNextToken = logit_loss_module(
    "RewardShapedNextToken", F.ntp_reward, F._check_ntp_reward
)
CorrectnessAwareCalibration = logit_loss_module(
    "CorrectnessAwareCalibration", F.ca_calib, F._check_ca_calib
)

register(
    "dco",
    family="confidence",
    paper=Paper(
        "Rethinking Fine-Tuning when Scaling Test-Time Compute: Limiting Confidence Improves "
        "Mathematical Reasoning",
        2025,
        authors="Chen, Raventós, Cheng, Ganguli, Druckmann",
        arxiv="2502.07154",
    ),
    function=F.dco,
    module=DirectCoverage,
    invalid_hyperparameters=({"n": 0.5},),
)
register(
    "ntp-reward",
    family="confidence",
    paper=Paper(
        "Diversity or Precision? A Deep Dive into Next Token Prediction",
        2025,
        authors="Wu et al.",
        arxiv="2512.22955",
    ),
    function=F.ntp_reward,
    module=RewardShapedNextToken,
    invalid_hyperparameters=({"top_k": -1}, {"prob_floor": 0.0}, {"beta": float("nan")}),
)
register(
    "ca-calib",
    family="confidence",
    paper=Paper(
        "Beyond Calibration: Correctness-aware post-hoc calibration",
        2024,
        authors="Liu, Wang, Zou, Zou, Zheng",
        arxiv="2404.13016",
    ),
    function=F.ca_calib,
    module=CorrectnessAwareCalibration,
    batch_level=True,
    invalid_hyperparameters=({"balancing": "class"},),
)
