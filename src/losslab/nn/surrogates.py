"""Modules and registry entries for the metric-surrogate family (AnyLoss)."""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import surrogates as F
from ._factory import logit_loss_module

ANYLOSS_PAPER = Paper(
    "AnyLoss: Transforming Classification Metrics into Loss Functions",
    2024,
    authors="Han, Moniz, Chawla",
    arxiv="2405.14745",
)

AnyLossAccuracy = logit_loss_module("AnyLossAccuracy", F.anyloss_acc, F._check_anyloss_acc)
AnyLossFBeta = logit_loss_module("AnyLossFBeta", F.anyloss_fbeta, F._check_anyloss_fbeta)
AnyLossGMean = logit_loss_module("AnyLossGMean", F.anyloss_gmean, F._check_anyloss_gmean)
AnyLossBalancedAccuracy = logit_loss_module(
    "AnyLossBalancedAccuracy", F.anyloss_bacc, F._check_anyloss_bacc
)

_BAD = ({"amplifier": 0.0}, {"smooth": -1.0}, {"activation": "relu"})

for _name, _fn, _module, _extra in [
    ("anyloss-acc", F.anyloss_acc, AnyLossAccuracy, ()),
    ("anyloss-fbeta", F.anyloss_fbeta, AnyLossFBeta, ({"beta": 0.0},)),
    ("anyloss-gmean", F.anyloss_gmean, AnyLossGMean, ()),
    ("anyloss-bacc", F.anyloss_bacc, AnyLossBalancedAccuracy, ()),
]:
    register(
        _name,
        family="surrogates",
        paper=ANYLOSS_PAPER,
        function=_fn,
        module=_module,
        batch_level=True,
        invalid_hyperparameters=(*_BAD, *_extra),
    )
