"""Losses for class imbalance: the focal loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..._core.logit_loss import logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import check_number
from .._core.softmax_row_stats import target_log_prob

ClassAlpha = Sequence[float] | Tensor | None


def _check_focal_loss(*, gamma: float, alpha: ClassAlpha) -> None:
    fn = "focal_loss"
    check_number(fn, "gamma", gamma, low=0.0)
    if alpha is None:
        return
    if isinstance(alpha, Tensor):
        values = alpha.detach().reshape(-1).tolist() if alpha.dim() == 1 else None
    elif isinstance(alpha, Sequence) and not isinstance(alpha, str):
        values = list(alpha)
    else:
        values = None
    if values is None:
        raise TypeError(
            f"focal_loss: alpha must be None or a 1-D sequence/tensor of per-class factors, "
            f"got {type(alpha).__name__}"
            + (f" of shape {tuple(alpha.shape)}" if isinstance(alpha, Tensor) else "")
        )
    for i, v in enumerate(values):
        check_number(fn, f"alpha[{i}]", v, low=0.0)


def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    gamma: float = 2.0,
    alpha: ClassAlpha = None,
) -> Tensor:
    r"""Softmax focal loss of Lin et al.: cross-entropy scaled by ``(1 - p_y)^γ``.

    .. math::

        \ell = -\,\alpha_y\,(1 - p_y)^{\gamma}\,\log p_y

    γ = 0 (and no α) is cross-entropy; larger γ down-weights well-classified samples.
    ``alpha`` is an optional per-class factor ``α_y`` (C values, e.g. inverse class
    frequencies) multiplied into each sample's loss; unlike ``weight`` it does *not* change
    the denominator of ``mean`` (which stays the row count, or ``Σ w_y`` when ``weight`` is
    also given). ``1 - p_y`` is computed as ``-expm1(log p_y)`` so that confident samples keep
    an accurate, finite gradient.

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) or (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.
        gamma: focusing parameter γ ≥ 0 (paper: 2).
        alpha: ``None`` or C non-negative per-class factors.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.focal_loss(z, y, gamma=2.0).item(), 6)
        0.045678

    Reference: Lin, Goyal, Girshick, He, Dollár, *Focal Loss for Dense Object Detection*,
    ICCV 2017 (arXiv 1708.02002).
    """
    _check_focal_loss(gamma=gamma, alpha=alpha)
    g = float(gamma)
    fn = "focal_loss"

    def rows(z: Tensor, y: Tensor) -> Tensor:
        log_p_y = target_log_prob(z, y, fn)
        loss = -log_p_y
        if g != 0.0:
            # The clamp keeps pow's derivative finite when p_y rounds to exactly 1 (γ < 1).
            one_minus = (-torch.expm1(log_p_y)).clamp(min=torch.finfo(z.dtype).tiny)
            loss = one_minus.pow(g) * loss
        if alpha is not None:
            a = torch.as_tensor(alpha, dtype=z.dtype, device=z.device)
            if a.numel() != z.shape[1]:
                raise ValueError(
                    f"{fn}: alpha must have one entry per class (C={z.shape[1]}), "
                    f"got {a.numel()}"
                )
            loss = loss * a[y]
        return loss

    return logit_loss(fn, input, target, weight=weight, ignore_index=ignore_index,
                      reduction=reduction, rows=rows)


register(
    focal_loss,
    name="focal",
    module="FocalLoss",
    check=_check_focal_loss,
    family="imbalance",
    paper=Paper(
        "Focal Loss for Dense Object Detection",
        2017,
        authors="Lin, Goyal, Girshick, He, Dollár",
        arxiv="1708.02002",
    ),
    invalid_hyperparameters=({"gamma": -1.0}, {"alpha": [1.0, -0.5, 1.0]}),
)


__all__ = ["focal_loss"]
