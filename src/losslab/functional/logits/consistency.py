r"""Consistency losses between two predictions of unlabelled data: symmetric CE to a teacher
(RMT), LegoGCD's local entropy regulariser (LER) and dual-view KL (DKL), TraCoCo's cross-model
confident binary CE (CBC).

These losses use no labels: ``target`` only marks ignored rows (``ignore_index``) and selects
the class weight ``w_y`` of a row; pass any valid class (e.g. zeros) otherwise. Second
predictions are row-aligned extra inputs shaped like ``input``; a ``teacher_logits`` input is
detached, a ``view_logits`` input (another view through the same student) is not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.logit_loss import logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import (
    check_choice,
    check_class_weight,
    check_number,
    check_tensor,
    flatten_logits,
)
from .._core.batch_level import batch_level_loss, weighted_mean
from .._core.log_complement import log1m_prob_at, log1m_softmax, target_log_prob
from .._core.row_aligned_inputs import logits_like_rows, teacher_logit_rows
from .._core.row_blocks import block_slices
from .._core.softmax_objectives import (
    selected_self_adjusted_entropy,
    softmax_kl,
    student_teacher_symmetric_ce,
)

_TEACHER = ("teacher_logits",)
_VIEW = ("view_logits",)
LEGOGCD = Paper(
    "Solving the Catastrophic Forgetting Problem in Generalized Category Discovery",
    2024,
    authors="Cao, Zheng, Wang, Yang",
    arxiv="2501.05272",
)


def sce_consistency(
    input: Tensor,
    target: Tensor,
    *,
    teacher_logits: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Symmetric cross-entropy between student and teacher predictions (Robust Mean Teacher).

    .. math::

        \mathrm{SCE}(z_s, z_t) = -\tfrac12\sum_c p_{t,c}\log p_{s,c}
                                 -\tfrac12\sum_c p_{s,c}\log p_{t,c}

    RMT's student–teacher loss averages it over the clean and the augmented student view,
    ``0.5 * sce_consistency(z_s(x), ., teacher_logits=z_t(x)) + 0.5 * sce_consistency(z_s(x~), ...)``
    (the official ``symmetric_entropy``'s four ¼ terms). The teacher is detached.

    Example:
        >>> import torch, losslab.functional as LF
        >>> zs, zt = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.5, 0.5, 0.0]])
        >>> round(LF.sce_consistency(zs, torch.tensor([0]), teacher_logits=zt).item(), 6)
        1.129843

    Reference: Döbler, Marsden, Yang, *Robust Mean Teacher for Continual and Gradual Test-Time
    Adaptation*, CVPR 2023 (arXiv 2211.13081); mariodoebler/test-time-adaptation.
    """

    def rows(z: Tensor, y: Tensor) -> Tensor:
        t = teacher_logit_rows("sce_consistency", teacher_logits, input, target, ignore_index, z)
        return student_teacher_symmetric_ce(z, t)

    return logit_loss(
        "sce_consistency",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    sce_consistency,
    name="sce-consistency",
    module="SymmetricCrossEntropyConsistency",
    family="consistency",
    paper=Paper(
        "Robust Mean Teacher for Continual and Gradual Test-Time Adaptation",
        2023,
        authors="Döbler, Marsden, Yang",
        arxiv="2211.13081",
    ),
    extra_inputs=_TEACHER,
)


def _check_ler(
    *,
    prior: Tensor | None,
    num_known: int | None,
    threshold: float,
    selection_temperature: float,
    temperature: float,
    adjustment: float,
) -> None:
    fn = "ler"
    if prior is not None:
        check_tensor(fn, "prior", prior)
        if prior.dim() != 1 or bool((prior < 0).any()) or not bool(torch.isfinite(prior).all()):
            raise ValueError(f"{fn}: prior must be a finite non-negative (C,) vector")
    if num_known is not None and (
        isinstance(num_known, bool) or not isinstance(num_known, int) or num_known < 0
    ):
        raise ValueError(f"{fn}: num_known must be None or an int >= 0, got {num_known!r}")
    check_number(fn, "threshold", threshold, low=0.0, high=1.0)
    check_number(fn, "selection_temperature", selection_temperature, low=0.0, low_open=True)
    check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    check_number(fn, "adjustment", adjustment)


