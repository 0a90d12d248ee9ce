"""The inputs of the binary forms: one logit per element and a target of the same shape.

A binary loss (``binary_dice``, ``binary_anyloss``, ...) scores each element of ``input`` on
its own, so ``target`` must have exactly ``input``'s shape; there is no class dimension to
flatten. What the target may hold (0/1 labels, probabilities) is the loss's own check.
"""

from __future__ import annotations

from ..._core.validation import check_tensor


def check_binary_logits(fn: str, input: object, target: object) -> None:
    """Check that ``input`` is a floating-point tensor of logits and ``target`` a tensor of the
    same shape.

    Raises ``TypeError`` (not a tensor; integer logits) or ``ValueError`` (shapes differ), each
    message starting with ``fn`` and naming the argument, what was received and what was
    expected.
    """
    x = check_tensor(fn, "input", input)
    t = check_tensor(fn, "target", target)
    if not x.is_floating_point():
        raise TypeError(f"{fn}: input must be a floating-point tensor (logits), got {x.dtype}")
    if tuple(t.shape) != tuple(x.shape):
        raise ValueError(
            f"{fn}: target must have the input's shape {tuple(x.shape)}, got {tuple(t.shape)}"
        )
