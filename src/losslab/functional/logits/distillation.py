r"""Knowledge distillation on logits: temperature-scaled KD, Plackett–Luce distillation (PLD)
and multi-aspect KD (MaKD).

Teacher quantities (``teacher_logits``, ``aspect_targets``) are row-aligned extra inputs with
the layout of ``input`` — (N, Q) or (N, Q, d1, ...) — and are detached: gradients flow only
into the student's logits (and, for MaKD, the student's ``aspect_logits``). Ignored rows drop
every term of the row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import Tensor

from ..._core.logit_loss import logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import check_number, values_checkable
from .._core.log_complement import target_log_prob
from .._core.plackett_luce import ascending_pl_order, plackett_luce, stable_pl_order
from .._core.row_aligned_inputs import aligned_rows, teacher_logit_rows
from .._core.softmax_objectives import softmax_kl
from .._core.unit_interval import check_unit_interval


def _check_kd(*, temperature: float, ce_weight: float) -> None:
    check_number("kd", "temperature", temperature, low=0.0, low_open=True)
    check_number("kd", "ce_weight", ce_weight, low=0.0)


def _check_pld(*, teacher_temperature: float) -> None:
    check_number("pld", "teacher_temperature", teacher_temperature, low=0.0, low_open=True)


def _check_multi_aspect_kd(*, alpha: float, ce_weight: float) -> None:
    check_number("multi_aspect_kd", "alpha", alpha, low=0.0)
    check_number("multi_aspect_kd", "ce_weight", ce_weight, low=0.0)


def _suffix_logsumexp(s: Tensor) -> Tensor:
    """log sum_{l >= k} exp(s_l) for every k along dim 1.

    A reversed cumsum of exp(s - max) is exact (sums of positive terms) and much faster than
    ``logcumsumexp`` on CPU; rows whose tail sums underflow (logit gaps beyond the dtype's
    exponent range) fall back to ``logcumsumexp``.
    """
    m = s.detach().amax(dim=1, keepdim=True)
    sums = torch.cumsum(torch.exp(s - m).flip(1), dim=1).flip(1)
    tiny = torch.finfo(s.dtype).tiny
    small = sums < tiny
    # The where-guard keeps log(0) out of the gradient of the rows replaced below.
    out = m + torch.log(torch.where(small, torch.ones_like(sums), sums))
    bad = small.any(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().squeeze(1)
        out = out.index_put((rows,), torch.logcumsumexp(s[rows].flip(1), dim=1).flip(1))
    return out


_TEACHER = ("teacher_logits",)
_ASPECTS = ("aspect_logits", "aspect_targets")


def kd(
    input: Tensor,
    target: Tensor,
    *,
    teacher_logits: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    temperature: float = 4.0,
    ce_weight: float = 0.0,
) -> Tensor:
    r"""Knowledge distillation: T²-scaled KL from the teacher's to the student's softened softmax.

    .. math::

        \ell = T^2\,\mathrm{KL}\big(\mathrm{softmax}(t/T)\,\|\,\mathrm{softmax}(z/T)\big)
               + w_{ce}\,\mathrm{CE}(z, y)

    The T² factor keeps the gradient's scale independent of T (Hinton et al.). ``ce_weight``
    adds the hard-label CE (0 by default: pure KD; the target then only selects ignored rows).
    T = 4 is the common default of KD benchmarks (e.g. CRD, mdistiller); Hinton et al. tune it.

    Args:
        input: student logits (N, C) or (N, C, d1, ...); target: class indices.
        teacher_logits: teacher logits shaped like ``input`` (detached).
        temperature: T > 0. ce_weight: w_ce ≥ 0.

    Example:
        >>> import torch, losslab.functional as LF
        >>> s, t = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(LF.kd(s, torch.tensor([1]), teacher_logits=t, temperature=1.0).item(), 6)
        0.43226

    Reference: Hinton, Vinyals, Dean, *Distilling the Knowledge in a Neural Network*, 2015
    (arXiv 1503.02531).
    """
    _check_kd(temperature=temperature, ce_weight=ce_weight)
    T = float(temperature)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        t = teacher_logit_rows("kd", teacher_logits, input, target, ignore_index, z)
        # One block-wise KL (teacher first, detached: only the student's gradient T (p - q)
        # is computed); identical student and teacher give exactly 0.
        loss = (T * T) * softmax_kl(t, z, scale=1.0 / T)
        if ce_weight > 0.0:
            loss = loss - ce_weight * target_log_prob(z, y)
        return loss

    return logit_loss(
        "kd",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    kd,
    name="kd",
    module="KnowledgeDistillation",
    check=_check_kd,
    family="distillation",
    paper=Paper(
        "Distilling the Knowledge in a Neural Network",
        2015,
        authors="Hinton, Vinyals, Dean",
        arxiv="1503.02531",
    ),
    extra_inputs=_TEACHER,
    invalid_hyperparameters=({"temperature": 0.0}, {"ce_weight": -1.0}),
)


def pld(
    input: Tensor,
    target: Tensor,
    *,
    teacher_logits: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    teacher_temperature: float = 1.0,
) -> Tensor:
    r"""Plackett–Luce distillation: a teacher-weighted list-wise loss with the true label first.

    .. math::

        \ell = \sum_{k=1}^{C} \alpha_k\Big[-s_{\pi_k} + \log\sum_{l \ge k} e^{s_{\pi_l}}\Big],
        \qquad \alpha_k = \mathrm{softmax}(t/\tau_T)_{\pi_k}

    where π puts the true label y first and the other classes in descending teacher logit
    (ties broken by class index). α = e₁ gives CE; uniform α gives ListMLE. In the reversed
    order the suffix sums are prefix sums of exp(s − max s), computed block by block with the
    gradient (rows whose sums underflow: ``logcumsumexp``). Each row is sorted by the teacher,
    which dominates the cost: 3.1–3.4× ``F.cross_entropy`` on the CPU.

    Args:
        input: student logits; target: class indices; teacher_logits: shaped like ``input``.
        teacher_temperature: τ_T > 0 (1 on ImageNet, 4 on CIFAR-100 in the paper).

    Example:
        >>> import torch, losslab.functional as LF
        >>> s, t = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(LF.pld(s, torch.tensor([1]), teacher_logits=t).item(), 6)
        0.42902

    Reference: Bassam, Zhu, Bian, *PLD: A Choice-Theoretic List-Wise Knowledge Distillation*,
    2025 (arXiv 2506.12542).
    """
    _check_pld(teacher_temperature=teacher_temperature)
    tau = float(teacher_temperature)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        t = teacher_logit_rows("pld", teacher_logits, input, target, ignore_index, z)
        if not values_checkable(z, t):
            # Traced or meta: the plain formula in log space (autograd's gradient), without
            # the sort through NumPy and the data-dependent repairs of the fast path.
            order = stable_pl_order(t, y)
            alpha = torch.softmax(t / tau, dim=1).gather(1, order)
            s = z.gather(1, order)
            return (alpha * (torch.logcumsumexp(s, dim=1) - s)).sum(1)
        out, bad = plackett_luce(z, t, y, tau=tau)
        if bool(bad.any()):
            # Suffix sums below the dtype's range: these rows in log space (logcumsumexp).
            idx = bad.nonzero().squeeze(1)
            order = ascending_pl_order(t[idx], y[idx])
            alpha = torch.softmax(t[idx] / tau, dim=1).gather(1, order)
            s = z[idx].gather(1, order)
            exact = (alpha * (_suffix_logsumexp(s.flip(1)).flip(1) - s)).sum(1)
            out = out.index_put((idx,), exact)
        return out

    return logit_loss(
        "pld",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    pld,
    name="pld",
    module="PlackettLuceDistillation",
    check=_check_pld,
    family="distillation",
    paper=Paper(
        "PLD: A Choice-Theoretic List-Wise Knowledge Distillation",
        2025,
        authors="Bassam, Zhu, Bian",
        arxiv="2506.12542",
    ),
    extra_inputs=_TEACHER,
    invalid_hyperparameters=({"teacher_temperature": -1.0},),
)


def multi_aspect_kd(
    input: Tensor,
    target: Tensor,
    *,
    aspect_logits: Tensor,
    aspect_targets: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    alpha: float = 4.0,
    ce_weight: float = 1.0,
) -> Tensor:
    r"""Multi-aspect KD: CE on the class logits plus α × BCE on aspect logits against an
    MLLM's yes-probabilities.

    .. math::

        \ell = w_{ce}\,\mathrm{CE}(z, y) + \frac{\alpha}{Q}\sum_{q=1}^{Q}
               \mathrm{BCE}(\sigma(r_q), a_q)

    where r are the student's Q aspect logits (the extra head outputs beyond the C class
    logits) and a_q = σ(ℓ_yes − ℓ_no) the teacher's answer probability. Mean over rows gives
    the official mean over batch and aspects. Gradients flow into ``input`` and
    ``aspect_logits``; ``aspect_targets`` are detached.

    Args:
        input: class logits (N, C) or (N, C, d1, ...); target: class indices.
        aspect_logits: (N, Q[, d1, ...]) student aspect logits.
        aspect_targets: same shape, probabilities in [0, 1].
        alpha: α ≥ 0 (4.0 in the fine-grained config). ce_weight: w_ce ≥ 0 (1.0).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, r = torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([[1.0, -0.5]])
        >>> a = torch.tensor([[0.8, 0.3]])
        >>> loss = LF.multi_aspect_kd(z, torch.tensor([0]), aspect_logits=r, aspect_targets=a)
        >>> round(loss.item(), 6)
        2.515989

    Reference: Lee, Bang, Kwon, Kim, *Multi-aspect Knowledge Distillation with Large Language
    Model*, 2025 (arXiv 2501.13341).
    """
    _check_multi_aspect_kd(alpha=alpha, ce_weight=ce_weight)
    fn = "multi_aspect_kd"

    def rows(z: Tensor, y: Tensor) -> Tensor:
        r = aligned_rows(
            fn, "aspect_logits", aspect_logits, input, target, ignore_index, dtype=z.dtype
        )
        if r.shape[1] == 0:
            raise ValueError(f"{fn}: aspect_logits must have at least one aspect (Q >= 1)")
        a = aligned_rows(
            fn,
            "aspect_targets",
            aspect_targets,
            input,
            target,
            ignore_index,
            width=r.shape[1],
            dtype=z.dtype,
        ).detach()
        check_unit_interval(fn, "aspect_targets", a, requirement="be probabilities in [0, 1]")
        bce = TF.binary_cross_entropy_with_logits(r, a, reduction="none").mean(1)
        return -ce_weight * target_log_prob(z, y) + alpha * bce

    return logit_loss(
        fn,
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    multi_aspect_kd,
    name="multi-aspect-kd",
    module="MultiAspectDistillation",
    check=_check_multi_aspect_kd,
    family="distillation",
    paper=Paper(
        "Multi-aspect Knowledge Distillation with Large Language Model",
        2025,
        authors="Lee, Bang, Kwon, Kim",
        arxiv="2501.13341",
    ),
    extra_inputs=_ASPECTS,
    invalid_hyperparameters=({"alpha": -1.0}, {"ce_weight": -0.5}),
)


__all__ = ["kd", "multi_aspect_kd", "pld"]
