"""Losses that are robust to label noise: GCE, MAE, SCE, NCE, RCE, NGCE and Active-Passive pairs.

All are functions of the softmax probabilities and share two facts that the tests check:
they are invariant to shifting the logits, and their gradient is the CE gradient
``p - e_y`` re-weighted (GCE: ``p_y^q``, MAE: ``2·p_y``, RCE: ``|A|·p_y``). Conventions
(layouts, ``weight``, ``ignore_index``, reductions) are those of
:func:`losslab.functional.cross_entropy`. LDR-KL and ALDR-KL live in
:mod:`losslab.functional.ldr`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._core.logit_loss import RowLoss, log_prob_of_target, logit_loss
from .._core.validation import check_choice, check_number
from .softmax import power_log_loss

# log 0 in the reverse cross-entropy, as in the official SCE and APL code (one-hot clamped to
# [1e-4, 1]). The SCE paper reports A = -4 instead.
DEFAULT_LOG_ZERO = math.log(1e-4)

ACTIVE_LOSSES = ("nce", "ngce")
PASSIVE_LOSSES = ("rce", "mae")


def _one_minus_p_y(log_p_y: Tensor) -> Tensor:
    """1 - p_y from log p_y, accurate when p_y is close to 1."""
    return -torch.expm1(log_p_y)


def _apply(fn: str, input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
           reduction: str, rows: RowLoss) -> Tensor:
    return logit_loss(fn, input, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction, rows=rows)


# --- GCE -------------------------------------------------------------------------------------

def _check_generalized_cross_entropy(*, q: float, truncate_k: float | None) -> None:
    fn = "generalized_cross_entropy"
    check_number(fn, "q", q, low=0.0, high=1.0, low_open=True)
    if truncate_k is not None:
        check_number(fn, "truncate_k", truncate_k, low=0.0, high=1.0, low_open=True,
                     high_open=True)


def generalized_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    q: float = 0.7,
    truncate_k: float | None = None,
) -> Tensor:
    r"""Generalized cross-entropy L_q of Zhang & Sabuncu: ``(1 - p_y^q) / q``.

    .. math::

        L_q = \frac{1 - p_y^{q}}{q},\qquad
        L_{\mathrm{trunc}} = \begin{cases} L_q(k) & p_y \le k \\ L_q(p_y) & p_y > k\end{cases}

    q → 0 gives cross-entropy, q = 1 gives ``1 - p_y`` (half of :func:`mean_absolute_error`);
    it is the comp-sum loss with τ = 1 + q. The gradient is ``p_y^q·(p - e_y)``.
    With ``truncate_k=k`` the truncated L_q is returned: samples with ``p_y ≤ k`` get the
    constant ``L_q(k)`` and zero gradient (the paper's pruning; it alternates this with
    re-estimating which samples to prune, which is the training loop's business).

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        q: q in (0, 1]; 0.7 is the default of the official configurations.
        truncate_k: ``None`` or k in (0, 1) (the paper uses 0.5).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.generalized_cross_entropy(z, y, q=0.7).item(), 6)
        0.354614

    Reference: Zhang, Sabuncu, *Generalized Cross Entropy Loss for Training Deep Neural
    Networks with Noisy Labels*, NeurIPS 2018 (arXiv 1805.07836).
    """
    _check_generalized_cross_entropy(q=q, truncate_k=truncate_k)
    qf = float(q)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        log_p_y = log_prob_of_target(z, y)
        loss = power_log_loss(log_p_y, qf)
        if truncate_k is None:
            return loss
        k = float(truncate_k)
        floor = (1.0 - k**qf) / qf
        return torch.where(log_p_y <= math.log(k), torch.full_like(loss, floor), loss)

    return _apply("generalized_cross_entropy", input, target, weight, ignore_index, reduction,
                  rows)


# --- MAE -------------------------------------------------------------------------------------

def mean_absolute_error(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Mean absolute error for classification: ``‖e_y - p‖₁ = 2·(1 - p_y)``.

    .. math::

        \mathrm{MAE} = \sum_k |[k=y] - p_k| = 2\,(1 - p_y)

    This is Ghosh et al.'s definition. Some code (the Active-Passive Losses repository, and
    hence many re-implementations) uses the halved form ``1 - p_y``; multiply by 0.5 to match
    it. The loss is symmetric (``Σ_j MAE(z, j)`` is constant), bounded, and robust to label
    noise but slow to fit: its gradient is ``2·p_y·(p - e_y)``.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.mean_absolute_error(z, y).item(), 6)
        0.669518

    Reference: Ghosh, Kumar, Sastry, *Robust Loss Functions under Label Noise for Deep Neural
    Networks*, AAAI 2017 (arXiv 1712.09482).
    """

    def rows(z: Tensor, y: Tensor) -> Tensor:
        return 2.0 * _one_minus_p_y(log_prob_of_target(z, y))

    return _apply("mean_absolute_error", input, target, weight, ignore_index, reduction, rows)


