r"""Overlap losses: Dice (DSC), self-adjusting Dice and Tversky, per sample and per batch.

Reference: Li, Sun, Meng, Liang, Wu, Li, *Dice Loss for Data-imbalanced NLP Tasks*, ACL 2020
(arXiv 1911.02855); official code ShannonAI/dice_loss_for_NLP (``loss/dice_loss.py``).
Tversky: Salehi, Erdogmus, Gholipour, *Tversky loss function for image segmentation*, 2017.

Multi-class forms take logits (N, C) or (N, C, d1, ...) and class indices, with
p = softmax(z). Binary forms (:func:`binary_dice`, :func:`binary_tversky`) take one logit per
element and 0/1 (or soft) targets of the same shape, with p = sigmoid(z), like the official
code's binary path.

Per-sample forms (``dice``, ``self_adjusting_dice``, ``tversky``) follow the official code:
one Dice term per sample and class, summed over classes (``classes="all"``), then reduced over
samples. ``classes="target"`` keeps only the target class's term — the paper's per-instance
DSC. Batch-level forms (``dice_batch``, ``tversky_batch``) sum the products over the batch per
class first (V-Net / set-level Dice) and average the per-class losses; see
:mod:`losslab.functional._core.batch_level` for their reductions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from ..._core.logit_loss import RowLoss, logit_loss
from ..._core.reduction import reduce_rows
from ..._core.registry import Paper, register
from ..._core.validation import (
    check_choice,
    check_ignore_index,
    check_number,
    check_reduction,
    check_tensor,
    class_counts,
    values_checkable,
)
from .._core.batch_level import batch_level_loss, mean_over_classes
from .._core.binary_logits import check_binary_logits
from .._core.log_complement import log1m_softmax
from .._core.softmax_sums import softmax_column_stats, softmax_rational_sum
from .._core.unit_interval import check_unit_interval

_CLASSES = ("all", "target")


def _check_dice(
    *, smooth: float, alpha: float, square_denominator: bool, classes: str, fn: str = "dice"
) -> None:
    check_number(fn, "smooth", smooth, low=0.0, low_open=True)
    check_number(fn, "alpha", alpha, low=0.0)
    if not isinstance(square_denominator, bool):
        raise TypeError(
            f"{fn}: square_denominator must be a bool, got {type(square_denominator).__name__}"
        )
    check_choice(fn, "classes", classes, _CLASSES)


def _check_self_adjusting_dice(
    *, smooth: float, alpha: float, square_denominator: bool, classes: str
) -> None:
    _check_dice(
        smooth=smooth,
        alpha=alpha,
        square_denominator=square_denominator,
        classes=classes,
        fn="self_adjusting_dice",
    )


def _check_tversky(
    *, alpha: float, beta: float, smooth: float, classes: str, fn: str = "tversky"
) -> None:
    check_number(fn, "alpha", alpha, low=0.0)
    check_number(fn, "beta", beta, low=0.0)
    check_number(fn, "smooth", smooth, low=0.0, low_open=True)
    check_choice(fn, "classes", classes, _CLASSES)


def _adjusted_probabilities(z: Tensor, alpha: float) -> Tensor:
    """p~ = (1 - p)^alpha * p with p = softmax(z)."""
    p = torch.softmax(z, dim=1)
    if alpha == 0.0:
        return p
    if z.shape[1] == 1:
        return p * 0.0  # 1 - p is exactly 0 with a single class.
    return torch.exp(alpha * log1m_softmax(z, p)) * p


def _dice_terms(pt: Tensor, t: Tensor, smooth: float, square: bool) -> Tensor:
    """1 - (2 p~ t + g) / (p~^2 + t^2 + g) (square) or 1 - (2 p~ t + g) / (p~ + t + g)."""
    den = (pt.square() + t.square()) if square else (pt + t)
    return 1.0 - (2.0 * pt * t + smooth) / (den + smooth)


def _tversky_terms(p: Tensor, t: Tensor, alpha: float, beta: float, smooth: float) -> Tensor:
    """1 - (p t + g) / (p t + a p (1 - t) + b (1 - p) t + g)."""
    tp = p * t
    return 1.0 - (tp + smooth) / (tp + alpha * p * (1.0 - t) + beta * (1.0 - p) * t + smooth)


def _one_hot(z: Tensor, y: Tensor) -> Tensor:
    return torch.zeros_like(z).scatter_(1, y.unsqueeze(1), 1.0)


def _class_counts(z: Tensor, y: Tensor) -> Tensor:
    """n_c = number of rows with target c, as (C,) in z's dtype."""
    return class_counts(y, z.shape[1], z.dtype)


