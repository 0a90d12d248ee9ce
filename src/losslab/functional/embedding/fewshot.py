r"""Few-shot metric losses: the Proto-Triplet loss of "SuSana Distancia" (2023).

Proto-Triplet is a triplet loss whose anchor is a query embedding, whose positive is the
prototype (class mean of the support embeddings) of its class and whose negative is the
*nearest* prototype of another class:

.. math::

    \ell_i = \big[\max_{c:\,y_c = y_i} d(q_i, c) - \min_{c:\,y_c\ne y_i} d(q_i, c) + m\big]_+,
    \qquad L = \frac1N\sum_i \ell_i,\quad m = 0.5,\ d = \text{Euclidean}.

Convention: the formula follows the authors' released code (``proto_triplet_loss`` in
maumruiz/FewShot-KidneyStones; the paper text itself could not be read here). That code adds
1e-6 inside the square root; this implementation uses the exact (zero-safe) distance. A query
without a same-class or without an other-class prototype contributes 0.

Reference: Mendez-Ruiz et al., *SuSana Distancia is all you need: Enforcing class separability
in metric learning via two novel distance-based loss functions for few-shot image
classification*, 2023 (arXiv 2305.09062).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.reduction import reduce_rows
from ..._core.registry import Paper, register
from ..._core.validation import check_number, check_reduction
from .._core.distances import similarity_matrix
from .._core.pair_batch import check_metric, check_pair_batch


def class_prototypes(support: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Class means of ``support`` (S, D) by integer ``labels`` (S,): returns (prototypes (C, D),
    their labels (C,)) with classes in increasing order."""
    batch = check_pair_batch("class_prototypes", support, labels)
    classes, inverse = torch.unique(batch.y, return_inverse=True)
    sums = batch.x.new_zeros(classes.shape[0], batch.x.shape[1]).index_add(0, inverse, batch.x)
    counts = torch.bincount(inverse, minlength=classes.shape[0]).to(batch.x.dtype)
    return sums / counts.unsqueeze(1), classes


def _check_proto_triplet(*, margin: float, distance: str) -> None:
    check_number("proto_triplet_loss", "margin", margin, low=0.0)
    check_metric("proto_triplet_loss", distance)


def proto_triplet_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    reduction: str = "mean",
    margin: float = 0.5,
    distance: str = "euclidean",
) -> Tensor:
    """Proto-Triplet loss of query ``embeddings`` (N, D) against class prototypes.

    Args:
        embeddings: (N, D) queries; labels: (N,).
        ref_embeddings, ref_labels: (C, D) prototypes and their labels (e.g. from
            :func:`class_prototypes` of the support set). Without them the prototypes are the
            class means of this batch.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (per query).
        margin: m >= 0 (0.5); distance: any metric of the distances module.

    Example:
        >>> import torch
        >>> q = torch.tensor([[0.0, 0.0]]); protos = torch.tensor([[1.0, 0.0], [0.0, 1.2]])
        >>> out = proto_triplet_loss(q, torch.tensor([0]), ref_embeddings=protos,
        ...                          ref_labels=torch.tensor([0, 1]))
        >>> round(out.item(), 6)  # [1 - 1.2 + 0.5]_+
        0.3
    """
    fn = "proto_triplet_loss"
    _check_proto_triplet(margin=margin, distance=distance)
    reduction = check_reduction(fn, reduction)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    if ref_embeddings is None:
        protos, proto_labels = class_prototypes(batch.x, batch.y)
    else:
        protos, proto_labels = batch.rx, batch.ry
    dist = -similarity_matrix(batch.x, protos, False, distance)
    same = batch.y.unsqueeze(1) == proto_labels.unsqueeze(0)
    inf = float("inf")
    # One extra column of -inf / +inf: rows without a positive (negative) prototype, and a
    # batch without prototypes, reduce to it instead of branching on the prototype count.
    edge = dist.new_full((dist.shape[0], 1), inf)
    positive = torch.cat([dist.masked_fill(~same, -inf), -edge], 1).amax(1)
    negative = torch.cat([dist.masked_fill(same, inf), edge], 1).amin(1)
    valid = same.any(1) & (~same).any(1)
    hinge = torch.relu(positive - negative + margin)
    # where() keeps the graph while zeroing queries without a positive or a negative prototype.
    per_query = torch.where(valid, hinge, dist.sum(1) * 0.0)
    return reduce_rows(per_query, reduction=reduction)


register(
    proto_triplet_loss,
    name="proto-triplet",
    module="ProtoTripletLoss",
    check=_check_proto_triplet,
    family="embedding",
    paper=Paper(
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via "
        "two novel distance-based loss functions for few-shot image classification", 2023,
        authors="Mendez-Ruiz et al.", arxiv="2305.09062",
    ),
    kind="embeddings",
    invalid_hyperparameters=({"margin": -0.5}, {"distance": "hamming"}),
    note="Call it with queries and labels, and the prototypes as "
         "``ref_embeddings``/``ref_labels``.",
)


__all__ = ["class_prototypes", "proto_triplet_loss"]
