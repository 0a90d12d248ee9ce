r"""ICNN loss of "SuSana Distancia" (2023): ``-log`` of an intra-/inter-class nearest-neighbour score.

Every anchor (row of ``embeddings``) looks at its nearest neighbours among the references
(default: the other rows of the batch). The ICNN score :math:`s \in (0, 1]` is high when the
neighbours share the anchor's class, sit close compared with the nearest other-class
neighbour, and other-class neighbours are far; the loss is :math:`L = -\log s`.

``score="modified"`` (default; the score the authors' loss code calls). With the anchors'
sorted neighbour distances :math:`d_{i1} \le d_{i2} \le \dots`, :math:`S_i` / :math:`D_i` the
same- / other-class neighbours among the first :math:`k`:

.. math::

    \delta_i &= \min\{d_{ij} : j \le k_s,\ y_j \ne y_i\}\ (\infty \text{ if none}),\qquad
    \rho_{ij} = \frac{d_{ij}/\delta_i}{\max(1, \max_{l \le k} d_{il}/\delta_i)}
              = \frac{d_{ij}}{\max(\delta_i, \max_{l \le k} d_{il})} \\
    \lambda_{\text{intra}} &= 1 - \operatorname{mean}_{i: S_i \ne \emptyset}
        \operatorname{mean}_{j \in S_i} \rho_{ij},\qquad
    \lambda_{\text{inter}} = \operatorname{mean}_{i: D_i \ne \emptyset}
        \operatorname{mean}_{j \in D_i} \frac{d_{ij}}{\max_{i', j' \in D_{i'}} d_{i'j'}}
        \quad (1 \text{ if no } D_i \text{ is non-empty}) \\
    \gamma &= \frac1N \sum_i \frac{|S_i|}{k},\qquad
    s = \tfrac12\big(\tfrac12(\lambda_{\text{intra}} + \lambda_{\text{inter}}) + \gamma\big).

:math:`k_s` (``search_k``, default :math:`k + 1`) is the window searched for
:math:`\delta_i`; :math:`\lambda_{\text{intra}} = 1` when no anchor has a same-class neighbour.
With fewer than :math:`k + 2` references per anchor, :math:`k` is lowered to the references
minus one and :math:`\gamma = 1` (as in the code). :math:`\rho_{ij} = 0` when no
other-class neighbour is found, and :math:`\rho_{ij} = 1` when :math:`\delta_i` and every
distance of the row are 0 (coincident embeddings, e.g. collapsed features at initialisation;
the right-hand form above keeps :math:`\delta_i = 0` finite otherwise). :math:`s > 0` (if no
anchor has a same-class neighbour, :math:`\lambda_{\text{intra}} = 1`), so the loss is finite;
it is 0 when each anchor's first :math:`k_s` neighbours all share its class.

``score="original"`` (the older ICNN score function of the same code, from the authors'
2021 feature-selection work): per-row min-max normalised distances
:math:`\hat d_{ij} = (d_{ij} - \min_l d_{il}) / (\max_l d_{il} - \min_l d_{il})`,
:math:`\Lambda_i = \sum_{j \in S_i} (1 - \hat d_{ij}) + \sum_{j \in D_i} \hat d_{ij}`,
:math:`\lambda = \frac1N \sum_i (\Lambda_i / \max_l \Lambda_l)^{1/p}`,
:math:`\gamma = \frac1N \sum_i (|S_i| / k)^{1/r}`, :math:`s = (\lambda + \gamma) / 2`
(if :math:`k` exceeds the references, it becomes 3 as in the code, capped at the references).

Provenance. From the paper (abstract, the only part that could be read here): ICNN is a
score built from inter- and intra-class nearest-neighbour distances that rates the quality
of the embeddings, used as a loss. From code (``algorithms/icnn_loss.py``, identical in
maumruiz/FSL-Loss and in the history of maumruiz/FewShot-KidneyStones): both score
functions, ``k = 4``, ``ipc = k + 1`` (our ``search_k``), ``p = r = 2``, the loss
``-log(score)``, and the clamping rules. Unverified: which of the two scores and which
``k`` the paper's equations state (its method section was not readable here).

Deviations from the code, on purpose: (1) with a separate reference set the code still drops
each anchor's nearest reference (it assumes the nearest is the anchor itself); here only the
anchor itself is excluded, and only when the references are the batch; (2) exact distances
and exact means instead of the code's ``1e-6``/``1e-7`` guards (0/0 is taken as 0);
(3) the code's third "omega" term is commented out there and absent here.

Reference: Mendez-Ruiz et al., *SuSana Distancia is all you need: Enforcing class separability
in metric learning via two novel distance-based loss functions for few-shot image
classification*, 2023 (arXiv 2305.09062).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.registry import Paper, register
from ..._core.validation import check_choice, check_number, values_checkable
from .._core.distances import safe_divide, similarity_matrix
from .._core.pair_batch import PairBatch, check_pair_batch

SCORES = ("modified", "original")
ICNN_DISTANCES = ("euclidean", "sqeuclidean", "cosine", "manhattan", "chebyshev")


def _check_count(fn: str, name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{fn}: {name} must be >= {low}, got {value}")
    return value


def _check_icnn(
    *, k: int, search_k: int | None, score: str, p: float, r: float, distance: str
) -> None:
    fn = "icnn_loss"
    _check_count(fn, "k", k, 1)
    if search_k is not None:
        _check_count(fn, "search_k", search_k, k)
    check_choice(fn, "score", score, SCORES)
    check_number(fn, "p", p, low=1.0)
    check_number(fn, "r", r, low=1.0)
    check_choice(fn, "distance", distance, ICNN_DISTANCES)


def _neighbours(batch: PairBatch, distance: str, count: int) -> tuple[Tensor, Tensor]:
    """Sorted distances (N, count) to each anchor's nearest references and whether each
    neighbour shares the anchor's class; the anchor itself is never its own neighbour."""
    if distance == "cosine":
        dist = (1.0 - similarity_matrix(batch.x, batch.rx, batch.same, "cosine")).clamp_min(0.0)
    else:
        dist = -similarity_matrix(batch.x, batch.rx, batch.same, distance)
    if batch.same:
        eye = torch.eye(dist.shape[0], dtype=torch.bool, device=dist.device)
        dist = dist.masked_fill(eye, float("inf"))
    values, index = dist.topk(count, dim=1, largest=False)
    return values, batch.y.unsqueeze(1) == batch.ry[index]


