"""Softmax cross-entropy and its direct relatives.

Conventions for every loss in :mod:`losslab.functional` (``F.cross_entropy``'s, plus two
fixes): logits ``input`` of shape (N, C) or (N, C, d1, ...), class-index ``target`` of shape
(N,) or (N, d1, ...); keyword-only ``weight`` (C,), ``ignore_index``, ``reduction``; the
weighted mean is ``sum w_y l / sum w_y``; an empty or fully ignored batch gives 0 (not NaN)
under ``mean``; half precision is computed and returned in float32.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from ..._core.logit_loss import logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import check_float32_number, check_number
from .._core.power_loss import comp_sum_rows


def _check_cross_entropy(
    *, label_smoothing: float, temperature: float, softcap: float | None, z_loss: float
) -> None:
    fn = "cross_entropy"
    check_number(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    if softcap is not None:
        check_number(fn, "softcap", softcap, low=0.0, low_open=True)
    check_number(fn, "z_loss", z_loss, low=0.0)


def transform_logits(z: Tensor, *, temperature: float = 1.0, softcap: float | None = None) -> Tensor:
    """Apply the optional logit transforms in the library's order: soft-capping
    ``c * tanh(z / c)`` first (a property of the model's output), then ``z / temperature``."""
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    if temperature != 1.0:
        z = z / temperature
    return z


def cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    softcap: float | None = None,
    z_loss: float = 0.0,
) -> Tensor:
    r"""Softmax cross-entropy, equal to ``F.cross_entropy`` with its options, plus three extras.

    .. math::

        z' = \mathrm{softcap}(z) / T,\qquad
        \ell = (1-\varepsilon)\,(-\log p_y) + \frac{\varepsilon}{C}\sum_c -\log p_c
               + c_z\,\big(\log\textstyle\sum_c e^{z'_c}\big)^2,\quad p = \mathrm{softmax}(z')

    where ``softcap(z) = c·tanh(z/c)`` (Gemma-2 style; off when ``softcap=None``).
    ``z_loss`` is the PaLM / T5X log-partition penalty ``c_z·LSE²`` (Chowdhery et al. 2022),
    *not* the de Brébisson & Vincent Z-loss (that one is :func:`spherical_z_loss`).
    With class weights, the smoothing term weighs class c by ``w_c`` and the ``z_loss`` term
    by ``w_y``, and ``mean`` divides by ``sum w_y`` — exactly PyTorch's convention.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) / (N, d1, ...), or class probabilities shaped like
            ``input`` (then ``ignore_index`` does not apply and ``mean`` divides by the number
            of rows).
        weight: optional (C,) class weights.
        ignore_index: target value whose positions contribute zero loss and zero gradient.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        label_smoothing: ε in [0, 1].
        temperature: T > 0 dividing the logits.
        softcap: c > 0 or ``None``.
        z_loss: c_z ≥ 0.

    Example:
        >>> import torch, losslab.functional as LF
        >>> round(LF.cross_entropy(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])).item(), 6)
        0.407606

    Reference: the PaLM z-loss, Chowdhery et al., *PaLM*, 2022 (arXiv 2204.02311).
    """
    _check_cross_entropy(
        label_smoothing=label_smoothing, temperature=temperature, softcap=softcap, z_loss=z_loss
    )
    # Python floats: a 1-element tensor hyperparameter must not carry a gradient into the loss.
    eps, temp, cz = float(label_smoothing), float(temperature), float(z_loss)
    cap = None if softcap is None else float(softcap)

    # PyTorch's fused log-softmax + NLL computes the per-row CE (with its weight and smoothing
    # conventions, which are ours) in one pass; only the z-loss needs the log-partition again.
    def rows(z: Tensor, target: Tensor, w: Tensor | None) -> Tensor:
        z = transform_logits(z, temperature=temp, softcap=cap)
        loss = torch.nn.functional.cross_entropy(
            z, target, weight=w, reduction="none", label_smoothing=eps
        )
        if cz > 0.0:
            penalty = cz * torch.logsumexp(z, dim=1).square()
            if w is not None and not target.is_floating_point():
                penalty = penalty * w[target]
            loss = loss + penalty
        return loss

    return logit_loss(
        "cross_entropy",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        weighted_rows=rows,
        soft_rows=rows,
    )


