"""``nn.Module`` forms of the losses: construct with hyperparameters, call like the function.

Every registered loss's module is exported here under its class name (``CrossEntropy``,
``GeneralizedCrossEntropy``, ...): the class is built, or named, where the loss is declared,
next to its function in ``losslab/functional/<kind>/<family>.py``. Besides them: the fused
linear losses (:class:`LinearCrossEntropy`, :class:`LinearLoss`), :class:`WithOPL` and the
base :class:`LogitLoss` of the generated logit-space modules.
"""

from typing import Any as _Any

from .. import functional as _functional  # noqa: F401  (declares, hence registers, every loss)
from .._core.loss_modules import LogitLoss
from .._core.registry import list_losses
from .embedding import WithOPL
from .fused import LinearCrossEntropy, LinearLoss

# Kept for code written against the former distillation-only base: every generated module
# takes its extra inputs through :class:`LogitLoss` itself.
ExtraInputLogitLoss = LogitLoss

_DECLARED = {info.module.__name__: info.module for info in list_losses()}
globals().update(_DECLARED)

__all__ = [
    "ExtraInputLogitLoss",
    "LinearCrossEntropy",
    "LinearLoss",
    "LogitLoss",
    "WithOPL",
    *sorted(_DECLARED),
]


def __getattr__(name: str) -> _Any:
    """Only reached for a name that is not here: say which module names exist."""
    raise AttributeError(
        f"module 'losslab.nn' has no attribute {name!r}; its loss modules: "
        f"{', '.join(sorted(_DECLARED))}"
    )
