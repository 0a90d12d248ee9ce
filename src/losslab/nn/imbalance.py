"""Module and registry entry for the focal loss."""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import imbalance as F
from ._factory import logit_loss_module

FocalLoss = logit_loss_module("FocalLoss", F.focal_loss, F._check_focal_loss)

register(
    "focal",
    family="imbalance",
    paper=Paper(
        "Focal Loss for Dense Object Detection",
        2017,
        authors="Lin, Goyal, Girshick, He, Dollár",
        arxiv="1708.02002",
    ),
    function=F.focal_loss,
    module=FocalLoss,
    invalid_hyperparameters=({"gamma": -1.0}, {"alpha": [1.0, -0.5, 1.0]}),
)
