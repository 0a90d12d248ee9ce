"""Modules (and registry entries) of the later logit-space objective families (overlap, metric surrogates,
distillation, confidence, consistency, distributional, adversarial), so that
``nn/__init__`` needs one import line for all of them."""

from .adversarial import SmoothAdversarialCompSum
from .confidence import CorrectnessAwareCalibration, DirectCoverage, RewardShapedNextToken
from .consistency import (
    ConfidentBinaryCrossEntropy,
    DualViewKL,
    LocalEntropyRegularization,
    SymmetricCrossEntropyConsistency,
)
from .distillation import (
    ExtraInputLogitLoss,
    KnowledgeDistillation,
    MultiAspectDistillation,
    PlackettLuceDistillation,
)
from .distributional import HLGauss, TwoHot
from .overlap import Dice, DiceBatch, SelfAdjustingDice, Tversky, TverskyBatch
from .surrogates import AnyLossAccuracy, AnyLossBalancedAccuracy, AnyLossFBeta, AnyLossGMean

__all__ = [
    "AnyLossAccuracy",
    "AnyLossBalancedAccuracy",
    "AnyLossFBeta",
    "AnyLossGMean",
    "ConfidentBinaryCrossEntropy",
    "CorrectnessAwareCalibration",
    "Dice",
    "DiceBatch",
    "DirectCoverage",
    "DualViewKL",
    "ExtraInputLogitLoss",
    "HLGauss",
    "KnowledgeDistillation",
    "LocalEntropyRegularization",
    "MultiAspectDistillation",
    "PlackettLuceDistillation",
    "RewardShapedNextToken",
    "SelfAdjustingDice",
    "SmoothAdversarialCompSum",
    "SymmetricCrossEntropyConsistency",
    "Tversky",
    "TverskyBatch",
    "TwoHot",
]
