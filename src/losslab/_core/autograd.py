"""Guards for hand-written ``torch.autograd.Function`` backwards.

Several losses use a custom Function whose backward is written by hand (one softmax pass
instead of several). Such a backward is first order: differentiating it again would silently
drop terms. PyTorch's ``once_differentiable`` alone leaves the error to a later, confusing
"tensor appears to not have been used in the graph" (and ``allow_unused=True`` would then
return ``None``, a silent zero), so :func:`first_order_only` raises at once, naming the
loss function, when a backward runs with ``create_graph=True``.

A Function shared by several losses names the one it serves by receiving the public
function's name as a plain argument of ``.apply`` (a constant that ``torch.compile`` traces
through) and storing it as ``ctx.loss_name``. Not ``ctx.name``: the autograd node already has
a built-in ``name()`` method, which that attribute would read instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

BackwardFn = TypeVar("BackwardFn", bound=Callable[..., Any])


def first_order_only(backward: BackwardFn) -> BackwardFn:
    """Decorate a custom Function's ``backward`` so that a second derivative raises
    ``NotImplementedError`` instead of being silently wrong."""

    @functools.wraps(backward)
    def guarded(ctx: Any, *grads: Any) -> Any:
        if torch.is_grad_enabled():  # the engine enables grad mode only for create_graph=True
            name = getattr(ctx, "loss_name", None)
            if not isinstance(name, str):  # a Function that names no loss: its own class
                name = type(ctx).__name__.removesuffix("Backward").lstrip("_")
            raise NotImplementedError(
                f"losslab: {name} has a hand-written first-order backward; second derivatives "
                f"(create_graph=True: Hessian-vector products, gradient-norm penalties) are not "
                f"supported through this loss. cross_entropy supports them."
            )
        return backward(ctx, *grads)

    return guarded  # type: ignore[return-value]
