"""Losses that are robust to label noise: GCE, MAE, SCE and RCE.

All are functions of the softmax probabilities and share two facts that the tests check:
they are invariant to shifting the logits, and their gradient is the CE gradient
``p - e_y`` re-weighted (GCE: ``p_y^q``, MAE: ``2·p_y``, RCE: ``|A|·p_y``). Conventions
(layouts, ``weight``, ``ignore_index``, reductions) are those of
:func:`losslab.functional.cross_entropy`. The normalised losses (NCE, NGCE) and the
Active-Passive pairs live in :mod:`losslab.functional.logits.normalized`, LDR-KL and ALDR-KL in
:mod:`losslab.functional.logits.ldr`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..._core.logit_loss import RowLoss, logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import check_number
from .._core.power_loss import power_log_loss
from .._core.robust_terms import (
    DEFAULT_LOG_ZERO,
    check_log_zero,
    check_weight_factor,
    one_minus_p_y,
)
from .._core.softmax_row_stats import target_log_prob

# --- GCE -------------------------------------------------------------------------------------

def _check_generalized_cross_entropy(*, q: float, truncate_k: float | None) -> None:
    fn = "generalized_cross_entropy"
    check_number(fn, "q", q, low=0.0, high=1.0, low_open=True)
    if truncate_k is not None:
        check_number(fn, "truncate_k", truncate_k, low=0.0, high=1.0, low_open=True,
                     high_open=True)


_GCE_PAPER = Paper(
    "Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels",
    2018, authors="Zhang, Sabuncu", arxiv="1805.07836",
)
_MAE_PAPER = Paper(
    "Robust Loss Functions under Label Noise for Deep Neural Networks",
    2017, authors="Ghosh, Kumar, Sastry", arxiv="1712.09482",
)
# The SCE paper introduces both the symmetric and the reverse cross-entropy.
_SCE_PAPER = Paper(
    "Symmetric Cross Entropy for Robust Learning with Noisy Labels",
    2019, authors="Wang, Ma, Chen, Luo, Yi, Bailey", arxiv="1908.06112",
)


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
        log_p_y = target_log_prob(z, y, "generalized_cross_entropy")
        loss = power_log_loss(log_p_y, qf)
        if truncate_k is None:
            return loss
        k = float(truncate_k)
        floor = (1.0 - k**qf) / qf
        return torch.where(log_p_y <= math.log(k), torch.full_like(loss, floor), loss)

    return logit_loss("generalized_cross_entropy", input, target, weight=weight,
                      ignore_index=ignore_index, reduction=reduction, rows=rows)


register(generalized_cross_entropy, name="gce", module="GeneralizedCrossEntropy",
         check=_check_generalized_cross_entropy, family="robust", paper=_GCE_PAPER,
         invalid_hyperparameters=({"q": 0.0}, {"q": 1.5}, {"q": -0.3}, {"truncate_k": 1.0},
                                  {"truncate_k": 0.0}))


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
        return 2.0 * one_minus_p_y(target_log_prob(z, y, "mean_absolute_error"))

    return logit_loss("mean_absolute_error", input, target, weight=weight,
                      ignore_index=ignore_index, reduction=reduction, rows=rows)


register(mean_absolute_error, name="mae", module="MeanAbsoluteError", family="robust",
         paper=_MAE_PAPER)


# --- RCE and SCE -----------------------------------------------------------------------------

def _reverse_ce_rows(log_zero: float) -> RowLoss:
    def rows(z: Tensor, y: Tensor) -> Tensor:
        return -log_zero * one_minus_p_y(target_log_prob(z, y, "reverse_cross_entropy"))

    return rows


def _check_reverse_cross_entropy(*, log_zero: float) -> None:
    check_log_zero("reverse_cross_entropy", log_zero)


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
    return logit_loss("reverse_cross_entropy", input, target, weight=weight,
                      ignore_index=ignore_index, reduction=reduction,
                      rows=_reverse_ce_rows(float(log_zero)))


register(reverse_cross_entropy, name="rce", module="ReverseCrossEntropy",
         check=_check_reverse_cross_entropy, family="robust", paper=_SCE_PAPER,
         invalid_hyperparameters=({"log_zero": 0.0},))


def _check_symmetric_cross_entropy(*, alpha: float, beta: float, log_zero: float) -> None:
    fn = "symmetric_cross_entropy"
    check_weight_factor(fn, "alpha", alpha)
    check_weight_factor(fn, "beta", beta)
    check_log_zero(fn, log_zero)


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
        log_p_y = target_log_prob(z, y, "symmetric_cross_entropy")
        return -a * log_p_y - b * lz * one_minus_p_y(log_p_y)

    return logit_loss("symmetric_cross_entropy", input, target, weight=weight,
                      ignore_index=ignore_index, reduction=reduction, rows=rows)


register(symmetric_cross_entropy, name="sce", module="SymmetricCrossEntropy",
         check=_check_symmetric_cross_entropy, family="robust", paper=_SCE_PAPER,
         invalid_hyperparameters=({"alpha": -0.1}, {"beta": -1.0}, {"log_zero": 0.0},
                                  {"log_zero": 4.0}))


__all__ = [
    "generalized_cross_entropy",
    "mean_absolute_error",
    "reverse_cross_entropy",
    "symmetric_cross_entropy",
]
