r"""Few-pass softmax objectives with hand-written backward passes.

Eager PyTorch spends one full pass over the (K, C) matrix per elementwise op, forward and
backward; a chain such as ``(q * (log q - log_softmax(z))).sum(1)`` costs about ten. The
functions here compute the common per-row objectives from one ``softmax`` and one or two
row dot products, and return the gradient in two or three passes:

.. math::

    v_i = \sum_c q_{ic}\,\big(\mathrm{lse}(x_i) - x_{ic}\big) + b\sum_c p_{ic}\,a_{ic},
    \qquad x = s\,z,\quad p = \mathrm{softmax}(x)

    \frac{\partial v_i}{\partial z_{ic}} = s\Big[p_{ic}\big(\textstyle\sum_k q_{ik}
        + b\,a_{ic} - b\sum_k p_{ik} a_{ik}\big) - q_{ic}\Big]

``q`` (soft targets: cross-entropy to a distribution) and ``a`` (a per-class payoff whose
softmax expectation is taken) are constants: no gradient flows into them. The log-sum-exp
comes from the softmax itself: at the row's arg-max ``p = 1 / \sum_c e^{x_c - \max x}``
exactly, so ``lse = max x - log max p`` needs no further pass. The backward is first-order
only (``once_differentiable``: double backward raises instead of being silently wrong); its
correctness is checked with float64 ``gradcheck`` in ``tests/functional``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._core.autograd import first_order_only


def softmax_lse(x: Tensor) -> tuple[Tensor, Tensor]:
    """(softmax(x), logsumexp(x)) along dim 1 of a (K, C) tensor, from one softmax pass."""
    p = torch.softmax(x, dim=1)
    return p, x.amax(dim=1) - torch.log(p.amax(dim=1))


def rowdot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a_ic b_ic for (K, C) tensors, without a (K, C) intermediate."""
    out: Tensor = torch.linalg.vecdot(a, b)
    return out


def target_rowdot(q: Tensor, x: Tensor) -> Tensor:
    """sum_c q_ic x_ic with 0 * (-inf) = 0: a zero-probability target on a masked (-inf)
    logit contributes nothing. The masked pass runs only when the plain one gave NaN."""
    d = rowdot(q, x)
    if bool(torch.isnan(d).any()):
        d = rowdot(q, x.masked_fill(q == 0, 0.0))
    return d


class _SoftmaxObjective(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, z: Tensor, q: Tensor | None, a: Tensor | None, b: float, scale: float
    ) -> Tensor:
        x = z if scale == 1.0 else z * scale
        p, lse = softmax_lse(x)
        value = torch.zeros_like(lse)
        sq = va = None
        if q is not None:
            sq = q.sum(1)
            value = lse * sq - target_rowdot(q, x)
        if a is not None:
            va = rowdot(p, a)
            value = value + b * va
        ctx.scale, ctx.b = scale, b
        ctx.save_for_backward(p, q, a, sq, va)
        return value

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None, None, None]:
        p, q, a, sq, va = ctx.saved_tensors
        gs = (g * ctx.scale).unsqueeze(1)
        if a is None:
            grad = p * (gs * sq.unsqueeze(1))
        else:
            # p (sq + b a - b va) = b p (a - (va - sq / b))
            shift = va if sq is None else va - sq / ctx.b
            grad = (a - shift.unsqueeze(1)).mul_(p).mul_(gs * ctx.b)
        if q is not None:
            grad.addcmul_(q, gs, value=-1.0)
        return grad, None, None, None, None


def softmax_objective(
    z: Tensor,
    *,
    q: Tensor | None = None,
    a: Tensor | None = None,
    b: float = 1.0,
    scale: float = 1.0,
) -> Tensor:
    """Per-row ``sum_c q_c (lse(x) - x_c) + b sum_c softmax(x)_c a_c`` with x = scale * z.

    z: (K, C) logits (the only input that gets a gradient); q, a: (K, C) constants or None;
    b: a nonzero coefficient of the ``a`` term.
    ``softmax_objective(z, q=t)`` is the soft-target cross-entropy ``-(t * log_softmax(z)).sum(1)``.
    """
    if (q is None and a is None) or b == 0.0:
        raise TypeError("softmax_objective: internal error, give q or a (with b != 0)")
    out: Tensor = _SoftmaxObjective.apply(  # type: ignore[no-untyped-call]
        z,
        None if q is None else q.detach(),
        None if a is None else a.detach(),
        float(b),
        float(scale),
    )
    return out