def ler(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    prior: Tensor | None = None,
    num_known: int | None = None,
    threshold: float = 0.7,
    selection_temperature: float = 0.1,
    temperature: float = 0.05,
    adjustment: float = 0.4,
) -> Tensor:
    r"""Local entropy regularisation (LegoGCD): sharpen confident predictions of known classes
    on unlabelled data against a logit-adjusted copy of themselves.

    .. math::

        o_i = 1\big[\max_k \mathrm{softmax}(z_i/\tau_s)_k \ge \delta\big]\,
              1\big[\arg\max_k z_{ik} < |Y_l|\big],\qquad
        \ell_i = -o_i\sum_k \mathrm{softmax}(z_i/\tau_o)_k\,
                 \log\mathrm{softmax}(z_i/\tau_o + \lambda\log\hat q)_k

    as in the official ``train.py``: the target softmax(z/τ_o) is **not** detached; q̂ is the
    EMA of the mean prediction (``prior``; uniform when None, clamped at 1e-8 before the log —
    update it yourself: q̂ ← 0.999 q̂ + 0.001 mean softmax(z)). Known classes are the first
    ``num_known`` (all when None). Defaults: δ = 0.7, τ_s = 0.1, τ_o = 0.05, λ = 0.4; the code
    weighs the term by β = 2 outside the loss. Pass unlabelled rows (the code averages over
    all 2B views, zeros included, which ``reduction="mean"`` does).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[0.6, 0.45, 0.1, 0.0]])
        >>> q = torch.tensor([0.4, 0.3, 0.2, 0.1])
        >>> round(LF.ler(z, torch.tensor([0]), prior=q, num_known=2).item(), 6)
        0.191701

    Reference: Cao, Zheng, Wang, Yang, *Solving the Catastrophic Forgetting Problem in
    Generalized Category Discovery*, CVPR 2024; official code Cliffia123/LegoGCD.
    """
    _check_ler(
        prior=prior,
        num_known=num_known,
        threshold=threshold,
        selection_temperature=selection_temperature,
        temperature=temperature,
        adjustment=adjustment,
    )

    def rows(z: Tensor, y: Tensor) -> Tensor:
        c = z.shape[1]
        if prior is not None and prior.shape[0] != c:
            raise ValueError(f"ler: prior must have shape ({c},), got {tuple(prior.shape)}")
        q = (
            torch.full((c,), 1.0 / c, dtype=z.dtype, device=z.device)
            if prior is None
            else prior.to(device=z.device, dtype=z.dtype)
        )
        shift = adjustment * torch.log(q.clamp_min(1e-8))
        return selected_self_adjusted_entropy(
            z,
            shift,
            scale=1.0 / temperature,
            selection_temperature=selection_temperature,
            threshold=threshold,
            known=c if num_known is None else num_known,
        )

    return logit_loss(
        "ler",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    ler,
    name="ler",
    module="LocalEntropyRegularization",
    check=_check_ler,
    family="consistency",
    paper=LEGOGCD,
    invalid_hyperparameters=(
        {"threshold": 1.5},
        {"temperature": 0.0},
        {"selection_temperature": -1.0},
        {"num_known": -2},
    ),
)


def _check_dkl(*, temperature: float) -> None:
    check_number("dkl", "temperature", temperature, low=0.0, low_open=True)


