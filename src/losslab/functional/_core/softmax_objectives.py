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

from ..._core.autograd import first_order_only
from ..._core.validation import values_checkable
from .autocast_off import outside_autocast
from .row_blocks import Grads, Needs, RowKernel, Rows, run_rows


def softmax_lse(x: Tensor) -> tuple[Tensor, Tensor]:
    """(softmax(x), logsumexp(x)) along dim 1 of a (K, C) tensor, from one softmax pass."""
    p = torch.softmax(x, dim=1)
    return p, x.amax(dim=1) - torch.log(p.amax(dim=1))


def rowdot(a: Tensor, b: Tensor) -> Tensor:
    """sum_c a_ic b_ic for (K, C) tensors, without a (K, C) intermediate.

    In the inputs' dtype even under ``torch.autocast``, which would run ``linalg.vecdot`` in
    bfloat16 / float16: losses are computed in float32 (docs/conventions.md)."""
    return outside_autocast(torch.linalg.vecdot, a, b)


def target_rowdot(q: Tensor, x: Tensor) -> Tensor:
    """sum_c q_ic x_ic with 0 * (±inf) = 0: a class without probability mass contributes
    nothing, even where x is infinite (a masked logit, or a difference of logits against a
    masked one). The masked pass runs only when the plain one gave NaN."""
    d = rowdot(q, x)
    if not values_checkable(d):  # traced or meta: the masked pass where the plain one is NaN
        return torch.where(torch.isnan(d), rowdot(q, x.masked_fill(q == 0, 0.0)), d)
    if bool(torch.isnan(d).any()):
        d = rowdot(q, x.masked_fill(q == 0, 0.0))
    return d


