r"""EQ-Net regularisers: weight-distribution regularisation (WDR) and group progressive
guidance (GPG) for elastic-quantization super-networks.

WDR pushes each layer's weights towards a uniform-like shape that quantizes well:

.. math::

    \mathrm{Skew}[w] = \mathbb E\Big[\big(\tfrac{w-\mu}{\sigma}\big)^3\Big],\quad
    \mathrm{Kurt}[w] = \mathbb E\Big[\big(\tfrac{w-\mu}{\sigma}\big)^4\Big],\quad
    L_{WDR} = \frac1L\sum_l a\,\mathrm{Skew}[w_l]^2 + b\,(\mathrm{Kurt}[w_l] - K_T)^2

with :math:`K_T = 1.8`. The paper weighs both terms by 1 with the population σ; the official
code uses ``a = 1, b = 0.015`` and the unbiased σ (``torch.std``) — the defaults here.

GPG distils along a sandwich of sub-networks (highest-bit H, random R, lowest-bit L):

.. math::

    L_H = CE(Y_H, y),\quad L_R = \lambda\,KL(\bar p_H \Vert p_R) + (1-\lambda)\,CE(Y_R, y),\quad
    L_L = \lambda\,KL(\bar p_R \Vert p_L) + (1-\lambda)\,CE(Y_L, y)

where :math:`\bar p` is a detached softmax (the teacher); :math:`L_{GPG} = L_H + L_R + L_L`,
λ = 0.5, KL averaged over the batch (``batchmean``).

Example (w = [0.5, -1, 2, 0, -0.3, 1.2], code weights and unbiased σ):
    >>> import torch
    >>> w = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.3, 1.2], dtype=torch.float64)
    >>> round(weight_distribution_loss([w]).item(), 7)
    0.0403218

Reference: Xu et al., *EQ-Net: Elastic Quantization Neural Networks*, ICCV 2023
(arXiv 2308.07650).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

from ..._core.validation import check_number, check_tensor


def skewness_kurtosis(weight: Tensor, *, unbiased: bool = True) -> tuple[Tensor, Tensor]:
    """Skewness and kurtosis of all entries of ``weight`` (σ floored at 1e-8), in float32+."""
    w = weight.reshape(-1).to(torch.promote_types(weight.dtype, torch.float32))
    mu = w.mean()
    sigma = w.std(correction=1 if unbiased else 0).clamp_min(1e-8)
    z = (w - mu) / sigma
    return z.pow(3).mean(), z.pow(4).mean()


def weight_distribution_loss(
    weights: Iterable[Tensor],
    *,
    target_kurtosis: float = 1.8,
    skew_weight: float = 1.0,
    kurtosis_weight: float = 0.015,
    unbiased: bool = True,
) -> Tensor:
    """WDR loss averaged over the given weight tensors (see the module docstring).

    Args:
        weights: the layers' weight tensors (e.g. :func:`quantizable_weights` of a model).
        target_kurtosis: K_T (1.8, a uniform distribution's kurtosis).
        skew_weight, kurtosis_weight: a, b (code 1.0, 0.015; paper 1, 1).
        unbiased: σ with N−1 (code) or N (paper) in the denominator.

    Example (w = [0.5, -1, 2, 0, -0.3, 1.2]; the code's settings, then the
    paper's a = b = 1 with the biased σ):
        >>> import torch
        >>> w = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.3, 1.2], dtype=torch.float64)
        >>> round(weight_distribution_loss([w]).item(), 7)
        0.0403218
        >>> round(weight_distribution_loss([w], kurtosis_weight=1.0, unbiased=False).item(), 7)
        0.0906183
    """
    fn = "weight_distribution_loss"
    k_t = check_number(fn, "target_kurtosis", target_kurtosis)
    a = check_number(fn, "skew_weight", skew_weight, low=0.0)
    b = check_number(fn, "kurtosis_weight", kurtosis_weight, low=0.0)
    terms = []
    for index, w in enumerate(weights):
        check_tensor(fn, f"weights[{index}]", w)
        if w.numel() < 2:
            raise ValueError(f"{fn}: weights[{index}] needs at least 2 entries, got {w.numel()}")
        skew, kurt = skewness_kurtosis(w, unbiased=unbiased)
        terms.append(a * skew.square() + b * (kurt - k_t).square())
    if not terms:
        raise ValueError(f"{fn}: weights is empty; pass at least one weight tensor")
    return torch.stack(terms).mean()


def quantizable_weights(model: nn.Module, *, skip_first: bool = True) -> list[Tensor]:
    """Weights of every ``Conv*d`` and ``Linear`` layer, in module order; the first is dropped
    by default, as in the official code (the input layer stays full precision)."""
    layers = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    found = [m.weight for m in model.modules() if isinstance(m, layers)]
    return found[1:] if skip_first else found


def _distill(student: Tensor, teacher: Tensor, target: Tensor, lam: float) -> Tensor:
    kl = TF.kl_div(
        TF.log_softmax(student, dim=1), TF.softmax(teacher.detach(), dim=1), reduction="batchmean"
    )
    return lam * kl + (1.0 - lam) * TF.cross_entropy(student, target)


def gpg_loss(
    logits_high: Tensor,
    logits_random: Tensor,
    logits_low: Tensor,
    target: Tensor,
    *,
    lam: float = 0.5,
) -> Tensor:
    """Group progressive guidance ``L_H + L_R + L_L`` over (N, C) logits of the three sub-nets.

    Example (y = 0, Y_H = [2, .5, -1], Y_R = [1.5, 1, -.5], Y_L = [.5, .8, 0]):
        >>> import torch
        >>> h, r, l = (torch.tensor([v]) for v in ([2.0, 0.5, -1.0], [1.5, 1.0, -0.5], [0.5, 0.8, 0.0]))
        >>> round(gpg_loss(h, r, l, torch.tensor([0])).item(), 6)
        1.177347
    """
    fn = "gpg_loss"
    lam = check_number(fn, "lam", lam, low=0.0, high=1.0)
    shapes = {tuple(check_tensor(fn, n, t).shape) for n, t in
              (("logits_high", logits_high), ("logits_random", logits_random), ("logits_low", logits_low))}
    if len(shapes) != 1 or logits_high.dim() != 2:
        raise ValueError(f"{fn}: the three logits must share one (N, C) shape, got {sorted(shapes)}")
    high = TF.cross_entropy(logits_high, target)
    return high + _distill(logits_random, logits_high, target, lam) + _distill(
        logits_low, logits_random, target, lam
    )


__all__ = ["gpg_loss", "weight_distribution_loss"]
