r"""Confidence-shaping objectives: direct coverage optimisation (DCO), a reward-shaped
next-token CE harness (``ntp_reward``) and the correctness-aware calibration loss (``ca_calib``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..._core.logit_loss import logit_loss
from ..._core.registry import Paper, register
from ..._core.validation import check_choice, check_number, check_reduction, values_checkable
from .._core.batch_level import batch_level_loss, weighted_mean
from .._core.log_complement import log1m_prob_at, target_log_prob

# Below this log(N p) (N p < 1e-13), 1 - (1 - p)^N is evaluated by its series
# N p (1 - (N-1) p / 2), whose neglected term is O((N p)^2) relative: below 1e-26.
# Above it, N log(1 - p) is at least ~1e-13 in magnitude, so log(1 - exp(N log(1 - p)))
# is accurate (log(1 - p) itself comes from a masked logsumexp / log1p, exact to rounding).
_SMALL_LOG_NP = -30.0


def _check_dco(*, n: float) -> None:
    check_number("dco", "n", n, low=1.0)


def _log1mexp(a: Tensor) -> Tensor:
    """log(1 - exp(a)) for a < 0 (Maechler's switch at -log 2)."""
    near_zero = a > -math.log(2.0)
    a_near = torch.where(near_zero, a, torch.full_like(a, -1.0)).clamp(max=-1e-30)
    a_far = torch.where(near_zero, torch.full_like(a, -1.0), a)
    return torch.where(near_zero, torch.log(-torch.expm1(a_near)), torch.log1p(-torch.exp(a_far)))


def _log_coverage(z: Tensor, y: Tensor, n: float) -> tuple[Tensor, Tensor, Tensor]:
    """(log C_N, log p, log(1 - p)) with C_N = 1 - (1 - p)^N, p = softmax(z)_y, C >= 2."""
    lp = target_log_prob(z, y)
    l1m = log1m_prob_at(z, y, lp)
    log_n = math.log(n)
    small = lp + log_n < _SMALL_LOG_NP
    big_branch = _log1mexp(n * torch.where(small, torch.full_like(l1m, -1.0), l1m))
    p_small = torch.exp(torch.where(small, lp, torch.full_like(lp, _SMALL_LOG_NP - log_n)))
    small_branch = log_n + lp + torch.log1p(-(n - 1.0) * p_small / 2.0)
    return torch.where(small, small_branch, big_branch), lp, l1m


def dco(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    n: float = 16.0,
) -> Tensor:
    r"""Direct coverage optimisation: the negative log pass@N coverage of the correct answer.

    .. math::

        \ell = -\log\big(1 - (1 - \hat p)^N\big),\qquad \hat p = \mathrm{softmax}(z)_y,
        \qquad \nabla_z \ell = F(N, \hat p)\,(p - e_y),\quad
        F = \frac{N \hat p (1-\hat p)^{N-1}}{1 - (1-\hat p)^N}

    N = 1 is exactly CE; F → 1 as p̂ → 0 and F → 0 as p̂ → 1 (N > 1), so confident examples stop
    being pushed. The factor is exposed by :func:`dco_gradient_factor`. 1 − p̂ is computed as a
    masked logsumexp and tiny N p̂ uses the series N p̂(1 − (N−1)p̂/2), so the loss is finite at any
    logit scale. The paper ties N to the test-time budget (1…4096) and gives no default; 16 is
    one of the blog's budgets. The CoT / proof-tree variants are not implemented (unverified).

    For sequences, p̂ is the product of token probabilities; pass per-sequence summed log-probs
    through a (N, 2) logit pair (0, log p̂ − log(1 − p̂)) or use the factor with a token-level CE.

    Example:
        >>> import torch, losslab.functional as LF
        >>> round(LF.dco(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([2]), n=4).item(), 5)
        1.15727

    Reference: Chen, Raventós, Cheng, Ganguli, Druckmann, *Rethinking Fine-Tuning when Scaling
    Test-Time Compute: Limiting Confidence Improves Mathematical Reasoning*, NeurIPS 2025
    (arXiv 2502.07154).
    """
    _check_dco(n=n)
    nn_ = float(n)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        if nn_ == 1.0:
            return -target_log_prob(z, y)
        if z.shape[1] == 1:
            return z.sum(1) * 0.0  # p_y = 1: coverage 1, loss 0
        return -_log_coverage(z, y, nn_)[0]

    return logit_loss(
        "dco",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    dco,
    name="dco",
    module="DirectCoverage",
    check=_check_dco,
    family="confidence",
    paper=Paper(
        "Rethinking Fine-Tuning when Scaling Test-Time Compute: Limiting Confidence Improves "
        "Mathematical Reasoning",
        2025,
        authors="Chen, Raventós, Cheng, Ganguli, Druckmann",
        arxiv="2502.07154",
    ),
    invalid_hyperparameters=({"n": 0.5},),
)


def dco_gradient_factor(input: Tensor, target: Tensor, *, n: float = 16.0) -> Tensor:
    r"""The DCO gradient factor F(N, p̂) = N p̂ (1 − p̂)^{N−1} / (1 − (1 − p̂)^N) per row.

    ∇_z dco = F · ∇_z CE row by row. Returns (N,) or (N, d1, ...) like the target, detached;
    positions whose target is -100 get 0.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[2.0, 1.0, 0.0]])
        >>> round(LF.dco_gradient_factor(z, torch.tensor([0]), n=4).item(), 6)
        0.101094
    """
    _check_dco(n=n)
    nn_ = float(n)

    def rows(z: Tensor, y: Tensor) -> Tensor:
        if nn_ == 1.0:
            return torch.ones_like(z[:, 0])
        if z.shape[1] == 1:
            return torch.zeros_like(z[:, 0])
        log_c, lp, l1m = _log_coverage(z, y, nn_)
        return torch.exp(math.log(nn_) + lp + (nn_ - 1.0) * l1m - log_c)

    with torch.no_grad():
        return logit_loss(
            "dco_gradient_factor",
            input,
            target,
            weight=None,
            ignore_index=-100,
            reduction="none",
            rows=rows,
        )


def _check_ntp_reward(
    *, beta: float, top_k: int, top_reward: float, tail_reward: float, prob_floor: float
) -> None:
    fn = "ntp_reward"
    check_number(fn, "beta", beta)
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise TypeError(f"{fn}: top_k must be an int, got {type(top_k).__name__}")
    if top_k < 0:
        raise ValueError(f"{fn}: top_k must be >= 0, got {top_k}")
    check_number(fn, "top_reward", top_reward)
    check_number(fn, "tail_reward", tail_reward)
    check_number(fn, "prob_floor", prob_floor, low=0.0, high=1.0, low_open=True)


def ntp_reward(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    beta: float = -0.25,
    top_k: int = 0,
    top_reward: float = 0.0,
    tail_reward: float = 0.0,
    prob_floor: float = 1e-6,
) -> Tensor:
    r"""Reward-shaped next-token CE: a policy-gradient reading of CE with a β-scaled positive
    reward and rank-aware negative rewards (harness for "Diversity or Precision?").

    .. math::

        \ell = -\sum_a \mathrm{sg}[\pi(a)\,r(a)]\,\log\pi(a),\quad
        r(y) = \frac{g_\beta(\pi(y))}{\pi(y)},\ g_\beta(\pi) = \pi^{-\beta},\quad
        r(a) = \lambda_{top}\ (a \in \mathrm{TopK}(\pi)\setminus\{y\}),\ \lambda_{tail}\ \text{else}

    with π = softmax(z) and sg the stop-gradient. The value returned is the potential whose
    gradient is exactly this estimator — (1 − π_y^{−β})/(−β) for the target (−log π_y at
    β = 0) and −Σ_a r(a) π(a) for the negatives — so gradcheck and second-order tools see a
    consistent function. CE is the case r(y) = 1/π(y), r(a) = 0:
    **β = 0, top_reward = tail_reward = 0 reproduces CE exactly** in value and gradient.
    The target weight π_y^{−β} makes the population optimum π ∝ f^{1/(1+β)} for label
    frequencies f: β < 0 ("precision", the paper's best β = −0.25) down-weights
    low-probability targets and gives a lower-entropy distribution, β > 0 ("diversity") a
    higher-entropy one. ``top_reward`` > 0 is a bonus for the top-k plausible negatives (TopK
    over all classes, the target excluded), ``tail_reward`` < 0 a penalty on the rest.
    ``prob_floor`` applies only for β > 0, where π^{−β} grows without bound as π → 0: the
    weight is capped at π_min^{−β} (the target term continues linearly in log π below it), so
    the loss stays finite at any logit scale. For β ≤ 0 it is unused.

    **Unverified** (the method section and code were not available): the form of g_β (we use a
    power of π, signed so that β < 0 lowers the entropy as the paper states), k, the negative
    coefficients and any normalisation. Only the structure, the CE reduction and β = −0.25 are
    from the paper's abstract and summaries; there are no claimed defaults for top_k /
    top_reward / tail_reward (neutral 0 here).

    Example:
        >>> import torch, losslab.functional as LF
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(LF.ntp_reward(z, y, beta=0.0).item(), 6)  # = CE
        0.407606

    Reference: Wu et al., *Diversity or Precision? A Deep Dive into Next Token Prediction*,
    2025 (arXiv 2512.22955).
    """
    _check_ntp_reward(
        beta=beta,
        top_k=top_k,
        top_reward=top_reward,
        tail_reward=tail_reward,
        prob_floor=prob_floor,
    )
    b, floor = float(beta), math.log(float(prob_floor))
    e = -b  # exponent of the target weight pi_y^e
    shaped_negatives = top_reward != 0.0 or tail_reward != 0.0

    def rows(z: Tensor, y: Tensor) -> Tensor:
        logp = torch.log_softmax(z, dim=1)
        lp_y = logp.gather(1, y.unsqueeze(1)).squeeze(1)
        if b == 0.0:
            loss = -lp_y
        elif e > 0.0:
            # beta < 0: (1 - pi^e)/e has gradient -pi^e * grad log pi, the sg-reward
            # estimator; pi^e <= 1, so no floor is needed.
            loss = -torch.expm1(e * lp_y) / e
        else:
            # beta > 0: pi^e (e < 0) is unbounded as pi -> 0; below the floor the term
            # continues linearly in log pi with the floor's slope.
            u = torch.clamp(lp_y, min=floor)
            w = torch.exp(e * u)
            loss = (1.0 - w) / e - w * (lp_y - u)
        if shaped_negatives:
            p = logp.exp()
            is_y = torch.zeros_like(z, dtype=torch.bool).scatter_(1, y.unsqueeze(1), True)
            k = min(top_k, z.shape[1])
            is_top = torch.zeros_like(is_y)
            if k > 0:
                is_top.scatter_(1, z.detach().topk(k, dim=1).indices, True)
            reward = torch.where(is_top, float(top_reward), float(tail_reward))
            # sum_a r_a pi_a has gradient sum_a r_a pi_a grad log pi_a (r fixed between swaps).
            loss = loss - torch.where(is_y, 0.0, reward * p).sum(1)
        return loss

    return logit_loss(
        "ntp_reward",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        rows=rows,
    )


register(
    ntp_reward,
    name="ntp-reward",
    module="RewardShapedNextToken",
    check=_check_ntp_reward,
    family="confidence",
    paper=Paper(
        "Diversity or Precision? A Deep Dive into Next Token Prediction",
        2025,
        authors="Wu et al.",
        arxiv="2512.22955",
    ),
    invalid_hyperparameters=({"top_k": -1}, {"prob_floor": 0.0}, {"beta": float("nan")}),
)


def _check_ca_calib(*, balancing: str) -> None:
    check_choice("ca_calib", "balancing", balancing, ("accuracy", "none"))


def ca_calib(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    balancing: str = "accuracy",
) -> Tensor:
    r"""Correctness-aware calibration loss: class-balanced (confidence − correctness)².

    .. math::

        c_i = 1[\arg\max z_i = y_i],\quad \mathrm{conf}_i = \max_k \mathrm{softmax}(z_i)_k,\quad
        L = \frac{\sum_i b_i (\mathrm{conf}_i - c_i)^2}{\sum_i b_i},\quad
        b_i = \begin{cases}1 - \mathrm{acc} & c_i = 1\\ \mathrm{acc} & c_i = 0\end{cases}

    ``input`` are the *calibrated* logits (e.g. z_i / T_i from a per-sample temperature head;
    temperature keeps the argmax, so correctness is that of the frozen classifier). acc is the
    batch accuracy, so the loss couples rows (batch-level reductions, see
    :mod:`losslab.functional._core.batch_level`). If the batch is all correct or all wrong every
    b_i is 0 and the plain mean is used. ``balancing="none"`` always uses the plain mean.
    Class weights multiply b_i by w_{y_i}. The official code's per-sample temperature MLP
    (12 → 5 → 1 on softmax scores of three transformed views) is the user's model, not part of
    this loss.

    Example:
        >>> import torch, losslab.functional as LF
        >>> z = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
        >>> round(LF.ca_calib(z, torch.tensor([0, 1])).item(), 6)  # (0.112064 + 0.442546) / 2
        0.277305

    Reference: Liu, Wang, Zou, Zou, Zheng, *Beyond Calibration: Correctness-aware post-hoc
    calibration* (arXiv 2404.13016); official code liuyvchi/Correctness-aware-calibration.
    """
    _check_ca_calib(balancing=balancing)
    check_reduction("ca_calib", reduction)

    def batch(z: Tensor, y: Tensor, class_weight: Tensor | None) -> Tensor:
        logp = torch.log_softmax(z, dim=1)
        top_logp, pred = logp.max(dim=1)
        correct = (pred == y).to(z.dtype)
        per_sample = (top_logp.exp() - correct).square()
        w = class_weight[y] if class_weight is not None else None
        if balancing == "accuracy":
            acc = correct.mean()
            b = torch.where(correct > 0, 1.0 - acc, acc)
            bw = b if w is None else b * w
            if not values_checkable(z):  # traced or meta: both means, then select
                return torch.where(bw.sum() > 0, weighted_mean(per_sample, bw),
                                   weighted_mean(per_sample, w))
            if bool(bw.sum() > 0):
                return weighted_mean(per_sample, bw)
        return weighted_mean(per_sample, w)

    return batch_level_loss(
        "ca_calib",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        batch=batch,
    )


register(
    ca_calib,
    name="ca-calib",
    module="CorrectnessAwareCalibration",
    check=_check_ca_calib,
    family="confidence",
    paper=Paper(
        "Beyond Calibration: Correctness-aware post-hoc calibration",
        2024,
        authors="Liu, Wang, Zou, Zou, Zheng",
        arxiv="2404.13016",
    ),
    batch_level=True,
    invalid_hyperparameters=({"balancing": "class"},),
)


__all__ = ["ca_calib", "dco", "dco_gradient_factor", "ntp_reward"]
