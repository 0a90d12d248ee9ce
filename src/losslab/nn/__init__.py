"""``nn.Module`` forms of the losses. Each is a thin wrapper: construct with hyperparameters,
call with ``(input, target)``; importing a family also registers its losses."""

from . import _logit_objectives
from ._factory import LogitLoss
from ._logit_objectives import *  # noqa: F403  (overlap, surrogates, distillation, ...)
from .embedding import MultiSimilarityLoss as MultiSimilarityLoss
from .embedding import MWLoss as MWLoss
from .embedding import NTXentLoss as NTXentLoss
from .embedding import OrthogonalProjectionLoss as OrthogonalProjectionLoss
from .embedding import ProtoTripletLoss as ProtoTripletLoss
from .embedding import WithOPL as WithOPL
from .fused import LinearCrossEntropy, LinearLoss
from .imbalance import FocalLoss
from .robust import (
    ALDRKL,
    LDRKL,
    ActivePassive,
    GeneralizedCrossEntropy,
    MeanAbsoluteError,
    NCEandMAE,
    NormalizedCrossEntropy,
    NormalizedGeneralizedCrossEntropy,
    ReverseCrossEntropy,
    SymmetricCrossEntropy,
)
from .softmax import CompSum, CrossEntropy, SphericalZLoss

__all__ = [
    "LogitLoss",
    "CrossEntropy",
    "CompSum",
    "SphericalZLoss",
    "GeneralizedCrossEntropy",
    "MeanAbsoluteError",
    "SymmetricCrossEntropy",
    "ReverseCrossEntropy",
    "NormalizedCrossEntropy",
    "NormalizedGeneralizedCrossEntropy",
    "ActivePassive",
    "NCEandMAE",
    "LDRKL",
    "ALDRKL",
    "FocalLoss",
    "LinearCrossEntropy",
    "LinearLoss",
    *_logit_objectives.__all__,
]
from .embedding_icnn import ICNNLoss as ICNNLoss  # noqa: E402  (registers "icnn")
