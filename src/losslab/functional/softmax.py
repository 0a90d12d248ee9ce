"""Softmax cross-entropy and its direct relatives.

Conventions for every loss in :mod:`losslab.functional` (``F.cross_entropy``'s, plus two
fixes): logits ``input`` of shape (N, C) or (N, C, d1, ...), class-index ``target`` of shape
(N,) or (N, d1, ...); keyword-only ``weight`` (C,), ``ignore_index``, ``reduction``; the
weighted mean is ``sum w_y l / sum w_y``; an empty or fully ignored batch gives 0 (not NaN)
under ``mean``; half precision is computed and returned in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.logit_loss import log_prob_of_target, logit_loss, target_logit
from .._core.validation import check_number

_F32 = torch.finfo(torch.float32)


def check_float32_number(fn: str, name: str, value: float) -> float:
    """Reject a (validated) hyperparameter that float32 cannot hold: it would become ``inf`` or
    ``0`` inside the loss (for example ``lam=1e300`` → ``inf·0 = NaN``)."""
    v = float(value)
    if v != 0.0 and not _F32.tiny <= abs(v) <= _F32.max:
        raise ValueError(
            f"{fn}: {name} must be 0 or have magnitude in [{_F32.tiny:.3g}, {_F32.max:.3g}] "
            f"(representable in float32), got {v:g}"
        )
    return v


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


# --- comp-sum family and the spherical Z-loss (spec A§1, A§4.1) --------------------------

# Below this |s| the power form is replaced by its s → 0 limit, -log p_y (spec A§1.3).
_POWER_CE_SWITCH = 1e-6


def power_log_loss(log_p: Tensor, s: float) -> Tensor:
    r"""``(1 - p^s) / s`` from ``log p``, computed as ``-expm1(s·log p) / s``.

    The shared core of comp-sum (``s = τ - 1``) and GCE (``s = q``); it is accurate for small
    ``|s|`` and equals ``-log p`` (cross-entropy) when ``|s| < 1e-6``. For ``s < 0`` the value
    grows like ``p^s`` and overflows to ``inf`` once ``|s·log p|`` exceeds the dtype's range
    (about 88 in float32): that is the true size of the loss, not a numerical accident.
    """
    if abs(s) < _POWER_CE_SWITCH:
        return -log_p
    return -torch.expm1(s * log_p) / s


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
    dtype's range), τ>1 damps them (bounded by ``1/(τ-1)``). Any τ ≥ 0 is accepted, but the
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
    s = float(tau) - 1.0

    def rows(z: Tensor, y: Tensor) -> Tensor:
        return power_log_loss(log_prob_of_target(z, y), s)

    return logit_loss(
        "comp_sum",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


def _check_spherical_z_loss(*, a: float, b: float) -> None:
    fn = "spherical_z_loss"
    check_float32_number(fn, "a", check_number(fn, "a", a, low=0.0, low_open=True))
    check_float32_number(fn, "b", check_number(fn, "b", b))


def _standardised_target(z: Tensor, y: Tensor) -> Tensor:
    """ẑ_y = (z_y - μ)/σ of (K, C) logits, exact at any finite logit scale.

    Each row is divided by its largest |z| and then by its largest |centred| value (both
    detached: the ratio does not depend on them, so the gradient is unchanged). Then
    ``mean u² ≥ 1/C`` can neither overflow nor underflow, and no ε is needed. A row of exactly
    equal logits has ẑ_y := 0, with the gradient of ``(z_y - μ)/1``, i.e. ``e_y - 1/C`` (σ
    taken as one logit unit): bounded, and a zero-initialised head still learns.
    """
    with torch.no_grad():
        s = z.abs().amax(dim=1, keepdim=True)
        s = torch.where(s > 0, s, torch.ones_like(s))
    centred = z / s - (z / s).mean(dim=1, keepdim=True)  # equal rows give exactly 0
    with torch.no_grad():
        m = centred.abs().amax(dim=1, keepdim=True)
        spread = m > 0
        m = torch.where(spread, m, torch.ones_like(m))
    u = centred / m
    mean_sq = u.square().mean(dim=1, keepdim=True)
    # ≥ 1/C on rows with spread; the ones elsewhere keep sqrt's derivative finite.
    sigma = torch.sqrt(torch.where(spread, mean_sq, torch.ones_like(mean_sq)))
    spread_y = spread.squeeze(1)
    z_hat = target_logit(u, y) / sigma.squeeze(1)
    equal_rows = target_logit(centred, y) * s.squeeze(1)  # value 0, gradient e_y - 1/C
    return torch.where(spread_y, z_hat, equal_rows)


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