class _SoftmaxKL(RowKernel):
    def __init__(self, scale: float) -> None:
        self.scale = scale

    def _scaled(self, z: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.scale == 1.0:
            return z, v
        return z * self.scale, v * self.scale

    def forward_rows(self, inputs: Rows) -> tuple[Rows, Rows]:
        x, w = self._scaled(*inputs)
        p, lse_x = softmax_lse(x)
        _, lse_w = softmax_lse(w)
        dot = target_rowdot(p, x - w)
        return (dot - lse_x + lse_w,), (dot,)

    def backward_rows(self, inputs: Rows, saved: Rows, grads: Rows, needs: Needs) -> Grads:
        x, w = self._scaled(*inputs)
        (dot,) = saved
        gs = (grads[0] * self.scale).unsqueeze(1)
        p = torch.softmax(x, dim=1)
        grad_z = grad_v = None
        if needs[0]:
            d = torch.sub(x, w)
            if not values_checkable(d) or not bool(torch.isfinite(d).all()):
                d.masked_fill_(p == 0, 0.0)  # 0 * inf: a class without mass contributes 0
            grad_z = d.sub_(dot.unsqueeze(1)).mul_(p).mul_(gs)
        if needs[1]:
            grad_v = torch.softmax(w, dim=1).sub_(p).mul_(gs)
        return grad_z, grad_v


def softmax_kl(z: Tensor, v: Tensor, *, scale: float = 1.0) -> Tensor:
    r"""Per-row KL(softmax(s z) || softmax(s v)) with gradients into both z and v.

    .. math:: \mathrm{KL} = \sum_c p_c (x_c - w_c) - \mathrm{lse}(x) + \mathrm{lse}(w),\quad
              \partial_x = p \odot (x - w - \mathrm{KL}'),\quad \partial_w = \mathrm{softmax}(w) - p

    with x = s z, w = s v and KL' = sum_c p_c (x_c - w_c). Computed block by block
    (:mod:`.row_blocks`): only KL' is kept for the backward. A detached ``z`` (a teacher)
    gets no gradient and costs none.
    """
    (out,) = run_rows(_SoftmaxKL(float(scale)), z, v)
    return out


class _SymmetricCE(RowKernel):
    """Inputs (z, t): 1/2 [CE(softmax(t) -> softmax(z)) + CE(softmax(z) -> softmax(t))]."""

    def forward_rows(self, inputs: Rows) -> tuple[Rows, Rows]:
        z, t = inputs
        p, lse_z = softmax_lse(z)
        q, lse_t = softmax_lse(t)
        sq = q.sum(1)
        pt = rowdot(p, t)
        # -sum q log p = lse(z) sum q - sum q z;  -sum p log q = lse(t) - sum p t  (sum p = 1)
        return (0.5 * (lse_z * sq - target_rowdot(q, z) + lse_t - pt),), (sq, pt)

    def backward_rows(self, inputs: Rows, saved: Rows, grads: Rows, needs: Needs) -> Grads:
        z, t = inputs
        sq, pt = saved
        # d/dz = p (sum q) - q  +  p (sum_k p_k t_k - t)
        grad = torch.sub((sq + pt).unsqueeze(1), t).mul_(torch.softmax(z, dim=1))
        grad.sub_(torch.softmax(t, dim=1)).mul_((0.5 * grads[0]).unsqueeze(1))
        return grad, None


def student_teacher_symmetric_ce(z: Tensor, teacher_logits: Tensor) -> Tensor:
    r"""Per-row ½[−Σ_c q_c log p_c − Σ_c p_c log q_c], p = softmax(z), q = softmax(t) with the
    teacher t constant; block by block, nothing of size (K, C) kept.

    .. math:: \partial_z = \tfrac12\big[p\,(\textstyle\sum_c q_c) - q
              + p \odot (\textstyle\sum_c p_c t_c - t)\big]
    """
    (out,) = run_rows(_SymmetricCE(), z, teacher_logits.detach())
    return out


class _SelfAdjustedEntropy(RowKernel):
    """-o_i sum_c p_c log_softmax(x + shift)_c, x = scale z, o_i a row selection."""

    def __init__(
        self, shift: Tensor, scale: float, selection_temperature: float, threshold: float, known: int
    ) -> None:
        self.shift, self.scale = shift, scale
        self.selection_temperature, self.threshold, self.known = selection_temperature, threshold, known

    def forward_rows(self, inputs: Rows) -> tuple[Rows, Rows]:
        (z,) = inputs
        p_sel = torch.softmax(z / self.selection_temperature, 1)
        selected = p_sel.amax(1) >= self.threshold
        if self.known == 0:
            selected &= False
        elif self.known < z.shape[1]:
            # arg-max < known without the slow arg-max (Tensor.max(dim) is ~10x amax): the
            # first maximum of the probabilities lies among the known (leading) classes iff
            # their max is >= the others' max. On the probabilities, as the arg-max is
            # defined: rounding can tie classes whose logits differ.
            selected &= p_sel[:, : self.known].amax(1) >= p_sel[:, self.known :].amax(1)
        x = z * self.scale
        p = torch.softmax(x, dim=1)
        # log_softmax(u) itself, not u - lse(u): at large |u| the difference of two large dot
        # products would cancel; log-probabilities stay small where p is large.
        v = rowdot(p, torch.log_softmax(x.add_(self.shift), dim=1))
        return (torch.where(selected, -v, 0.0),), (v, selected)

    def backward_rows(self, inputs: Rows, saved: Rows, grads: Rows, needs: Needs) -> Grads:
        (z,) = inputs
        v, selected = saved
        traced = not values_checkable(z)
        if not traced and not bool(selected.any()):
            return (torch.zeros_like(z),)
        x = z * self.scale
        p = torch.softmax(x, dim=1)
        u = x.add_(self.shift)
        r = torch.log_softmax(u, dim=1)
        # d/dx V = p (r - V + 1) - softmax(u)   (sum_c p_c = 1); the loss is -V on selected rows.
        # softmax(u) rather than exp(r): exp is slow on the deeply negative log-probabilities.
        coef = torch.where(selected, grads[0] * -self.scale, 0.0).unsqueeze(1)
        grad = r.sub_((v - 1.0).unsqueeze(1)).mul_(p).sub_(torch.softmax(u, dim=1)).mul_(coef)
        if traced:
            grad = torch.where(selected.unsqueeze(1), grad, 0.0)
        elif not bool(selected.all()):
            grad[~selected] = 0.0  # exactly, even where a row's terms are not finite
        return (grad,)


def selected_self_adjusted_entropy(
    z: Tensor,
    shift: Tensor,
    *,
    scale: float,
    selection_temperature: float,
    threshold: float,
    known: int,
) -> Tensor:
    r"""Per-row -o_i V_i with V = sum_c softmax(x)_c log_softmax(x + shift)_c, x = scale z,
    shift (C,) constant, o_i = 1[max softmax(z / selection_temperature) >= threshold and its
    arg-max < known]; the gradient flows through both factors of V, unselected rows are exactly 0.

    .. math:: \partial_x V = p \odot (r - V + 1) - \mathrm{softmax}(x + s),\qquad
              r = \log\mathrm{softmax}(x + s)
    """
    kernel = _SelfAdjustedEntropy(
        shift.detach(), float(scale), float(selection_temperature), float(threshold), int(known)
    )
    (out,) = run_rows(kernel, z)
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
