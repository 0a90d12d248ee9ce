"""Readable reference of the fused loss: materialise the logits, call ``cross_entropy``.

Uses O(N·V) memory; it defines the semantics every other implementation must reproduce
and is what ``impl="reference"`` runs.
"""

from __future__ import annotations

from torch import Tensor

from ..functional.logits.softmax import cross_entropy


def reference_linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    shift: bool = False,
) -> Tensor:
    """``cross_entropy(hidden @ weight.T + bias, target, ...)`` with the fused loss's layout.

    ``hidden`` is (..., D), ``target`` (...); ``shift=True`` scores hidden[..., t, :]
    against target[..., t + 1] (the slicing copy the fused paths avoid).
    """
    if shift:
        hidden, target = hidden[..., :-1, :], target[..., 1:]
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + bias
    flat = logits.reshape(-1, weight.shape[0])
    loss = cross_entropy(
        flat,
        target.reshape(-1),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
    )
    return loss.reshape(target.shape) if reduction == "none" else loss