def _sum_over_classes(
    positive: Callable[[Tensor], Tensor],
    negative: Callable[[Tensor], Tensor],
    pt: Tensor,
    y: Tensor,
    classes: str,
) -> Tensor:
    """Sum per-class terms of one-hot targets without building the one-hot matrix: every
    class as a negative (t = 0, a closed form), then the target column swapped for its
    positive term (t = 1)."""
    at_y = pt.gather(1, y.unsqueeze(1)).squeeze(1)
    pos = positive(at_y)
    if classes == "target":
        return pos
    return negative(pt).sum(1) - negative(at_y) + pos


def _dice_rows(smooth: float, alpha: float, square: bool, classes: str) -> RowLoss:
    def positive(v: Tensor) -> Tensor:  # t = 1
        return 1.0 - (2.0 * v + smooth) / ((v.square() if square else v) + 1.0 + smooth)

    def negative(v: Tensor) -> Tensor:  # t = 0: 1 - g/(d + g) = d/(d + g)
        d = v.square() if square else v
        return d / (d + smooth)

    def exact_rows(z: Tensor, y: Tensor) -> Tensor:
        pt = _adjusted_probabilities(z, alpha)
        return _sum_over_classes(positive, negative, pt, y, classes)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        if classes != "all" or z.shape[1] == 1:
            return exact_rows(z, y)
        # Fast path (same sum): every class as a negative in one fused pass, then the target
        # column swapped for its positive term on (K,) vectors.
        total, py, dominant = softmax_rational_sum(
            z, y, k=1.0, m=2 if square else 1, g=smooth, alpha=alpha
        )
        # p_y < 1/2 on the rows kept here, so log1p(-p_y) is exact; the clamp keeps the
        # replaced rows' discarded gradient finite.
        pty = py if alpha == 0.0 else torch.exp(alpha * torch.log1p(-py.clamp(max=0.5))) * py
        out = total - negative(pty) + positive(pty)
        if alpha != 0.0 and not values_checkable(z):  # traced or meta: select per row
            return torch.where(dominant, exact_rows(z, y), out)
        if alpha != 0.0 and bool(dominant.any()):
            # A class at p >= 1/2 needs (1 - p)^alpha in log space: the exact path, these rows.
            idx = dominant.nonzero().squeeze(1)
            out = out.index_put((idx,), exact_rows(z[idx], y[idx]))
        return out

    return rows


DICE_PAPER = Paper(
    "Dice Loss for Data-imbalanced NLP Tasks", 2020, authors="Li et al.", arxiv="1911.02855"
)
TVERSKY_PAPER = Paper(
    "Tversky loss function for image segmentation using 3D fully convolutional deep networks",
    2017,
    authors="Salehi, Erdogmus, Gholipour",
    arxiv="1706.05721",
)
_BAD_DICE = ({"smooth": 0.0}, {"alpha": -0.5}, {"classes": "some"})
_BAD_TVERSKY = ({"alpha": -1.0}, {"beta": -1.0}, {"smooth": -1.0})


def dice(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    smooth: float = 1.0,
    alpha: float = 0.0,
    square_denominator: bool = True,
    classes: str = "all",
) -> Tensor:
    r"""Per-sample Dice loss (DSC) on softmax probabilities, summed over classes.

    .. math::

        \tilde p_c = (1-p_c)^{\alpha} p_c,\qquad
        \ell = \sum_c \Big[1 - \frac{2\tilde p_c t_c + \gamma}{\tilde p_c^2 + t_c^2 + \gamma}\Big]

    with p = softmax(z), t the one-hot target and γ = ``smooth``. This is the official code's
    ``DiceLoss`` with ``square_denominator=True`` (what all its scripts use);
    ``square_denominator=False`` uses p̃ + t in the denominator per sample (the code's
    batch-summed denominator in that mode is a quirk we do not reproduce).
    ``classes="target"`` keeps only the target class term (the paper's per-instance DSC).

    Args:
        input: logits (N, C) or (N, C, d1, ...).
        target: class indices (N,) / (N, d1, ...).
        weight, ignore_index, reduction: as in :func:`cross_entropy` (weight is ``w_y``).
        smooth: γ > 0 (scripts use 1; the code's default argument is 1e-4).
        alpha: α ≥ 0; 0 is plain Dice (see :func:`self_adjusting_dice`).
        square_denominator: squared (V-Net) or linear denominator.
        classes: ``"all"`` (sum over classes, official code) or ``"target"``.

    Example:
        >>> import torch, losslab.functional as LF
        >>> round(LF.dice(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])).item(), 6)
        0.110428

    Reference: Li et al., *Dice Loss for Data-imbalanced NLP Tasks*, ACL 2020 (arXiv 1911.02855).
    """
    _check_dice(
        smooth=smooth, alpha=alpha, square_denominator=square_denominator, classes=classes
    )
    return logit_loss(
        "dice",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=_dice_rows(float(smooth), float(alpha), square_denominator, classes),
    )