# --- RCE and SCE -----------------------------------------------------------------------------

def _check_log_zero(fn: str, log_zero: float) -> None:
    check_number(fn, "log_zero", log_zero, high=0.0, high_open=True)


def _reverse_ce_rows(log_zero: float) -> RowLoss:
    def rows(z: Tensor, y: Tensor) -> Tensor:
        return -log_zero * _one_minus_p_y(log_prob_of_target(z, y))

    return rows


def _check_reverse_cross_entropy(*, log_zero: float) -> None:
    _check_log_zero("reverse_cross_entropy", log_zero)


def reverse_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    log_zero: float = DEFAULT_LOG_ZERO,
) -> Tensor:
    r"""Reverse cross-entropy ``-Σ_k p_k log e_{y,k}`` with ``log 0 := A``, i.e. ``-A·(1 - p_y)``.

    .. math::

        \mathrm{RCE} = -\sum_k p_k \log q_k,\ q = e_y,\ \log 0 := A
        \;\Rightarrow\; \mathrm{RCE} = -A\,(1 - p_y)

    ``A = log_zero`` defaults to ``ln(1e-4) ≈ -9.2103``, the official code's value (it clamps
    the one-hot target to [1e-4, 1]); the SCE paper reports ``A = -4``. The official code also
    clamps ``p`` to [1e-7, 1], which changes the value by at most ``|A|·C·1e-7``; the exact form
    is used here. RCE is MAE scaled by ``|A|/2``.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        log_zero: A < 0.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.reverse_cross_entropy(z, y).item(), 4)
        3.0832

    Reference: Wang, Ma, Chen, Luo, Yi, Bailey, *Symmetric Cross Entropy for Robust Learning
    with Noisy Labels*, ICCV 2019 (arXiv 1908.06112).
    """
    _check_reverse_cross_entropy(log_zero=log_zero)
    return _apply("reverse_cross_entropy", input, target, weight, ignore_index, reduction,
                  _reverse_ce_rows(float(log_zero)))


def _check_symmetric_cross_entropy(*, alpha: float, beta: float, log_zero: float) -> None:
    fn = "symmetric_cross_entropy"
    check_number(fn, "alpha", alpha, low=0.0)
    check_number(fn, "beta", beta, low=0.0)
    _check_log_zero(fn, log_zero)


def symmetric_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    alpha: float = 0.1,
    beta: float = 1.0,
    log_zero: float = DEFAULT_LOG_ZERO,
) -> Tensor:
    r"""Symmetric cross-entropy ``α·CE + β·RCE`` of Wang et al.

    .. math::

        \mathrm{SCE} = \alpha\,(-\log p_y) + \beta\,(-A)\,(1 - p_y)

    ``A = log_zero``: default ``ln(1e-4)`` as in the official code; the paper reports
    ``A = -4`` (pass ``log_zero=-4.0``). Official (α, β): MNIST (0.01, 1), CIFAR-10 (0.1, 1),
    CIFAR-100 (6, 0.1).

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        alpha: weight of CE, ≥ 0.
        beta: weight of RCE, ≥ 0.
        log_zero: A < 0.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.symmetric_cross_entropy(z, y).item(), 6)
        3.124005

    Reference: Wang, Ma, Chen, Luo, Yi, Bailey, *Symmetric Cross Entropy for Robust Learning
    with Noisy Labels*, ICCV 2019 (arXiv 1908.06112).
    """
    _check_symmetric_cross_entropy(alpha=alpha, beta=beta, log_zero=log_zero)
    a, b, lz = float(alpha), float(beta), float(log_zero)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        log_p_y = log_prob_of_target(z, y)
        return -a * log_p_y - b * lz * _one_minus_p_y(log_p_y)

    return _apply("symmetric_cross_entropy", input, target, weight, ignore_index, reduction,
                  rows)