def dkl(
    input: Tensor,
    target: Tensor,
    *,
    view_logits: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    temperature: float = 0.1,
) -> Tensor:
    r"""Dual-view KL (LegoGCD): KL between the predictions of two augmented views.

    .. math:: \ell_i = \sum_k p_k(x_i)\log\frac{p_k(x_i)}{p_k(x'_i)},\qquad
              p = \mathrm{softmax}(z/\tau)

    ``input`` is the first view, ``view_logits`` the second (both student outputs, both get
    gradients). The paper describes DKL but the released ``train.py`` lacks it: the direction
    (first view as the reference distribution) and τ = 0.1 (the classifier's temperature) are
    our reading [unverified]; swap the arguments for the other direction.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[0.9, 0.1, 0.0, 0.2], [0.1, 0.2, 0.8, 0.0]])
        >>> v = torch.tensor([[0.8, 0.2, 0.0, 0.1], [0.2, 0.1, 0.7, 0.1]])
        >>> round(LF.dkl(z, torch.tensor([0, 0]), view_logits=v).item(), 6)  # float32 at T = 0.1
        0.00349

    Reference: Cao et al., CVPR 2024 (LegoGCD), Eq. 11–12.
    """
    _check_dkl(temperature=temperature)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        v = logits_like_rows("dkl", "view_logits", view_logits, input, target, ignore_index, z, detach=False)
        return softmax_kl(z, v, scale=1.0 / temperature)

    return logit_loss(
        "dkl",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    dkl,
    name="dkl",
    module="DualViewKL",
    check=_check_dkl,
    family="consistency",
    paper=LEGOGCD,
    extra_inputs=_VIEW,
    invalid_hyperparameters=({"temperature": 0.0},),
)


def _check_cbc(*, positive_threshold: float, negative_threshold: float, negatives: str) -> None:
    check_number("cbc", "positive_threshold", positive_threshold, low=0.0, high=1.0)
    check_number("cbc", "negative_threshold", negative_threshold, low=0.0, high=1.0)
    check_choice("cbc", "negatives", negatives, ("argmin", "all"))


