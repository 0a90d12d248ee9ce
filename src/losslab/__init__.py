"""losslab: cross-entropy and the objectives that compete with it.

Public surface: :mod:`losslab.functional`, :mod:`losslab.nn`, :func:`get_loss`,
:func:`list_losses`, :func:`linear_cross_entropy` and :func:`linear_loss` (any per-row
registered logit loss fused with a linear head, without the (N, V) logits).
"""

from . import functional, nn
from ._core.registry import LossInfo, Paper, get_loss, list_losses
from .fused import linear_cross_entropy, linear_loss

__version__ = "0.1.0"

__all__ = [
    "LossInfo",
    "Paper",
    "__version__",
    "functional",
    "get_loss",
    "linear_cross_entropy",
    "linear_loss",
    "list_losses",
    "nn",
]