register(dice, name="dice", module="Dice", check=_check_dice, family="overlap",
         paper=DICE_PAPER, invalid_hyperparameters=_BAD_DICE)


def self_adjusting_dice(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    smooth: float = 1.0,
    alpha: float = 0.01,
    square_denominator: bool = True,
    classes: str = "all",
) -> Tensor:
    r"""Self-adjusting Dice loss: Dice on p̃ = (1 − p)^α · p, which down-weights easy samples.

    .. math::

        \ell = \sum_c \Big[1 - \frac{2\tilde p_c t_c + \gamma}{\tilde p_c^2 + t_c^2 + \gamma}\Big],
        \qquad \tilde p_c = (1-p_c)^{\alpha} p_c

    Defaults are the official scripts' (γ = 1, α = 0.01, squared denominator); arXiv v1 used
    α = 1. (1 − p_c) is computed in log space from the logits, so the loss stays
    differentiable when p_c rounds to 1. Arguments as in :func:`dice`.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(LF.self_adjusting_dice(z, torch.tensor([0])).item(), 6)
        0.112309

    Reference: Li et al., ACL 2020 (arXiv 1911.02855), ShannonAI/dice_loss_for_NLP.
    """
    _check_self_adjusting_dice(
        smooth=smooth, alpha=alpha, square_denominator=square_denominator, classes=classes
    )
    return logit_loss(
        "self_adjusting_dice",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=_dice_rows(float(smooth), float(alpha), square_denominator, classes),
    )


register(self_adjusting_dice, name="self-adjusting-dice", module="SelfAdjustingDice",
         check=_check_self_adjusting_dice, family="overlap", paper=DICE_PAPER,
         invalid_hyperparameters=_BAD_DICE)