# --- normalised losses -----------------------------------------------------------------------

def _nce_rows(z: Tensor, y: Tensor) -> Tensor:
    log_p = torch.log_softmax(z, dim=1)
    log_p_y = log_p.gather(1, y.unsqueeze(1)).squeeze(1)
    # The denominator is ≤ log p_y < 0 for C ≥ 2; with C = 1 both are 0 and the clamp makes
    # the loss 0 (like CE) instead of 0/0.
    denominator = log_p.sum(dim=1).clamp(max=-torch.finfo(z.dtype).tiny)
    return log_p_y / denominator


def _ngce_rows(q: float) -> RowLoss:
    def rows(z: Tensor, y: Tensor) -> Tensor:
        log_p = torch.log_softmax(z, dim=1)
        # 1 - p_k^q, accurate near p_k = 1.
        gaps = -torch.expm1(q * log_p)
        numerator = gaps.gather(1, y.unsqueeze(1)).squeeze(1)
        # Σ_k (1 - p_k^q) ≥ C - C^{1-q} > 0 for C ≥ 2; the clamp only matters for C = 1.
        denominator = gaps.sum(dim=1).clamp(min=torch.finfo(z.dtype).tiny)
        return numerator / denominator

    return rows


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
    return _apply("normalized_cross_entropy", input, target, weight, ignore_index, reduction,
                  _nce_rows)


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
    return _apply("normalized_generalized_cross_entropy", input, target, weight, ignore_index,
                  reduction, _ngce_rows(float(q)))


# --- Active-Passive Losses -------------------------------------------------------------------

def _check_apl(
    fn: str, *, active: str, passive: str, alpha: float, beta: float, q: float, log_zero: float
) -> None:
    check_choice(fn, "active", active, ACTIVE_LOSSES)
    check_choice(fn, "passive", passive, PASSIVE_LOSSES)
    check_number(fn, "alpha", alpha, low=0.0)
    check_number(fn, "beta", beta, low=0.0)
    check_number(fn, "q", q, low=0.0, high=1.0, low_open=True)
    _check_log_zero(fn, log_zero)


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
    active_rows: RowLoss = _nce_rows if active == "nce" else _ngce_rows(float(q))
    a, b, lz = float(alpha), float(beta), float(log_zero)
    # Both passive losses are c·(1 - p_y): RCE with c = -A, MAE with c = 2.
    passive_scale = -lz if passive == "rce" else 2.0

    def rows(z: Tensor, y: Tensor) -> Tensor:
        act = active_rows(z, y)
        pas = passive_scale * _one_minus_p_y(log_prob_of_target(z, y))
        return a * act + b * pas

    return _apply(fn, input, target, weight, ignore_index, reduction, rows)


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


def _check_nce_and_mae(*, alpha: float, beta: float) -> None:
    check_number("nce_and_mae", "alpha", alpha, low=0.0)
    check_number("nce_and_mae", "beta", beta, low=0.0)


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
        >>> from losslab.functional.robust import nce_and_mae
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(nce_and_mae(z, y).item(), 6)
        0.766043

    Reference: Ma et al., *Normalized Loss Functions for Deep Learning with Noisy Labels*,
    ICML 2020 (arXiv 2006.13554).
    """
    return _apl_loss("nce_and_mae", input, target, weight, ignore_index, reduction,
                     active="nce", passive="mae", alpha=alpha, beta=beta, q=0.7,
                     log_zero=DEFAULT_LOG_ZERO)