def _modified_score(batch: PairBatch, available: int, k: int, search_k: int | None, distance: str) -> Tensor:
    clamped = k >= available - 1
    k = min(k, available - 1)
    window = min(max(k + 1 if search_k is None else search_k, k), available)
    d, same = _neighbours(batch, distance, window)
    zero = d[:, :k].sum() * 0.0  # keeps constant branches attached to the graph
    # Distance to the nearest other-class neighbour within the search window.
    delta = d.masked_fill(same, float("inf")).amin(1, keepdim=True)
    d, same = d[:, :k], same[:, :k]
    found = torch.isfinite(delta)
    # (d/δ) / max(1, max_l d_l/δ) rewritten as d / max(δ, max_l d_l): equal for δ > 0 and
    # finite when an other-class neighbour coincides with the anchor (δ = 0, e.g. collapsed
    # features at initialisation). If every distance is 0 too, ρ = 1 (the value for equal
    # positive distances): a same-class neighbour is no closer than the other class.
    den = torch.maximum(torch.where(found, delta, 0.0), d.amax(1, keepdim=True))
    ratio = torch.where(den > 0, d / torch.where(den > 0, den, 1.0), 1.0)
    ratio = torch.where(found, ratio, 0.0)
    n_same = same.sum(1)
    n_other = k - n_same
    intra_rows = (ratio * same).sum(1) / n_same.clamp_min(1)
    lam_intra = 1.0 - intra_rows.sum() / (n_same > 0).sum().clamp_min(1)
    other = d * ~same
    inter_rows = safe_divide(other, other.amax()).sum(1) / n_other.clamp_min(1)
    has_other = (n_other > 0).sum()
    lam_inter = inter_rows.sum() / has_other.clamp_min(1) + (has_other == 0).to(d.dtype)
    gamma = zero + 1.0 if clamped else (n_same.to(d.dtype) / k).mean()
    return ((lam_intra + lam_inter) / 2 + gamma) / 2 + zero