def _teacher_extremes(u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(max, arg-max, min, arg-min) of softmax(u) per row, a block of rows at a time (no
    (K, C) probabilities are allocated); ties and underflowed minima as ``Tensor.max/min``
    on the probabilities resolve them."""
    parts = []
    with torch.no_grad():
        for rows in block_slices(u):
            p = torch.softmax(u[rows], 1)
            parts.append((*p.max(1), *p.min(1)))
    w_pos, y_tilde, w_neg, c_bar = (torch.cat(x) for x in zip(*parts, strict=True))
    return w_pos, y_tilde, w_neg, c_bar


def cbc(
    input: Tensor,
    target: Tensor,
    *,
    teacher_logits: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    positive_threshold: float = 0.65,
    negative_threshold: float = 0.1,
    negatives: str = "argmin",
) -> Tensor:
    r"""Cross-model confident binary CE (TraCoCo): confident pseudo-label CE plus a
    complementary-label term, each averaged over its own confident set.

    .. math::

        \tilde p = \mathrm{softmax}(u),\ w^+_i = \max_c\tilde p_{ic},\ \tilde y_i = \arg\max_c
        \tilde p_{ic},\ w^-_i = \min_c \tilde p_{ic},\ \bar c_i = \arg\min_c \tilde p_{ic}

        L = \mathrm{mean}_{w^+_i \ge \gamma^+}\big[-w^+_i\log p_{i\tilde y_i}\big]
          + \mathrm{mean}_{w^-_i < \gamma^-}\big[-w^-_i\log(1 - p_{i\bar c_i})\big]

    with p = softmax(input), u the other network's ``teacher_logits`` (detached), each term 0
    when its set is empty. Thresholds are the training calls' γ⁺ = 0.65, γ⁻ = 0.1. For two
    classes c̄ = 1 − ỹ; for C > 2 ``negatives="argmin"`` uses the least likely class and
    ``"all"`` sums the term over every class but ỹ (the official multi-class path is buggy, so
    the C > 2 intent is unverified). log(1 − p) is computed exactly from the logits (the code
    clamps 1 − p at 1e-6). The sets couple rows: batch-level reductions. ``weight`` is not
    supported (a (C,) tensor raises ``ValueError``): the terms are indexed by the teacher's ỹ
    and c̄, and ``target`` only marks ignored rows, so a class weight has no meaning here.

    Example:
        >>> import torch, losslab.functional as LF
        >>> v = torch.tensor([[2.0, -1.0], [0.2, 0.1], [-0.5, 1.5]])
        >>> u = torch.tensor([[1.5, -1.5], [0.1, 0.0], [-2.0, 1.0]])
        >>> round(LF.cbc(v, torch.zeros(3, dtype=torch.long), teacher_logits=u).item(), 6)
        0.087758

    Reference: Liu et al., *Translation Consistent Semi-supervised Segmentation for 3D Medical
    Images* (TraCoCo), 2022 (arXiv 2203.14523); yyliu01/TraCoCo ``semi_crc_loss``.
    """
    _check_cbc(
        positive_threshold=positive_threshold,
        negative_threshold=negative_threshold,
        negatives=negatives,
    )
    if weight is not None:
        # Shape errors first (the common contract), then the refusal.
        _, num_classes = flatten_logits("cbc", input)
        check_class_weight("cbc", weight, num_classes, input)
        raise ValueError(
            f"cbc: weight is not supported, got a tensor of shape {tuple(weight.shape)}; "
            "expected None (the loss is indexed by the teacher's pseudo-labels, and target "
            "only marks ignored rows)"
        )

    def batch(z: Tensor, y: Tensor, class_weight: Tensor | None) -> Tensor:
        u = teacher_logit_rows("cbc", teacher_logits, input, target, ignore_index, z)
        w_pos, y_tilde, w_neg, c_bar = _teacher_extremes(u)
        if z.shape[1] == 1:  # p = 1: no complementary class, no negative term
            pos = -w_pos * target_log_prob(z, y_tilde)
            return weighted_mean(pos, (w_pos >= positive_threshold).to(z.dtype))
        if z.shape[1] == 2:  # ties aside, argmin is 1 - argmax; make it exact
            c_bar = 1 - y_tilde
        # Plain autograd on one log-softmax (second derivatives stay available).
        logp = torch.log_softmax(z, 1)
        pos = -w_pos * logp.gather(1, y_tilde.unsqueeze(1)).squeeze(1)
        if negatives == "argmin" or z.shape[1] == 2:
            lp_bar = logp.gather(1, c_bar.unsqueeze(1)).squeeze(1)
            neg_log = log1m_prob_at(z, c_bar, lp_bar)
        else:
            log1m = log1m_softmax(z, logp.exp())
            not_pseudo = torch.ones_like(z, dtype=torch.bool).scatter_(
                1, y_tilde.unsqueeze(1), False
            )
            neg_log = torch.where(not_pseudo, log1m, 0.0).sum(1)
        neg = -w_neg * neg_log
        pos_mask = (w_pos >= positive_threshold).to(z.dtype)
        neg_mask = (w_neg < negative_threshold).to(z.dtype)
        return weighted_mean(pos, pos_mask) + weighted_mean(neg, neg_mask)

    return batch_level_loss(
        "cbc",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        batch=batch,
    )


register(
    cbc,
    name="cbc",
    module="ConfidentBinaryCrossEntropy",
    check=_check_cbc,
    family="consistency",
    paper=Paper(
        "Translation Consistent Semi-supervised Segmentation for 3D Medical Images",
        2022,
        authors="Liu, Wang, Chen, Liu, Pu, Yang, Carneiro",
        arxiv="2203.14523",
    ),
    extra_inputs=_TEACHER,
    batch_level=True,
    invalid_hyperparameters=(
        {"positive_threshold": 1.5},
        {"negative_threshold": -0.1},
        {"negatives": "some"},
    ),
)


__all__ = ["cbc", "dkl", "ler", "sce_consistency"]
