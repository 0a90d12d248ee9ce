"""Normalised losses of Ma et al. (NCE, NGCE) and their Active-Passive pairs (APL).

A normalised loss divides a loss by its sum over all possible labels, so that
``Σ_j L(z, j) = 1``; this makes it robust to symmetric label noise but prone to underfit, which
the Active-Passive Loss fixes by adding a passive loss (RCE or MAE, from
:mod:`losslab.functional.logits.robust`). Conventions are those of
:func:`losslab.functional.cross_entropy`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.logit_loss import RowLoss, logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import check_choice, check_number
from .._core.robust_terms import DEFAULT_LOG_ZERO, check_log_zero, check_weight_factor, one_minus_p_y
from .._core.softmax_row_stats import softmax_row_stats

ACTIVE_LOSSES = ("nce", "ngce")
PASSIVE_LOSSES = ("rce", "mae")


# --- normalised losses -----------------------------------------------------------------------

def _nce_from_stats(log_p_y: Tensor, sum_log: Tensor) -> Tensor:
    # The denominator is ≤ log p_y < 0 for C ≥ 2; with C = 1 both are 0 and the clamp makes
    # the loss 0 (like CE) instead of 0/0.
    return log_p_y / sum_log.clamp(max=-torch.finfo(sum_log.dtype).tiny)


def _ngce_from_stats(log_p_y: Tensor, gap_sum: Tensor, q: float) -> Tensor:
    # 1 - p_y^q, accurate near p_y = 1. Σ_k (1 - p_k^q) ≥ C - C^{1-q} > 0 for C ≥ 2; the
    # clamp only matters for C = 1.
    return -torch.expm1(q * log_p_y) / gap_sum.clamp(min=torch.finfo(gap_sum.dtype).tiny)


def _nce_rows(z: Tensor, y: Tensor) -> Tensor:
    log_p_y, sum_log, _ = softmax_row_stats(z, y, "normalized_cross_entropy", want_sum=True)
    return _nce_from_stats(log_p_y, sum_log)


def _ngce_rows(q: float) -> RowLoss:
    def rows(z: Tensor, y: Tensor) -> Tensor:
        log_p_y, _, gap_sum = softmax_row_stats(z, y, "normalized_generalized_cross_entropy", q=q)
        return _ngce_from_stats(log_p_y, gap_sum, q)

    return rows


_APL_PAPER = Paper(
    "Normalized Loss Functions for Deep Learning with Noisy Labels",
    2020, authors="Ma, Huang, Wang, Romano, Erfani, Bailey", arxiv="2006.13554",
)


def normalized_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Normalized cross-entropy of Ma et al.: ``log p_y / Σ_k log p_k`` ∈ (0, 1].

    .. math::

        \mathrm{NCE} = \frac{-\log p_y}{-\sum_k \log p_k}

    Normalised means ``Σ_j NCE(z, j) = 1``, which makes it robust to symmetric label noise.
    On its own it underfits; Ma et al. pair it with a passive loss (:func:`active_passive`).

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.normalized_cross_entropy(z, y).item(), 6)
        0.096525

    Reference: Ma, Huang, Wang, Romano, Erfani, Bailey, *Normalized Loss Functions for Deep
    Learning with Noisy Labels*, ICML 2020 (arXiv 2006.13554).
    """
    return logit_loss("normalized_cross_entropy", input, target, weight=weight,
                      ignore_index=ignore_index, reduction=reduction, rows=_nce_rows)


register(normalized_cross_entropy, name="nce", module="NormalizedCrossEntropy",
         family="robust", paper=_APL_PAPER)


def _check_normalized_generalized_cross_entropy(*, q: float) -> None:
    check_number("normalized_generalized_cross_entropy", "q", q, low=0.0, high=1.0,
                 low_open=True)


def normalized_generalized_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    q: float = 0.7,
) -> Tensor:
    r"""Normalized GCE of Ma et al.: ``(1 - p_y^q) / Σ_k (1 - p_k^q)``.

    .. math::

        \mathrm{NGCE} = \frac{1 - p_y^{q}}{C - \sum_k p_k^{q}}

    Like NCE it sums to one over the possible labels and is usually paired with a passive
    loss.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        q: q in (0, 1].

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.normalized_generalized_cross_entropy(z, y).item(), 6)
        0.146922

    Reference: Ma et al., *Normalized Loss Functions for Deep Learning with Noisy Labels*,
    ICML 2020 (arXiv 2006.13554).
    """
    _check_normalized_generalized_cross_entropy(q=q)
    return logit_loss("normalized_generalized_cross_entropy", input, target, weight=weight,
                      ignore_index=ignore_index, reduction=reduction,
                      rows=_ngce_rows(float(q)))


register(normalized_generalized_cross_entropy, name="ngce",
         module="NormalizedGeneralizedCrossEntropy",
         check=_check_normalized_generalized_cross_entropy, family="robust", paper=_APL_PAPER,
         invalid_hyperparameters=({"q": 0.0}, {"q": 2.0}))


# --- Active-Passive Losses -------------------------------------------------------------------

def _check_apl(
    fn: str, *, active: str, passive: str, alpha: float, beta: float, q: float, log_zero: float
) -> None:
    check_choice(fn, "active", active, ACTIVE_LOSSES)
    check_choice(fn, "passive", passive, PASSIVE_LOSSES)
    check_weight_factor(fn, "alpha", alpha)
    check_weight_factor(fn, "beta", beta)
    check_number(fn, "q", q, low=0.0, high=1.0, low_open=True)
    check_log_zero(fn, log_zero)


