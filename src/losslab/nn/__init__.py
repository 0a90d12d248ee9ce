"""``nn.Module`` forms of the losses. Each is a thin wrapper: construct with hyperparameters,
call with ``(input, target)``; importing a family also registers its losses."""

from ._factory import LogitLoss
from .softmax import CrossEntropy

__all__ = [
    "LogitLoss",
    "CrossEntropy",
]