class _SoftmaxKL(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: Tensor, v: Tensor, scale: float) -> Tensor:
        x = z if scale == 1.0 else z * scale
        w = v if scale == 1.0 else v * scale
        p, lse_x = softmax_lse(x)
        pv, lse_w = softmax_lse(w)
        d = x - w
        dot = rowdot(p, d)
        ctx.scale = scale
        ctx.save_for_backward(p, pv, d, dot)
        return dot - lse_x + lse_w

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, Tensor, None]:
        p, pv, d, dot = ctx.saved_tensors
        gs = (g * ctx.scale).unsqueeze(1)
        grad_z = (d - dot.unsqueeze(1)).mul_(p).mul_(gs)
        grad_v = (pv - p).mul_(gs)
        return grad_z, grad_v, None


def softmax_kl(z: Tensor, v: Tensor, *, scale: float = 1.0) -> Tensor:
    r"""Per-row KL(softmax(s z) || softmax(s v)) with gradients into both z and v.

    .. math:: \mathrm{KL} = \sum_c p_c (x_c - w_c) - \mathrm{lse}(x) + \mathrm{lse}(w),\quad
              \partial_x = p \odot (x - w - \mathrm{KL}'),\quad \partial_w = \mathrm{softmax}(w) - p

    with x = s z, w = s v and KL' = sum_c p_c (x_c - w_c).
    """
    out: Tensor = _SoftmaxKL.apply(z, v, float(scale))  # type: ignore[no-untyped-call]
    return out


class _SelfAdjustedEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: Tensor, shift: Tensor, scale: float) -> Tensor:
        x = z * scale
        p = torch.softmax(x, dim=1)
        u = x + shift
        # log_softmax(u) itself, not u - lse(u): at large |u| the difference of two large dot
        # products would cancel; log-probabilities stay small where p is large.
        r = torch.log_softmax(u, dim=1)
        pu = torch.softmax(u, dim=1)
        v = rowdot(p, r)
        ctx.scale = scale
        ctx.save_for_backward(p, r, v, pu)
        return v

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        p, r, v, pu = ctx.saved_tensors
        # d/dx = p (r - V + 1) - softmax(u)   (sum_c p_c = 1)
        grad = (r - (v - 1.0).unsqueeze(1)).mul_(p).sub_(pu).mul_((g * ctx.scale).unsqueeze(1))
        return grad, None, None


def softmax_cross_log_softmax(z: Tensor, shift: Tensor, *, scale: float) -> Tensor:
    r"""Per-row sum_c softmax(x)_c log_softmax(x + shift)_c with x = scale z, shift (C,) constant;
    the gradient flows through both factors.

    .. math:: V = \sum_c p_c r_c,\quad r = \log\mathrm{softmax}(x + s),\qquad
              \partial_x V = p \odot (r - V + 1) - \mathrm{softmax}(x + s)
    """
    out: Tensor = _SelfAdjustedEntropy.apply(z, shift.detach(), float(scale))  # type: ignore[no-untyped-call]
    return out


class _SparseSoftCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        p, lse = softmax_lse(z)
        sw = w.sum(1)
        ctx.save_for_backward(p, idx, w, sw)
        return lse * sw - (z.gather(1, idx) * w).sum(1)

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        p, idx, w, sw = ctx.saved_tensors
        grad = p * (g * sw).unsqueeze(1)
        return grad.scatter_add_(1, idx, w * -g.unsqueeze(1)), None, None


def sparse_soft_cross_entropy(z: Tensor, idx: Tensor, w: Tensor) -> Tensor:
    r"""Per-row soft-target CE ``sum_j w_j (lse(z) - z_{idx_j})`` for a target with few nonzero
    classes: idx (K, W) their class indices, w (K, W) their masses (constants).

    Equals ``-(t * log_softmax(z)).sum(1)`` for the dense t; one softmax forward, one pass
    backward (``softmax(z) * sum(w) - scatter(w)``), no dense target matrix.
    """
    out: Tensor = _SparseSoftCE.apply(z, idx, w.detach())  # type: ignore[no-untyped-call]
    return out
