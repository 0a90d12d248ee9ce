"""Label-distributionally robust losses: LDR-KL and its adaptive form ALDR-KL.

LDR-KL is the worst case, over label distributions π within a KL ball around uniform, of the
margin-shifted logit differences; its closed form is a temperature-λ log-mean-exp. ALDR-KL
also maximises over a per-sample λ with a quadratic prior around λ₀, which the official code
does by one block-coordinate step per visit of a sample; :class:`losslab.nn.ALDRKL` keeps that
per-sample λ, the functions here compute one step from a given previous λ.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from ..._core.logit_loss import logit_loss
from ..._core.loss_modules import LogitLoss, signature_defaults
from ..._core.registry import Paper, register
from ..._core.validation import (
    check_choice,
    check_float32_number,
    check_ignore_index,
    check_index_target,
    check_number,
    check_tensor,
    flatten_logits,
    values_checkable,
)
from .._core.row_blocks import row_blocks

NORMALIZATIONS = ("none", "softplus_mean", "l1_mean")

# Below this logit, log(softplus(z)) = z - e^z/2 + ... equals z to double precision.
_LOG_SOFTPLUS_LINEAR_BELOW = -40.0
# Smoothing the official ALDR code adds to π̂ before the KL (keeps log π̂ finite).
_ALDR_PI_SMOOTHING = 1e-5


def _log_softplus(z: Tensor) -> Tensor:
    """log(softplus(z)) without underflow to -inf for very negative z."""
    safe = z.clamp(min=_LOG_SOFTPLUS_LINEAR_BELOW)
    return torch.where(
        z < _LOG_SOFTPLUS_LINEAR_BELOW, z, torch.log(torch.nn.functional.softplus(safe))
    )


def normalize_scores(z: Tensor, mode: str) -> Tensor:
    """The official LDR code's optional logit transforms, row-wise on (K, C) logits.

    * ``"none"``: unchanged.
    * ``"softplus_mean"``: ``softplus(z) / mean_k softplus(z_k)`` (non-negative, mean 1; the
      ``LDRLoss_V1`` transform and ALDR's ``softplus=True`` path). Computed in log space so that
      rows of very negative logits stay finite.
    * ``"l1_mean"``: ``z / mean_k |z_k|`` (ALDR's default path); an all-zero row stays zero.
    """
    if mode == "none":
        return z
    if mode == "softplus_mean":
        log_sp = _log_softplus(z)
        log_mean = torch.logsumexp(log_sp, dim=1, keepdim=True) - math.log(z.shape[1])
        return torch.exp(log_sp - log_mean)
    scale = z.abs().mean(dim=1, keepdim=True)
    return z / torch.where(scale > 0, scale, torch.ones_like(scale))


class _LDRRows(torch.autograd.Function):
    """λ·log mean_k exp(d_k/λ) with d_k = z_k - z_y + margin·[k≠y]; λ scalar or (K,), no grad.

    Computed as ``m + log1p(mean_k expm1(w_k - m))`` with ``w = d/λ``, ``m = max_k w_k``, not
    ``logsumexp(w) - log C``: for large λ the latter cancels (float32 error 2e-3 at λ = 1e4,
    0.16 at λ = 1e6 on unit logits). The margin is added to every column of one buffer and
    the target column is then set to its exact value 0, so no mask is built. The backward is
    written out: ``softmax(w) - e_y = (1 + expm1(w - m))/Σ - e_y`` from the saved buffer, one
    pass over (K, C). Not twice differentiable.
    """

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, y: Tensor, margin: float, lam: Tensor | float, loss_name: str
    ) -> Tensor:
        ctx.loss_name = loss_name  # named by first_order_only's error
        idx = y.unsqueeze(1)
        w = z - z.gather(1, idx)
        if margin != 0.0:
            w.add_(margin)
        w.div_(lam.unsqueeze(1) if isinstance(lam, Tensor) else lam)
        w.scatter_(1, idx, 0.0)  # d_y = 0 exactly
        m = w.amax(dim=1, keepdim=True)
        e = w.sub_(m).expm1_()
        mean_e = e.mean(dim=1)
        ctx.save_for_backward(e, idx, mean_e)
        return lam * (m.squeeze(1) + torch.log1p(mean_e))

    @staticmethod
    @first_order_only
    @once_differentiable  # hand-written first-order backward: double backward raises
    def backward(
        ctx: Any, g: Tensor
    ) -> tuple[Tensor, None, None, None, None]:
        e, idx, mean_e = ctx.saved_tensors
        # softmax(w)_k = (1 + e_k) / (C·(1 + mean e)); λ·(1/λ) cancels.
        r = (g / (e.shape[1] * (1.0 + mean_e))).unsqueeze(1)
        grad = torch.addcmul(r, e, r)
        grad.scatter_add_(1, idx, -g.unsqueeze(1))
        return grad, None, None, None, None


def _ldr_rows(
    z: Tensor, y: Tensor, margin: float, lam: Tensor | float, loss_name: str
) -> Tensor:
    """LDR-KL per row (see :class:`_LDRRows`); λ scalar or (K,), treated as a constant;
    ``loss_name`` is the public loss function that a refused second derivative names."""
    if isinstance(lam, Tensor):
        lam = lam.detach()
    return _LDRRows.apply(z, y, margin, lam, loss_name)  # type: ignore[no-untyped-call,no-any-return]


def _check_ldr_kl(*, lam: float, margin: float, normalize: str) -> None:
    fn = "ldr_kl"
    check_float32_number(fn, "lam", check_number(fn, "lam", lam, low=0.0, low_open=True))
    check_float32_number(fn, "margin", check_number(fn, "margin", margin, low=0.0))
    check_choice(fn, "normalize", normalize, NORMALIZATIONS)


def ldr_kl(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    lam: float = 10.0,
    margin: float = 0.1,
    normalize: str = "none",
) -> Tensor:
    r"""LDR-KL loss of Zhu, Ying & Yang: a KL-regularised worst case over label distributions.

    .. math::

        d_k = z_k - z_y + c\,[k\ne y],\qquad
        \ell = \max_{\pi\in\Delta}\ \sum_k \pi_k d_k - \lambda\,\mathrm{KL}(\pi\,\|\,u)
             = \lambda \log\Big(\frac1C \sum_k e^{d_k/\lambda}\Big)

    λ → 0 gives the Crammer–Singer hinge ``max(0, max_{k≠y} c + z_k - z_y)``; λ → ∞ gives
    ``mean_k d_k``; c = 0, λ = 1 gives ``CE - log C``. The gradient is
    ``softmax(d/λ) - e_y``, bounded entrywise by 1. Values can be negative.
    ``normalize="softplus_mean"`` applies the official code's transform
    ``z ← softplus(z)/mean(softplus(z))`` first (bounded, non-negative scores, as the paper
    motivates; it removes shift invariance); ``"l1_mean"`` divides by ``mean|z|``.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        lam: λ > 0, the DRO temperature (official experiments: 10). ``lam`` and ``margin``
            must be representable in float32 (magnitude in [1.2e-38, 3.4e38] or 0).
        margin: c ≥ 0 (official experiments: 0.1; the code's class default is 2).
        normalize: ``"none"`` | ``"softplus_mean"`` | ``"l1_mean"``.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.ldr_kl(z, y, lam=1.0, margin=2.0).item(), 6)
        0.452832

    Reference: Zhu, Ying, Yang, *Label Distributionally Robust Losses for Multi-class
    Classification: Consistency, Robustness and Adaptivity*, ICML 2023 (arXiv 2112.14869).
    """
    _check_ldr_kl(lam=lam, margin=margin, normalize=normalize)
    lam_f, c = float(lam), float(margin)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        return _ldr_rows(normalize_scores(z, normalize), y, c, lam_f, "ldr_kl")

    return logit_loss("ldr_kl", input, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction, rows=rows)



_LDR_PAPER = Paper(
    "Label Distributionally Robust Losses for Multi-class Classification: Consistency, "
    "Robustness and Adaptivity",
    2023, authors="Zhu, Ying, Yang", arxiv="2112.14869",
)

register(ldr_kl, name="ldr-kl", module="LDRKL", check=_check_ldr_kl, family="robust",
         paper=_LDR_PAPER,
         invalid_hyperparameters=({"lam": 0.0}, {"lam": -1.0}, {"margin": -0.1},
                                  {"normalize": "softmax"}))


def _check_aldr_kl(*, lam0: float, alpha: float, margin: float, normalize: str) -> None:
    fn = "aldr_kl"
    check_float32_number(fn, "lam0", check_number(fn, "lam0", lam0, low=0.0, low_open=True))
    check_float32_number(fn, "alpha", check_number(fn, "alpha", alpha, low=1.0, low_open=True))
    check_float32_number(fn, "margin", check_number(fn, "margin", margin, low=0.0))
    check_choice(fn, "normalize", normalize, NORMALIZATIONS)


def _check_lam(fn: str, name: str, lam: object, shape: tuple[int, ...]) -> Tensor:
    """Validate previous λ values (``lam_prev``, or ``lam_state[sample_ids]`` reported as
    ``lam_state``): floating point, the target's shape, finite and positive."""
    t = check_tensor(fn, name, lam)
    if not t.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor (integer λ would be "
                        f"truncated), got dtype {t.dtype}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{fn}: {name} must have the target's shape {shape}, "
                         f"got {tuple(t.shape)}")
    if not values_checkable(t):
        return t
    bad = ~(torch.isfinite(t) & (t > 0))
    if bool(bad.any()):
        raise ValueError(f"{fn}: {name} must be finite and positive, got "
                         f"{t[bad].reshape(-1)[0].item()} at {bad.sum().item()} position(s)")
    return t


def _kl_to_uniform(z: Tensor, lam_prev: Tensor) -> Tensor:
    """KL(π̂‖u) per row, π̂ = renorm(softmax(z/λ_prev) + 10⁻⁵), without gradient.

    Computed in blocks of rows: the (K, C) temporaries would be fresh allocations, whose page
    faults cost more than the arithmetic; blocks of a few MB are reused by the allocator.
    """
    num_classes = z.shape[1]
    kl = z.new_empty(z.shape[0])
    for rows in row_blocks(z):
        pi = torch.softmax(z[rows] / lam_prev[rows].unsqueeze(1), dim=1) + _ALDR_PI_SMOOTHING
        pi.div_(pi.sum(dim=1, keepdim=True))
        kl[rows] = torch.mul(pi, num_classes).log_().mul_(pi).sum(dim=1)
    return kl


def _aldr_rows(
    z: Tensor, y: Tensor, lam_prev: Tensor, *, lam0: float, alpha: float, margin: float
) -> tuple[Tensor, Tensor]:
    """One ALDR step on (K, C) normalised logits: returns (loss rows, new λ rows)."""
    num_classes = z.shape[1]
    if num_classes == 1:  # KL(π‖u) = 0 and log C = 0: λ stays at λ₀, the loss is 0.
        return z.sum(dim=1) * 0.0, torch.full_like(lam_prev, lam0)
    log_c = math.log(num_classes)
    with torch.no_grad():
        kl = _kl_to_uniform(z, lam_prev)
        lam_new = lam0 - lam0 * kl / (alpha * log_c)
        penalty = alpha * log_c / (2.0 * lam0) * (lam_new - lam0).square()
    return _ldr_rows(z, y, margin, lam_new, "aldr_kl_step") - penalty, lam_new


def aldr_kl_step(
    input: Tensor,
    target: Tensor,
    lam_prev: Tensor | None = None,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    lam0: float = 10.0,
    alpha: float = 2.0,
    margin: float = 0.1,
    normalize: str = "none",
) -> tuple[Tensor, Tensor]:
    """One ALDR-KL step from the previous per-sample λ; returns ``(loss, new λ)``.

    ``lam_prev`` has the target's shape (one λ per target position; ``None`` means the first
    visit, λ₀ everywhere) and a floating dtype (stored in at least float32). The returned λ
    has the same shape, is detached, and equals ``lam_prev`` at ignored positions and at rows
    whose new λ is not finite (NaN/inf logits): one bad batch does not poison the state.
    See :func:`aldr_kl` for the formula; the stateful module :class:`losslab.nn.ALDRKL`
    stores the returned λ per sample id.
    """
    fn = "aldr_kl"
    _check_aldr_kl(lam0=lam0, alpha=alpha, margin=margin, normalize=normalize)
    check_tensor(fn, "target", target)
    if lam_prev is not None:
        _check_lam(fn, "lam_prev", lam_prev, tuple(target.shape))
    return _aldr_step(input, target, lam_prev, weight=weight, ignore_index=ignore_index,
                      reduction=reduction, lam0=float(lam0), alpha=float(alpha),
                      margin=float(margin), normalize=normalize)


def _aldr_step(
    input: Tensor, target: Tensor, lam_prev: Tensor | None, *, weight: Tensor | None,
    ignore_index: int, reduction: str, lam0: float, alpha: float, margin: float, normalize: str,
) -> tuple[Tensor, Tensor]:
    """:func:`aldr_kl_step` after validation of the hyperparameters and of ``lam_prev``."""
    fn = "aldr_kl"
    if lam_prev is None:
        prev = torch.full((target.numel(),), lam0, device=target.device)
    else:
        prev = lam_prev.detach().reshape(-1)
        prev = prev.to(torch.promote_types(prev.dtype, torch.float32))
    new_lam = prev.clone()

    def rows(z: Tensor, y: Tensor) -> Tensor:
        # logit_loss drops ignored rows before calling us (eagerly; traced and meta inputs
        # keep every row in place); select the same rows of λ.
        kept = target.reshape(-1) != ignore_index
        traced = z.shape[0] == kept.shape[0] and not values_checkable(z, target)
        lam_rows = (prev if traced else prev[kept]).to(z.dtype)
        loss, lam = _aldr_rows(normalize_scores(z, normalize), y, lam_rows, lam0=lam0,
                               alpha=alpha, margin=margin)
        # A row with NaN/inf logits keeps its previous λ rather than storing NaN.
        lam = torch.where(torch.isfinite(lam), lam, lam_rows)
        if traced:
            new_lam.copy_(torch.where(kept, lam.to(new_lam.dtype), new_lam))
        else:
            new_lam[kept] = lam.to(new_lam.dtype)
        return loss

    loss = logit_loss(fn, input, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction, rows=rows)
    return loss, new_lam.reshape(target.shape)


def _check_sample_ids(fn: str, sample_ids: object, target: Tensor, size: int | None) -> Tensor:
    ids = check_tensor(fn, "sample_ids", sample_ids)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{fn}: sample_ids must be an integer tensor, got dtype {ids.dtype}")
    if tuple(ids.shape) != tuple(target.shape):
        raise ValueError(f"{fn}: sample_ids must have the target's shape {tuple(target.shape)}, "
                         f"got {tuple(ids.shape)}")
    if ids.numel() > 0 and values_checkable(ids):
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or (size is not None and high >= size):
            bound = "inf)" if size is None else f"{size - 1}]"
            raise ValueError(f"{fn}: sample_ids must lie in [0, {bound}, got range "
                             f"[{low}, {high}]")
    return ids.long()


def check_state_inputs(
    fn: str, input: object, target: object, ignore_index: object, sample_ids: object
) -> Tensor:
    """Validate logits, target and ``sample_ids`` (integer, the target's shape, ≥ 0) before
    any state is read or grown; returns the ids as int64."""
    # Report bad logits or targets before comparing sample_ids against them.
    logits, tgt = check_tensor(fn, "input", input), check_tensor(fn, "target", target)
    flatten_logits(fn, logits)
    check_index_target(fn, logits, tgt, check_ignore_index(fn, ignore_index))
    return _check_sample_ids(fn, sample_ids, tgt, None)


def aldr_kl(
    input: Tensor,
    target: Tensor,
    *,
    sample_ids: Tensor | None = None,
    lam_state: Tensor | None = None,
    update_state: bool = True,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    lam0: float = 10.0,
    alpha: float = 2.0,
    margin: float = 0.1,
    normalize: str = "none",
) -> Tensor:
    r"""ALDR-KL loss of Zhu, Ying & Yang: LDR-KL with a per-sample adaptive λ (first visit: λ₀).

    .. math::

        \hat\pi = \mathrm{renorm}\big(\mathrm{softmax}(z/\lambda_{old}) + 10^{-5}\big),\quad
        \lambda = \lambda_0\Big(1 - \frac{\mathrm{KL}(\hat\pi\,\|\,u)}{\alpha\log C}\Big),

        \ell = \mathrm{LDR\text{-}KL}_{c,\lambda}(z, y)
               - \frac{\alpha \log C}{2\lambda_0}(\lambda - \lambda_0)^2

    λ lies in [λ₀(1 - 1/α), λ₀], so α > 1. As in the official code λ is computed without
    gradient (block-coordinate ascent: the z-gradient is the LDR-KL gradient at fixed λ, so it
    is *not* the derivative of the value through λ; a finite-difference check of the value
    differs by the dλ/dz term, about 2e-5 at λ₀ = 10 and 3e-2 at λ₀ = 1 on unit-scale logits).

    State, like the running statistics of ``F.batch_norm``: with ``lam_state`` (a (N_data,)
    tensor of every sample's λ, initialised to λ₀) and ``sample_ids`` (the target's shape,
    indices into it), ``λ_old = lam_state[sample_ids]`` and, if ``update_state``, the new λ
    is written back in place (ignored positions, and rows whose new λ is not finite because
    their logits are NaN/inf, keep theirs). Without ``lam_state`` every
    sample is at its first visit (λ_old = λ₀); ``sample_ids`` is then only validated.
    :class:`losslab.nn.ALDRKL` owns such a state. The official code first divides the logits
    by ``mean|z|`` (``normalize="l1_mean"``; with ``softplus=True``, ``"softplus_mean"``); the
    default here is ``"none"`` like :func:`ldr_kl`.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        sample_ids: ``None`` or integer ids with the target's shape.
        lam_state: ``None`` or the float (N_data,) λ of every sample; updated in place.
        update_state: bool, write the new λ into ``lam_state`` (the module passes
            ``self.training``). ``sample_ids``, ``lam_state`` and ``update_state`` are
            keyword-only.
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        lam0: λ₀ > 0 (official: 10).
        alpha: α > 1 (official: 2).
        margin: c ≥ 0 (official: 0.1).
        normalize: ``"none"`` | ``"softplus_mean"`` | ``"l1_mean"``.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.aldr_kl(z, y, lam0=1.0).item(), 6)
        -0.640523

    Reference: Zhu, Ying, Yang, *Label Distributionally Robust Losses for Multi-class
    Classification: Consistency, Robustness and Adaptivity*, ICML 2023 (arXiv 2112.14869).
    """
    fn = "aldr_kl"
    _check_aldr_kl(lam0=lam0, alpha=alpha, margin=margin, normalize=normalize)
    if not isinstance(update_state, bool):
        raise TypeError(f"{fn}: update_state must be a bool, got {type(update_state).__name__}")
    check_tensor(fn, "target", target)
    if sample_ids is not None:
        check_state_inputs(fn, input, target, ignore_index, sample_ids)
    lam_prev: Tensor | None = None
    ids: Tensor | None = None
    if lam_state is not None:
        state = check_tensor(fn, "lam_state", lam_state)
        if state.dim() != 1 or not state.is_floating_point():
            raise ValueError(f"{fn}: lam_state must be a 1-D floating-point tensor, got shape "
                             f"{tuple(state.shape)} and dtype {state.dtype}")
        if sample_ids is None:
            raise ValueError(f"{fn}: lam_state needs sample_ids (which samples to read)")
        ids = _check_sample_ids(fn, sample_ids, target, state.shape[0]).to(state.device)
        lam_prev = _check_lam(fn, "lam_state", state[ids].to(target.device), tuple(target.shape))
    loss, lam_new = _aldr_step(input, target, lam_prev, weight=weight,
                               ignore_index=ignore_index, reduction=reduction, lam0=float(lam0),
                               alpha=float(alpha), margin=float(margin), normalize=normalize)
    if lam_state is not None and ids is not None and update_state:
        with torch.no_grad():
            lam_state[ids.reshape(-1)] = lam_new.reshape(-1).to(lam_state)
    return loss


# --- the stateful module ---------------------------------------------------------------------

# aldr_kl's per-call keyword arguments: the module supplies them, they are not hyperparameters.
_ALDR_CALL_ARGS = ("sample_ids", "lam_state", "update_state")


class ALDRKL(LogitLoss):
    """ALDR-KL with the per-sample λ state of the official algorithm.

    Call ``loss(input, target, sample_ids)``: ``sample_ids`` (integer, the target's shape) name
    each sample in the dataset. Each call computes every sample's λ from its stored value
    (λ₀ at the first visit), uses it in the loss, and — in training mode — stores it for the
    next visit. ``.eval()`` freezes the stored λ. Without ``sample_ids`` the call is the
    stateless first-visit loss :func:`losslab.functional.aldr_kl`, so generic callers work.

    Hand-written (not generated by the module factory) because it owns that state: a buffer
    that grows, is saved and loaded with the module, and is updated only in training mode.

    Args:
        num_samples: dataset size N; the state is a buffer ``lam`` of N values initialised to
            λ₀ and ids must lie in [0, N). ``None`` grows the buffer as larger ids appear.
        lam0, alpha, margin, normalize: as in :func:`losslab.functional.aldr_kl`.
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.

    Example:
        >>> import torch, losslab
        >>> loss = losslab.nn.ALDRKL(num_samples=100, lam0=1.0)
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(loss(z, y, torch.tensor([7])).item(), 6), round(loss.lam[7].item(), 6)
        (-0.640523, 0.878847)
    """

    function = staticmethod(aldr_kl)
    check = staticmethod(_check_aldr_kl)
    lam: Tensor

    def __init__(
        self,
        *,
        num_samples: int | None = None,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        **hyperparameters: Any,
    ) -> None:
        per_call = sorted(set(hyperparameters) & set(_ALDR_CALL_ARGS))
        if per_call:
            accepted = signature_defaults(aldr_kl, _ALDR_CALL_ARGS)
            raise TypeError(f"ALDRKL: {', '.join(per_call)} is passed per call (forward), "
                            f"not at construction; hyperparameters: {', '.join(accepted)}")
        super().__init__(
            weight=weight, ignore_index=ignore_index, reduction=reduction, **hyperparameters
        )
        for name in _ALDR_CALL_ARGS:
            self.hyperparameters.pop(name, None)
        if num_samples is not None:
            if isinstance(num_samples, bool) or not isinstance(num_samples, int):
                raise TypeError(f"ALDRKL: num_samples must be an int or None, "
                                f"got {type(num_samples).__name__}")
            if num_samples < 1:
                raise ValueError(f"ALDRKL: num_samples must be positive, got {num_samples}")
        self.num_samples = num_samples
        lam0 = float(self.hyperparameters["lam0"])
        self.register_buffer("lam", torch.full((num_samples or 0,), lam0))

    def _grow_for(self, ids: Tensor) -> None:
        """With ``num_samples=None``, extend the λ buffer (at λ₀) to cover the largest id.

        ``ids`` are already validated (integer, the target's shape, ≥ 0), so a malformed call
        fails before any memory is allocated."""
        if ids.numel() == 0:
            return
        if torch.compiler.is_compiling() or ids.is_meta:
            raise ValueError("ALDRKL: the λ state cannot grow under torch.compile or on meta "
                             "tensors (the largest sample id is a value); construct the loss "
                             "with num_samples=N")
        high = int(ids.max())
        if high >= self.lam.shape[0]:
            grown = torch.full((high + 1,), float(self.hyperparameters["lam0"]),
                               dtype=self.lam.dtype, device=self.lam.device)
            grown[: self.lam.shape[0]] = self.lam
            self.lam = grown

    # Narrower than LogitLoss.forward(**extras) on purpose: sample_ids is its only extra input.
    def forward(  # type: ignore[override]
        self, input: Tensor, target: Tensor, sample_ids: Tensor | None = None
    ) -> Tensor:
        if sample_ids is None:
            return super().forward(input, target)
        if self.num_samples is None:
            self._grow_for(check_state_inputs("aldr_kl", input, target, self.ignore_index, sample_ids))
        return aldr_kl(
            input, target, sample_ids=sample_ids, lam_state=self.lam,
            update_state=self.training, weight=self.weight,
            ignore_index=self.ignore_index, reduction=self.reduction, **self.hyperparameters,
        )

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A grown buffer (num_samples=None) may be longer than this module's; adopt its size.
        saved = state_dict.get(prefix + "lam")
        if self.num_samples is None and isinstance(saved, Tensor):
            self.lam = torch.empty_like(saved, device=self.lam.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_samples={self.num_samples}"


register(aldr_kl, name="aldr-kl", module=ALDRKL, family="robust", paper=_LDR_PAPER,
         extra_inputs=("sample_ids",), options=("lam_state", "update_state"),
         invalid_hyperparameters=({"lam0": 0.0}, {"alpha": 1.0}, {"alpha": 0.5},
                                  {"margin": -1.0}, {"normalize": "softmax"}))


__all__ = ["aldr_kl", "aldr_kl_step", "ldr_kl"]