register(
    cross_entropy,
    name="ce",
    module="CrossEntropy",
    check=_check_cross_entropy,
    family="softmax",
    paper=Paper("Cross-entropy (with the PaLM z-loss option)", 2022, arxiv="2204.02311"),
    soft_targets=True,
    invalid_hyperparameters=(
        {"label_smoothing": -0.1},
        {"label_smoothing": 1.5},
        {"temperature": 0.0},
        {"softcap": -1.0},
        {"z_loss": -1e-4},
    ),
)




def _check_comp_sum(*, tau: float) -> None:
    check_number("comp_sum", "tau", tau, low=0.0)


def comp_sum(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    tau: float = 1.0,
) -> Tensor:
    r"""Comp-sum loss Φ^τ of Mao, Mohri & Zhong: one τ interpolates sum-exp, CE, GCE and MAE.

    .. math::

        u = \sum_{k\ne y} e^{z_k - z_y} = 1/p_y - 1,\qquad
        \ell_\tau = \frac{(1+u)^{1-\tau} - 1}{1-\tau} = \frac{1 - p_y^{\tau-1}}{\tau - 1},
        \qquad \ell_1 = -\log p_y

    computed as ``expm1((τ-1)·log p_y)/(1-τ)`` (the CE branch is used when |τ-1| < 1e-6).
    Members: τ=0 sum-exponential ``1/p_y - 1``; τ=1 cross-entropy; τ∈(1,2) GCE with q=τ-1;
    τ=2 ``1 - p_y`` (half of MAE). The gradient is ``p_y^{τ-1}·(p - e_y)``: τ<1 amplifies hard
    samples (unbounded loss; it overflows to ``inf`` when ``(1-τ)·|log p_y|`` exceeds the
    dtype's range; the gradient is then still exact entrywise: ``±inf`` only in the entries
    whose true value overflows, e.g. the target and the offending classes, never NaN), τ>1
    damps them (bounded by ``1/(τ-1)``). Any τ ≥ 0 is accepted, but the
    paper's analysis and experiments cover τ ∈ [0, 2]; τ > 2 is outside the studied range.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`cross_entropy`.
        tau: τ ≥ 0.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.comp_sum(z, y, tau=0.0).item(), 6)
        0.503215

    Reference: Mao, Mohri, Zhong, *Cross-Entropy Loss Functions: Theoretical Analysis and
    Applications*, ICML 2023 (arXiv 2304.07288).
    """
    _check_comp_sum(tau=tau)
    return logit_loss(
        "comp_sum",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=comp_sum_rows(tau),
    )


register(
    comp_sum,
    name="comp-sum",
    module="CompSum",
    check=_check_comp_sum,
    family="softmax",
    paper=Paper(
        "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
        2023,
        authors="Mao, Mohri, Zhong",
        arxiv="2304.07288",
    ),
    invalid_hyperparameters=({"tau": -0.5}, {"tau": float("nan")}),
)


def _check_spherical_z_loss(*, a: float, b: float) -> None:
    fn = "spherical_z_loss"
    check_float32_number(fn, "a", check_number(fn, "a", a, low=0.0, low_open=True))
    check_float32_number(fn, "b", check_number(fn, "b", b))


