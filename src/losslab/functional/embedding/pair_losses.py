r"""Pair-based metric-learning losses on embeddings: Multi-Similarity (+ miner), MW, OPL.

Inputs follow pytorch-metric-learning (PML): ``embeddings`` (N, D), integer ``labels`` (N,),
optional ``ref_embeddings`` (M, D) and ``ref_labels`` (M,); without references each anchor is
compared with the rest of the batch. ``distance=`` picks the geometry from
:mod:`losslab.functional._core.distances` (``"cosine"`` and ``"dot"`` are similarities, any other
metric enters as ``-distance``). A batch with no valid pairs gives 0, still connected to the
graph, so ``backward()`` yields zero gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import Tensor

from ..._core.reduction import reduce_rows
from ..._core.registry import Paper, register
from ..._core.validation import check_choice, check_number, check_reduction
from .._core.multi_similarity_rows import multi_similarity_rows
from .._core.pair_batch import check_metric, check_pair_batch, is_similarity

PairIndices = tuple[Tensor, Tensor, Tensor, Tensor]


def _check_multi_similarity(
    *, alpha: float, beta: float, base: float, epsilon: float | None, distance: str, variant: str
) -> None:
    fn = "multi_similarity_loss"
    check_number(fn, "alpha", alpha, low=0.0, low_open=True)
    check_number(fn, "beta", beta, low=0.0, low_open=True)
    check_number(fn, "base", base)
    if epsilon is not None:
        check_number(fn, "epsilon", epsilon, low=0.0)
    check_metric(fn, distance)
    check_choice(fn, "variant", variant, ("pml", "official"))


def _ms_mine(sim: Tensor, positive: Tensor, negative: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    """MS pair mining on similarities: keep a negative above the hardest positive minus ε and a
    positive below the hardest negative plus ε (min/max over the unmined sets)."""
    inf = float("inf")
    if sim.shape[1] == 0:
        return positive, negative
    hardest_negative = sim.masked_fill(~negative, -inf).amax(dim=1, keepdim=True)
    hardest_positive = sim.masked_fill(~positive, inf).amin(dim=1, keepdim=True)
    keep_positive = positive & (sim - epsilon < hardest_negative)
    keep_negative = negative & (sim + epsilon > hardest_positive)
    return keep_positive, keep_negative


def _signed_similarity(batch_sim: Tensor, base: float, metric: str) -> tuple[Tensor, float]:
    # Distances enter as -d with base -λ, so that one formula gives PML's d - λ / λ - d.
    return (batch_sim, base) if is_similarity(metric) else (batch_sim, -base)


def _pairs_to_masks(
    fn: str, pairs: PairIndices, shape: tuple[int, int], device: torch.device
) -> tuple[Tensor, Tensor]:
    if len(pairs) != 4:
        raise ValueError(f"{fn}: pairs must be (anchor_pos, positive, anchor_neg, negative)")
    pos = torch.zeros(shape, dtype=torch.bool, device=device)
    neg = torch.zeros(shape, dtype=torch.bool, device=device)
    pos[pairs[0].long(), pairs[1].long()] = True
    neg[pairs[2].long(), pairs[3].long()] = True
    return pos, neg


def multi_similarity_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    pairs: PairIndices | None = None,
    reduction: str = "mean",
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    epsilon: float | None = None,
    distance: str = "cosine",
    variant: str = "pml",
) -> Tensor:
    r"""Multi-Similarity loss (Wang et al., CVPR 2019), optionally with its pair mining.

    .. math::

        \ell_i = \frac1\alpha\log\Big(1+\sum_{k\in\hat P_i} e^{-\alpha(S_{ik}-\lambda)}\Big)
               + \frac1\beta\log\Big(1+\sum_{k\in\hat N_i} e^{\beta(S_{ik}-\lambda)}\Big)

    With ``epsilon=None`` every pair is used (PML ``MultiSimilarityLoss``); with ``epsilon=ε``
    the MS miner keeps negatives with ``S > min_P S - ε`` and positives with
    ``S < max_N S + ε`` (PML ``MultiSimilarityMiner`` fused in, no index lists built).
    ``variant="official"`` reproduces the authors' code: positives are pairs with equal labels
    and ``S < 1 - 1e-5`` and an anchor counts only if both its kept sets are non-empty; use it
    with the official settings ``alpha=2, beta=40, base=0.5, epsilon=0.1``. ``mean`` divides
    by the number of anchors N (anchors without pairs contribute 0), as both PML and the
    official code do. ``pairs=(a1, p, a2, n)`` restricts the pairs to given index lists (a
    PML miner's output). For a distance metric, ``S - λ`` reads ``λ - d`` as in PML.

    Args:
        embeddings: (N, D); labels: (N,) integers.
        ref_embeddings, ref_labels: optional (M, D) and (M,) references.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-anchor (N,)).
        alpha, beta: positive and negative scales (> 0); base: λ.

    Example (unit-circle points at 0°, 60°, 90°, 150°, labels [0, 0, 1, 1]):
        >>> import math, torch
        >>> a = torch.tensor([0.0, 60.0, 90.0, 150.0]).deg2rad()
        >>> x = torch.stack([a.cos(), a.sin()], 1)
        >>> round(multi_similarity_loss(x, torch.tensor([0, 0, 1, 1])).item(), 6)
        0.529586

    Reference: X. Wang et al., *Multi-Similarity Loss with General Pair Weighting for Deep
    Metric Learning*, CVPR 2019 (arXiv 1904.06627).
    """
    fn = "multi_similarity_loss"
    _check_multi_similarity(
        alpha=alpha, beta=beta, base=base, epsilon=epsilon, distance=distance, variant=variant
    )
    reduction = check_reduction(fn, reduction)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    sim, lam = _signed_similarity(batch.similarity(distance), float(base), distance)
    positive, negative = batch.masks()
    if variant == "official":
        positive = (batch.y.unsqueeze(1) == batch.ry.unsqueeze(0)) & (sim.detach() < 1.0 - 1e-5)
    if pairs is not None:
        shape = (sim.shape[0], sim.shape[1])
        positive, negative = _pairs_to_masks(fn, pairs, shape, sim.device)
    if epsilon is not None:
        positive, negative = _ms_mine(sim.detach(), positive, negative, float(epsilon))
    per_anchor = multi_similarity_rows(sim, positive, negative, float(alpha), float(beta), lam)
    if variant == "official":
        per_anchor = torch.where(positive.any(1) & negative.any(1), per_anchor, 0.0)
    return reduce_rows(per_anchor, reduction=reduction)


register(
    multi_similarity_loss,
    name="ms",
    module="MultiSimilarityLoss",
    check=_check_multi_similarity,
    family="embedding",
    paper=Paper(
        "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning", 2019,
        authors="Wang, Han, Huang, Dong, Scott", arxiv="1904.06627",
    ),
    kind="embeddings",
    invalid_hyperparameters=({"alpha": 0.0}, {"beta": -1.0}, {"epsilon": -0.1},
                             {"distance": "hamming"}, {"variant": "paper"}),
    note="MS mining is optional (``epsilon``); ``variant=\"official\"`` follows the authors' "
         "code. Pass mined ``pairs=`` per call.",
)


def multi_similarity_miner(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    epsilon: float = 0.1,
    distance: str = "cosine",
) -> PairIndices:
    """MS pair mining as index lists ``(a1, p, a2, n)`` like PML's ``MultiSimilarityMiner``.

    Keeps positive (a1, p) with ``S < max_N S + ε`` and negative (a2, n) with
    ``S > min_P S - ε``; pairs come in row-major order. Pass the result as ``pairs=`` to
    :func:`multi_similarity_loss` (or set its ``epsilon`` to mine inside the loss).
    """
    fn = "multi_similarity_miner"
    check_number(fn, "epsilon", epsilon, low=0.0)
    check_metric(fn, distance)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    with torch.no_grad():
        sim = batch.similarity(distance)
        positive, negative = batch.masks()
        keep_pos, keep_neg = _ms_mine(sim, positive, negative, float(epsilon))
    a1, p = torch.where(keep_pos)
    a2, n = torch.where(keep_neg)
    return a1, p, a2, n


def _check_mw(*, temperature: float, distance: str) -> None:
    check_number("mw_loss", "temperature", temperature, low=0.0, low_open=True)
    check_metric("mw_loss", distance)


def mw_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 0.01,
    distance: str = "cosine",
    chunk_size: int = 4096,
) -> Tensor:
    r"""Mann-Whitney (MW) loss: BCE over every positive-negative score difference in the batch.

    .. math::

        \ell_i = \sum_{j\in P_i}\ \sum_{s^-\in S^-} \log\big(1+e^{-(s_{ij}-s^-)/\tau}\big),
        \qquad L = \frac1N\sum_i \ell_i

    where :math:`S^-` pools the negative scores of *all* anchors (the global, AUC-consistent
    estimator; compare InfoNCE, which uses row i only). For retrieval, pass queries as
    ``embeddings`` with their passage ids as ``labels`` and passages (positives and hard
    negatives) as ``ref_embeddings``/``ref_labels``. ``mean`` divides by N (a sum, not a mean,
    over negatives, as in the paper). Memory is bounded by ``chunk_size`` positives at a time.

    Args:
        embeddings: (N, D) queries; labels: (N,).
        ref_embeddings, ref_labels: (M, D), (M,) passages (default: the batch itself).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per-anchor (N,)).
        temperature: τ > 0 (paper: 0.01).

    Example (scores [[0.9, 0.3], [0.2, 0.6]] as dot products, τ = 1):
        >>> import torch
        >>> q, p = torch.eye(2), torch.tensor([[0.9, 0.2], [0.3, 0.6]])
        >>> ids = torch.tensor([0, 1])
        >>> round(mw_loss(q, ids, ref_embeddings=p, ref_labels=ids, temperature=1.0,
        ...               distance="dot").item(), 6)
        0.954022

    Reference: Sheikholeslami et al., *Optimizing What Matters: AUC-Driven Learning for Robust
    Neural Retrieval*, 2025 (arXiv 2510.00137).
    """
    fn = "mw_loss"
    _check_mw(temperature=temperature, distance=distance)
    reduction = check_reduction(fn, reduction)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    sim = batch.similarity(distance) / temperature
    positive, negative = batch.masks()
    negatives = sim[negative]
    rows, cols = torch.where(positive)
    pos_scores = sim[rows, cols]
    step = max(1, int(chunk_size))
    per_pair = [
        TF.softplus(negatives.unsqueeze(0) - pos_scores[i : i + step].unsqueeze(1)).sum(1)
        for i in range(0, pos_scores.shape[0], step)
    ]
    pair_loss = torch.cat(per_pair) if per_pair else pos_scores
    per_anchor = sim.new_zeros(sim.shape[0]).index_add(0, rows, pair_loss)
    # Ties the result to the graph when no pair exists, so backward() gives zero gradients.
    per_anchor = per_anchor + 0.0 * sim.sum()
    return reduce_rows(per_anchor, reduction=reduction)


register(
    mw_loss,
    name="mw",
    module="MWLoss",
    check=_check_mw,
    family="embedding",
    paper=Paper(
        "Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval", 2025,
        authors="Sheikholeslami et al.", arxiv="2510.00137",
    ),
    kind="embeddings",
    options=("chunk_size",),  # memory, not the loss: a construction option only
    invalid_hyperparameters=({"temperature": 0.0}, {"temperature": -1.0}),
)


def _check_opl(*, gamma: float, negative_abs: str) -> None:
    check_number("orthogonal_projection_loss", "gamma", gamma, low=0.0)
    check_choice("orthogonal_projection_loss", "negative_abs", negative_abs, ("outside", "inside", "none"))


def orthogonal_projection_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    gamma: float = 0.5,
    negative_abs: str = "outside",
) -> Tensor:
    r"""Orthogonal Projection Loss (OPL): pull same-class unit features together, push other
    classes towards orthogonality. Add it to a classification loss: ``CE + λ·OPL`` (λ = 1).

    .. math::

        s = \operatorname{mean}_{i\ne j,\,y_i=y_j}\langle\hat f_i,\hat f_j\rangle,\quad
        d = \operatorname{mean}_{y_i\ne y_j}\langle\hat f_i,\hat f_j\rangle,\quad
        L = (1-s) + \gamma\,|d|

    ``negative_abs``: ``"outside"`` = the paper's :math:`|d|`; ``"inside"`` = mean of
    :math:`|\langle\cdot\rangle|` (the CIFAR/ImageNet code); ``"none"`` = :math:`d` (the root
    ``loss.py``, γ = 0.5). A batch without positive (negative) pairs has s = 0 (d = 0), as
    in the code.

    Example (features (1,0), (0.6,0.8), (0,1), labels [0, 0, 1]):
        >>> import torch
        >>> f = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> round(orthogonal_projection_loss(f, torch.tensor([0, 0, 1])).item(), 6)
        0.6

    Reference: Ranasinghe et al., *Orthogonal Projection Loss*, ICCV 2021 (arXiv 2103.14021).
    """
    fn = "orthogonal_projection_loss"
    _check_opl(gamma=gamma, negative_abs=negative_abs)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    dots = batch.similarity("cosine")
    positive, negative = batch.masks()
    pos_f, neg_f = positive.to(dots.dtype), negative.to(dots.dtype)
    s = (dots * pos_f).sum() / pos_f.sum().clamp_min(1.0)
    neg_values = dots.abs() if negative_abs == "inside" else dots
    d = (neg_values * neg_f).sum() / neg_f.sum().clamp_min(1.0)
    if negative_abs == "outside":
        d = d.abs()
    return (1.0 - s) + gamma * d


register(
    orthogonal_projection_loss,
    name="opl",
    module="OrthogonalProjectionLoss",
    check=_check_opl,
    family="embedding",
    paper=Paper("Orthogonal Projection Loss", 2021, authors="Ranasinghe et al.", arxiv="2103.14021"),
    kind="embeddings",
    invalid_hyperparameters=({"gamma": -0.5}, {"negative_abs": "both"}),
    note="Add it to a classification loss on the penultimate features "
         "(:class:`losslab.nn.WithOPL`).",
)


__all__ = ["multi_similarity_loss", "multi_similarity_miner", "mw_loss", "orthogonal_projection_loss"]