def tversky(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
    classes: str = "all",
) -> Tensor:
    r"""Per-sample Tversky loss on softmax probabilities, summed over classes.

    .. math::

        \ell = \sum_c \Big[1 - \frac{p_c t_c + \gamma}
              {p_c t_c + a\,p_c(1-t_c) + b\,(1-p_c)t_c + \gamma}\Big]

    a = ``alpha`` weighs false positives, b = ``beta`` false negatives; a = b = 0.5 is Dice
    with a linear denominator. The official Dice repository has no Tversky; this is the
    paper form applied per class like the code's Dice (``classes="target"``: the target class
    only, the paper's per-instance form).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(LF.tversky(z, torch.tensor([0]), classes="target").item(), 6)
        0.091333

    Reference: Salehi et al., *Tversky loss function for image segmentation using 3D fully
    convolutional deep networks*, 2017 (arXiv 1706.05721); Li et al., ACL 2020.
    """
    _check_tversky(alpha=alpha, beta=beta, smooth=smooth, classes=classes)
    a, b, g = float(alpha), float(beta), float(smooth)

    def positive(v: Tensor) -> Tensor:  # t = 1: 1 - (p + g)/(p + b(1 - p) + g)
        fn_ = b * (1.0 - v)
        return fn_ / (v + fn_ + g)

    def negative(v: Tensor) -> Tensor:  # t = 0: 1 - g/(a p + g) = a p/(a p + g)
        fp = a * v
        return fp / (fp + g)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        if classes != "all":
            return _sum_over_classes(positive, negative, torch.softmax(z, dim=1), y, classes)
        # The same sum in one fused pass over the classes (negatives), target swapped after.
        total, py, _ = softmax_rational_sum(z, y, k=a, m=1, g=g)
        return total - negative(py) + positive(py)

    return logit_loss(
        "tversky",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(tversky, name="tversky", module="Tversky", check=_check_tversky, family="overlap",
         paper=TVERSKY_PAPER, invalid_hyperparameters=(*_BAD_TVERSKY, {"classes": "some"}))


def dice_batch(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    smooth: float = 1.0,
    alpha: float = 0.0,
    square_denominator: bool = True,
) -> Tensor:
    r"""Batch-level (set) Dice loss: per class over the whole batch, then averaged over classes.

    .. math::

        d_c = 1 - \frac{2\sum_i \tilde p_{ic} t_{ic} + \gamma}
                       {\sum_i \tilde p_{ic}^2 + \sum_i t_{ic}^2 + \gamma},\qquad
        L = \frac{\sum_c w_c d_c}{\sum_c w_c}

    (V-Net style with ``square_denominator=True``; p̃ as in :func:`self_adjusting_dice`).
    The rows are coupled, so reductions are batch-level: ``mean`` is L, ``sum`` is K·L for K
    kept rows and ``none`` holds L at every kept position (see
    :mod:`losslab.functional._core.batch_level`). ``weight`` weighs classes in the average over c.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
        >>> round(LF.dice_batch(z, torch.tensor([0, 1])).item(), 6)
        0.026773

    Reference: Milletari et al., *V-Net*, 2016; Li et al., ACL 2020 (arXiv 1911.02855).
    """
    _check_dice(
        smooth=smooth,
        alpha=alpha,
        square_denominator=square_denominator,
        classes="all",
        fn="dice_batch",
    )
    g, a = float(smooth), float(alpha)

    def per_class(z: Tensor, y: Tensor) -> Tensor:
        if a == 0.0:
            # sum_i p_ic^m in one fused pass; the intersection only involves target columns.
            col, py = softmax_column_stats(
                z, y, transform="square" if square_denominator else "identity"
            )
            counts = _class_counts(z, y)
            inter = torch.zeros_like(col).index_add(0, y, py)
            return 1.0 - (2.0 * inter + g) / (col + counts + g)
        pt = _adjusted_probabilities(z, a)
        t = _one_hot(z, y)
        inter = (pt * t).sum(0)
        den = (pt.square().sum(0) + t.sum(0)) if square_denominator else (pt + t).sum(0)
        return 1.0 - (2.0 * inter + g) / (den + g)

    return batch_level_loss(
        "dice_batch",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        batch=mean_over_classes(per_class),
    )


register(dice_batch, name="dice-batch", module="DiceBatch",
         check=partial(_check_dice, classes="all", fn="dice_batch"), family="overlap",
         paper=DICE_PAPER, batch_level=True, invalid_hyperparameters=_BAD_DICE[:2])


def tversky_batch(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
) -> Tensor:
    r"""Batch-level (set) Tversky loss: per class over the batch, averaged over classes.

    .. math::

        d_c = 1 - \frac{TP_c + \gamma}{TP_c + a\,FP_c + b\,FN_c + \gamma},\quad
        TP_c = \sum_i p_{ic} t_{ic},\ FP_c = \sum_i p_{ic}(1-t_{ic}),\ FN_c = \sum_i (1-p_{ic})t_{ic}

    Reductions as in :func:`dice_batch`.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
        >>> round(LF.tversky_batch(z, torch.tensor([0, 1]), alpha=0.3, beta=0.7).item(), 6)
        0.078484

    Reference: Salehi et al., 2017 (arXiv 1706.05721).
    """
    _check_tversky(alpha=alpha, beta=beta, smooth=smooth, classes="all", fn="tversky_batch")
    a, b, g = float(alpha), float(beta), float(smooth)

    def per_class(z: Tensor, y: Tensor) -> Tensor:
        # Column sums of p in one fused pass; TP only involves the target columns.
        col, py = softmax_column_stats(z, y, transform="identity")
        tp = torch.zeros_like(col).index_add(0, y, py)
        fp = col - tp
        fn = _class_counts(z, y) - tp
        return 1.0 - (tp + g) / (tp + a * fp + b * fn + g)

    return batch_level_loss(
        "tversky_batch",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        batch=mean_over_classes(per_class),
    )


register(tversky_batch, name="tversky-batch", module="TverskyBatch",
         check=partial(_check_tversky, classes="all", fn="tversky_batch"), family="overlap",
         paper=TVERSKY_PAPER, batch_level=True, invalid_hyperparameters=_BAD_TVERSKY)


# --------------------------------------------------------------------------- binary forms


def _binary_inputs(
    fn: str, input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Flatten (input, target[, weight]) elementwise and drop positions equal to ignore_index."""
    check_binary_logits(fn, input, target)
    x = input.reshape(-1).to(torch.promote_types(input.dtype, torch.float32))
    t = target.reshape(-1).to(x.dtype)
    kept = t != ignore_index
    w = None
    if weight is not None:
        check_tensor(fn, "weight", weight)
        try:
            w = torch.broadcast_to(weight, input.shape).reshape(-1).to(x.dtype)
        except RuntimeError as err:
            raise ValueError(
                f"{fn}: weight must broadcast to the input's shape {tuple(input.shape)}, "
                f"got {tuple(weight.shape)}"
            ) from err
    kt = t[kept]
    check_unit_interval(
        fn, "target values", kt, requirement="lie in [0, 1] (or equal ignore_index)"
    )
    if bool(kept.all()):
        return x, t, w, None
    return x[kept], kt, None if w is None else w[kept], kept


def _binary_reduce(
    per_elem: Tensor, w: Tensor | None, kept: Tensor | None, reduction: str, shape: torch.Size
) -> Tensor:
    if w is not None:
        per_elem = per_elem * w
    return reduce_rows(
        per_elem, reduction=reduction, row_weight=w, kept=kept, out_shape=tuple(shape)
    )


def binary_dice(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    smooth: float = 1.0,
    alpha: float = 0.0,
    square_denominator: bool = True,
) -> Tensor:
    r"""Binary (sigmoid) per-element Dice / self-adjusting Dice, the official code's binary path.

    .. math:: \tilde p = (1-\sigma(x))^{\alpha}\sigma(x),\quad
              \ell = 1 - \frac{2\tilde p t + \gamma}{\tilde p^2 + t^2 + \gamma}

    Args:
        input: logits of any shape; target: same shape, values in [0, 1] (0/1 labels or soft).
        weight: optional elementwise weights broadcastable to ``input``.
        ignore_index: positions whose target equals it are dropped.

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.665241], dtype=torch.float64))
        >>> round(LF.binary_dice(x, torch.tensor([1.0])).item(), 6)
        0.04588

    Reference: Li et al., ACL 2020 (arXiv 1911.02855).
    """
    fn = "binary_dice"
    _check_dice(
        smooth=smooth, alpha=alpha, square_denominator=square_denominator, classes="all", fn=fn
    )
    reduction = check_reduction(fn, reduction)
    ignore_index = check_ignore_index(fn, ignore_index)
    x, t, w, kept = _binary_inputs(fn, input, target, weight, ignore_index)
    p = torch.sigmoid(x)
    if alpha > 0.0:
        # log(1 - sigmoid(x)) = logsigmoid(-x), exact at saturated logits.
        p = torch.exp(float(alpha) * torch.nn.functional.logsigmoid(-x)) * p
    terms = _dice_terms(p, t, float(smooth), square_denominator)
    return _binary_reduce(terms, w, kept, reduction, input.shape)


def binary_tversky(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
) -> Tensor:
    r"""Binary (sigmoid) per-element Tversky loss.

    .. math:: \ell = 1 - \frac{pt + \gamma}{pt + a\,p(1-t) + b\,(1-p)t + \gamma},
              \quad p = \sigma(x)

    Arguments as in :func:`binary_dice`.

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.665241], dtype=torch.float64))
        >>> round(LF.binary_tversky(x, torch.tensor([1.0])).item(), 6)
        0.091333

    Reference: Salehi et al., 2017 (arXiv 1706.05721).
    """
    fn = "binary_tversky"
    _check_tversky(alpha=alpha, beta=beta, smooth=smooth, classes="all", fn=fn)
    reduction = check_reduction(fn, reduction)
    ignore_index = check_ignore_index(fn, ignore_index)
    x, t, w, kept = _binary_inputs(fn, input, target, weight, ignore_index)
    terms = _tversky_terms(torch.sigmoid(x), t, float(alpha), float(beta), float(smooth))
    return _binary_reduce(terms, w, kept, reduction, input.shape)


__all__ = [
    "binary_dice",
    "binary_tversky",
    "dice",
    "dice_batch",
    "self_adjusting_dice",
    "tversky",
    "tversky_batch",
]
