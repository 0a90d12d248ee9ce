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

from .._core.logit_loss import logit_loss
from .._core.validation import check_number


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
    eps = float(label_smoothing)

    def log_partition_and_logp(z: Tensor) -> tuple[Tensor, Tensor]:
        z = transform_logits(z, temperature=temperature, softcap=softcap)
        lse = torch.logsumexp(z, dim=1)
        return lse, z - lse.unsqueeze(1)

    def index_rows(z: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        lse, logp = log_partition_and_logp(z)
        w_y = w[y] if w is not None else None
        nll = -logp.gather(1, y.unsqueeze(1)).squeeze(1)
        loss = nll if w_y is None else nll * w_y
        if eps > 0.0:
            smooth = -(logp if w is None else logp * w).sum(1) / z.shape[1]
            loss = (1.0 - eps) * loss + eps * smooth
        if z_loss > 0.0:
            penalty = z_loss * lse.square()
            loss = loss + (penalty if w_y is None else penalty * w_y)
        return loss

    def soft_rows(z: Tensor, t: Tensor, w: Tensor | None) -> Tensor:
        lse, logp = log_partition_and_logp(z)
        if eps > 0.0:
            t = (1.0 - eps) * t + eps / z.shape[1]
        loss = -((t * logp) if w is None else (t * w * logp)).sum(1)
        if z_loss > 0.0:
            loss = loss + z_loss * lse.square()
        return loss

    return logit_loss(
        "cross_entropy",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        weighted_rows=index_rows,
        soft_rows=soft_rows,
    )