class _StandardisedTarget(torch.autograd.Function):
    """ẑ_y = (z_y - μ)/σ of (K, C) logits, exact at any finite logit scale.

    Each row is divided by its largest |z| and then by its largest |centred| value (the ratio
    does not depend on them), so ``mean u² ≥ 1/C`` can neither overflow nor underflow and no
    ε is needed. A row of exactly equal logits has ẑ_y := 0 with the gradient ``e_y - 1/C``
    (σ taken as one logit unit): bounded, and a zero-initialised head still learns. The
    backward is written out, ``∂ẑ_y/∂z = (e_y - 1/C - ẑ_y·û/C)/σ`` with ``û = (z - μ)/σ``, so
    the whole loss costs a few in-place passes over (K, C). Not twice differentiable.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, y: Tensor, loss_name: str) -> Tensor:
        ctx.loss_name = loss_name  # named by first_order_only's error
        # amax and amin separately: aminmax over a dim is several times slower on CPU.
        s = torch.maximum(z.amax(dim=1, keepdim=True), -z.amin(dim=1, keepdim=True))
        s = torch.where(s > 0, s, torch.ones_like(s))
        u = z / s
        u.sub_(u.mean(dim=1, keepdim=True))  # centred; equal rows give exactly 0
        m = torch.maximum(u.amax(dim=1, keepdim=True), -u.amin(dim=1, keepdim=True))
        spread = m > 0
        m = torch.where(spread, m, torch.ones_like(m))
        u.div_(m)
        # ≥ 1/C on rows with spread; 1 elsewhere (those rows have u = 0 and ẑ_y = 0).
        sigma = torch.linalg.vector_norm(u, dim=1, keepdim=True) / math.sqrt(z.shape[1])
        sigma = torch.where(spread, sigma, torch.ones_like(sigma))
        idx = y.unsqueeze(1)
        z_hat = (u.gather(1, idx) / sigma).squeeze(1)
        ctx.save_for_backward(u, idx, s.squeeze(1), m.squeeze(1), sigma.squeeze(1),
                              spread.squeeze(1), z_hat)
        return z_hat

    @staticmethod
    @first_order_only
    @once_differentiable  # hand-written first-order backward: double backward raises
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        u, idx, s, m, sigma, spread, z_hat = ctx.saved_tensors
        num_classes = u.shape[1]
        # g/σ_z with σ_z = σ·m·s, divided in steps so extreme scales do not overflow early.
        a = torch.where(spread, g / sigma / m / s, g)
        coef = -(a * z_hat) / (num_classes * sigma)
        grad = torch.addcmul((-a / num_classes).unsqueeze(1), u, coef.unsqueeze(1))
        grad.scatter_add_(1, idx, a.unsqueeze(1))
        return grad, None, None


def _standardised_target(z: Tensor, y: Tensor) -> Tensor:
    """ẑ_y = (z_y - μ)/σ of (K, C) logits (see :class:`_StandardisedTarget`)."""
    return _StandardisedTarget.apply(z, y, "spherical_z_loss")  # type: ignore[no-untyped-call,no-any-return]


def spherical_z_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    a: float = 1.0,
    b: float = 1.0,
) -> Tensor:
    r"""Z-loss of de Brébisson & Vincent on standardised logits (default a=1, b=1 are placeholders).

    .. math::

        \mu = \tfrac1C\sum_k z_k,\quad \sigma = \sqrt{\tfrac1C\sum_k (z_k-\mu)^2},
        \quad \hat z_y = \frac{z_y - \mu}{\sigma},\qquad
        \ell = \frac1a\,\mathrm{softplus}\big(a\,(b - \hat z_y)\big)

    σ is the *population* standard deviation. The loss is invariant to shifting the logits and
    to rescaling them by a positive factor (exactly, at any finite scale: each row is first
    divided by its largest centred |z|), and depends only on Σz, Σz² and z_y (the "spherical
    family"). When all logits of a row are equal (a zero-initialised head), ẑ_y := 0 and the
    gradient is ``-sigmoid(a·b)·(e_y - 1/C)``, the one at σ = 1: bounded, and training starts. Since
    ``ẑ_y ≤ sqrt(C-1)``, ``b`` is a target for the standardised score and ``a`` its sharpness.

    **Defaults are placeholders.** The paper tunes ``a`` and ``b`` per task and we could not
    find the values it used; ``a=1, b=1`` are losslab's choice so that the registry, the CLI
    and the arena can build the loss. Tune them (or pass them explicitly) for real use.

    Not to be confused with the ``z_loss`` coefficient of :func:`cross_entropy`, which adds
    the PaLM log-partition penalty ``c_z·logsumexp(z)²`` to cross-entropy.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`cross_entropy`.
        a: sharpness a > 0.
        b: location b (any real).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.spherical_z_loss(z, y, a=1.0, b=1.0).item(), 6)
        0.587075

    Reference: de Brébisson, Vincent, *The Z-loss: a shift and scale invariant classification
    loss belonging to the Spherical Family*, 2016 (arXiv 1604.08859).
    """
    _check_spherical_z_loss(a=a, b=b)
    af, bf = float(a), float(b)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        return torch.nn.functional.softplus(af * (bf - _standardised_target(z, y))) / af

    return logit_loss(
        "spherical_z_loss",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    spherical_z_loss,
    name="z-loss",
    module="SphericalZLoss",
    check=_check_spherical_z_loss,
    family="softmax",
    paper=Paper(
        "The Z-loss: a shift and scale invariant classification loss belonging to the "
        "Spherical Family",
        2016,
        authors="de Brébisson, Vincent",
        arxiv="1604.08859",
    ),
    invalid_hyperparameters=({"a": 0.0}, {"a": -1.0}, {"b": float("inf")}),
)


__all__ = ["comp_sum", "cross_entropy", "spherical_z_loss"]
