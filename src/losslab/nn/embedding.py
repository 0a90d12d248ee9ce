"""Modules built on the embedding losses that are not registered losses themselves.

The embedding losses' own modules (``losslab.nn.MultiSimilarityLoss``, ...) are declared with
their functions in ``losslab/functional/embedding/``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._core.registry import loss_info
from .._core.validation import check_number


class WithOPL(nn.Module):
    """A classification loss plus λ·OPL on the penultimate features: ``CE + λ·OPL`` (λ = 1).

    Call as ``loss(logits, features, target)``; ``classification_loss`` is any
    ``(input, target)`` loss module (default: :class:`losslab.nn.CrossEntropy`).
    """

    def __init__(
        self,
        classification_loss: nn.Module | None = None,
        *,
        weight: float = 1.0,
        gamma: float = 0.5,
        negative_abs: str = "outside",
    ) -> None:
        super().__init__()
        self.weight = check_number("WithOPL", "weight", weight, low=0.0)
        self.classification_loss = (
            loss_info("ce").module() if classification_loss is None else classification_loss
        )
        self.opl = loss_info("opl").module(gamma=gamma, negative_abs=negative_abs)

    def forward(self, logits: Tensor, features: Tensor, target: Tensor) -> Tensor:
        base: Tensor = self.classification_loss(logits, target)
        regulariser: Tensor = self.opl(features, target)
        return base + self.weight * regulariser