def _check_active_passive(
    *, active: str, passive: str, alpha: float, beta: float, q: float, log_zero: float
) -> None:
    _check_apl("active_passive", active=active, passive=passive, alpha=alpha, beta=beta, q=q,
               log_zero=log_zero)


def _apl_loss(
    fn: str, input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
    reduction: str, *, active: str, passive: str, alpha: float, beta: float, q: float,
    log_zero: float,
) -> Tensor:
    _check_apl(fn, active=active, passive=passive, alpha=alpha, beta=beta, q=q,
               log_zero=log_zero)
    use_nce = active == "nce"
    a, b, lz, qf = float(alpha), float(beta), float(log_zero), float(q)
    # Both passive losses are c·(1 - p_y): RCE with c = -A, MAE with c = 2.
    passive_scale = -lz if passive == "rce" else 2.0

    def rows(z: Tensor, y: Tensor) -> Tensor:
        # One log-softmax (and one backward pass) serves both terms.
        log_p_y, sum_log, gap_sum = softmax_row_stats(
            z, y, fn, want_sum=use_nce, q=None if use_nce else qf
        )
        act = (_nce_from_stats(log_p_y, sum_log) if use_nce
               else _ngce_from_stats(log_p_y, gap_sum, qf))
        pas = passive_scale * one_minus_p_y(log_p_y)
        return a * act + b * pas

    return logit_loss(fn, input, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction, rows=rows)


def active_passive(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    active: str = "nce",
    passive: str = "rce",
    alpha: float = 1.0,
    beta: float = 1.0,
    q: float = 0.7,
    log_zero: float = DEFAULT_LOG_ZERO,
) -> Tensor:
    r"""Active-Passive Loss of Ma et al.: ``α·Active + β·Passive`` (NCE or NGCE; RCE or MAE).

    .. math::

        \mathrm{APL} = \alpha\,\mathrm{Active}(z, y) + \beta\,\mathrm{Passive}(z, y)

    ``active``: ``"nce"`` (:func:`normalized_cross_entropy`) or ``"ngce"``
    (:func:`normalized_generalized_cross_entropy`, uses ``q``). ``passive``: ``"rce"``
    (:func:`reverse_cross_entropy`, uses ``log_zero``) or ``"mae"``
    (:func:`mean_absolute_error`, the ``2·(1 - p_y)`` form; the APL code's MAE is ``1 - p_y``,
    so its β for NCE+MAE equals 2× the β here). Official NCE+RCE (α, β): MNIST (1, 10),
    CIFAR-10 (1, 1), CIFAR-100 (10, 0.1).

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        active: ``"nce"`` | ``"ngce"``.
        passive: ``"rce"`` | ``"mae"``.
        alpha: weight of the active loss, ≥ 0.
        beta: weight of the passive loss, ≥ 0.
        q: q in (0, 1] of NGCE (unused otherwise).
        log_zero: A < 0 of RCE (unused otherwise).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.active_passive(z, y).item(), 6)
        3.179769

    Reference: Ma et al., *Normalized Loss Functions for Deep Learning with Noisy Labels*,
    ICML 2020 (arXiv 2006.13554).
    """
    return _apl_loss("active_passive", input, target, weight, ignore_index, reduction,
                     active=active, passive=passive, alpha=alpha, beta=beta, q=q,
                     log_zero=log_zero)


register(active_passive, name="nce+rce", module="ActivePassive", check=_check_active_passive,
         family="robust", paper=_APL_PAPER,
         invalid_hyperparameters=({"alpha": -1.0}, {"beta": -1.0}, {"active": "ce"},
                                  {"passive": "nce"}, {"q": 0.0}, {"log_zero": 1.0}))


def _check_nce_and_mae(*, alpha: float, beta: float) -> None:
    check_weight_factor("nce_and_mae", "alpha", alpha)
    check_weight_factor("nce_and_mae", "beta", beta)


def nce_and_mae(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    alpha: float = 1.0,
    beta: float = 1.0,
) -> Tensor:
    r"""NCE+MAE Active-Passive Loss: ``α·NCE + β·MAE`` with ``MAE = 2·(1 - p_y)``.

    .. math::

        \ell = \alpha\,\frac{\log p_y}{\sum_k \log p_k} + \beta \cdot 2\,(1 - p_y)

    The same as :func:`active_passive` with ``passive="mae"``. The APL code's MAE is the
    halved ``1 - p_y``, so its β equals 2× the β here.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        alpha: weight of NCE, ≥ 0.
        beta: weight of MAE, ≥ 0.

    Example:
        >>> import torch
        >>> from losslab.functional.logits.normalized import nce_and_mae
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(nce_and_mae(z, y).item(), 6)
        0.766043

    Reference: Ma et al., *Normalized Loss Functions for Deep Learning with Noisy Labels*,
    ICML 2020 (arXiv 2006.13554).
    """
    return _apl_loss("nce_and_mae", input, target, weight, ignore_index, reduction,
                     active="nce", passive="mae", alpha=alpha, beta=beta, q=0.7,
                     log_zero=DEFAULT_LOG_ZERO)


register(nce_and_mae, name="nce+mae", module="NCEandMAE", check=_check_nce_and_mae,
         family="robust", paper=_APL_PAPER,
         invalid_hyperparameters=({"alpha": -1.0}, {"beta": -0.5}))


__all__ = [
    "active_passive",
    "nce_and_mae",
    "normalized_cross_entropy",
    "normalized_generalized_cross_entropy",
]