def _root(x: Tensor, order: float) -> Tensor:
    """``x ** (1/order)`` for x >= 0 with a finite (zero) gradient at 0."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0) ** (1.0 / order), 0.0)


def _original_score(batch: PairBatch, available: int, k: int, p: float, r: float, distance: str) -> Tensor:
    k = k if k <= available else min(3, available)
    d, same = _neighbours(batch, distance, k)
    low = d.amin(1, keepdim=True)
    scaled = safe_divide(d - low, d.amax(1, keepdim=True) - low)
    lam_rows = torch.where(same, 1.0 - scaled, scaled).sum(1)
    lam = _root(safe_divide(lam_rows, lam_rows.amax()), p).mean()
    gamma = _root(same.sum(1).to(d.dtype) / k, r).mean()
    return (lam + gamma) / 2


def icnn_score(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    k: int = 4,
    search_k: int | None = None,
    score: str = "modified",
    p: float = 2.0,
    r: float = 2.0,
    distance: str = "euclidean",
) -> Tensor:
    """ICNN score in (0, 1] of a labelled embedding set (higher = better separated); see
    :func:`icnn_loss` for the arguments. ``icnn_loss = -log(icnn_score)``."""
    return _score("icnn_score", embeddings, labels, ref_embeddings, ref_labels,
                  k=k, search_k=search_k, score=score, p=p, r=r, distance=distance)


def _score(
    fn: str,
    embeddings: Tensor,
    labels: Tensor,
    ref_embeddings: Tensor | None,
    ref_labels: Tensor | None,
    *,
    k: int,
    search_k: int | None,
    score: str,
    p: float,
    r: float,
    distance: str,
) -> Tensor:
    _check_icnn(k=k, search_k=search_k, score=score, p=p, r=r, distance=distance)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    if values_checkable(batch.y, batch.ry):  # the class count reads label values
        classes = torch.unique(torch.cat([batch.y, batch.ry])).numel()
        if classes < 2:
            raise ValueError(f"{fn}: labels must contain at least 2 classes, got {classes}")
    available = batch.rx.shape[0] - (1 if batch.same else 0)
    if available < 2:
        raise ValueError(
            f"{fn}: each anchor needs at least 2 neighbours, got {available} "
            f"({'embeddings' if batch.same else 'ref_embeddings'} has {batch.rx.shape[0]} rows)"
        )
    if score == "modified":
        return _modified_score(batch, available, k, search_k, distance)
    return _original_score(batch, available, k, p, r, distance)


def icnn_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    k: int = 4,
    search_k: int | None = None,
    score: str = "modified",
    p: float = 2.0,
    r: float = 2.0,
    distance: str = "euclidean",
) -> Tensor:
    """ICNN loss ``-log(s)`` of the intra-/inter-class nearest-neighbour score ``s`` (module doc).

    Args:
        embeddings: (N, D) anchors; labels: (N,) integer classes (at least 2 classes overall).
        ref_embeddings, ref_labels: (M, D), (M,) neighbours to search (e.g. the support set
            when the anchors are queries). Default: the batch itself, without self-matches.
        k: neighbours per anchor (4, the code's default).
        search_k: window searched for the nearest other-class distance, >= k
            (default k + 1; the code passes shot + query for its "full" variant).
        score: ``"modified"`` (the score the authors' loss uses) or ``"original"``.
        p, r: roots of the lambda and gamma terms, ``score="original"`` only (2, 2).
        distance: ``"euclidean"`` (the code's), ``"sqeuclidean"``, ``"cosine"``,
            ``"manhattan"`` or ``"chebyshev"``.

    Returns:
        A scalar (the score is a whole-batch quantity, so there is no ``reduction``).

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0], [4.5]])
        >>> round(icnn_loss(x, torch.tensor([0, 0, 1, 1, 0]), k=2).item(), 6)
        0.850776
    """
    return _score("icnn_loss", embeddings, labels, ref_embeddings, ref_labels,
                  k=k, search_k=search_k, score=score, p=p, r=r, distance=distance).log().neg()


register(
    icnn_loss,
    name="icnn",
    module="ICNNLoss",
    check=_check_icnn,
    family="embedding",
    paper=Paper(
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via "
        "two novel distance-based loss functions for few-shot image classification", 2023,
        authors="Mendez-Ruiz et al.", arxiv="2305.09062",
    ),
    kind="embeddings",
    batch_level=True,
    invalid_hyperparameters=({"k": 0}, {"search_k": 1}, {"score": "paper"}, {"p": 0.5},
                             {"distance": "dot"}),
    note="A whole-batch scalar (``-log`` of the intra-/inter-class nearest-neighbour "
         "score), no ``reduction``.",
)


__all__ = ["icnn_loss", "icnn_score"]
