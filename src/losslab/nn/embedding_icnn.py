"""Module and registry entry for the ICNN loss of "SuSana Distancia" (kind ``"embeddings"``).

Call as ``loss(embeddings, labels, ref_embeddings=None, ref_labels=None)``. No maths here.
"""

from __future__ import annotations

from torch import Tensor

from .._core.registry import Paper, register
from ..functional import embedding_icnn as IC
from .embedding import _EmbeddingLoss


class ICNNLoss(_EmbeddingLoss):
    """Module form of :func:`losslab.functional.embedding_icnn.icnn_loss` (``-log`` of the
    intra-/inter-class nearest-neighbour score; a whole-batch scalar, no ``reduction``)."""

    def __init__(
        self,
        *,
        k: int = 4,
        search_k: int | None = None,
        score: str = "modified",
        p: float = 2.0,
        r: float = 2.0,
        distance: str = "euclidean",
    ) -> None:
        IC._check_icnn(k=k, search_k=search_k, score=score, p=p, r=r, distance=distance)
        super().__init__(None, k=k, search_k=search_k, score=score, p=p, r=r, distance=distance)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        return self._call(
            IC.icnn_loss, embeddings, labels, ref_embeddings=ref_embeddings, ref_labels=ref_labels
        )


register(
    "icnn",
    family="embedding",
    paper=Paper(
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via "
        "two novel distance-based loss functions for few-shot image classification", 2023,
        authors="Mendez-Ruiz et al.", arxiv="2305.09062",
    ),
    function=IC.icnn_loss,
    module=ICNNLoss,
    kind="embeddings",
    batch_level=True,
    defaults={"k": 4, "search_k": None, "score": "modified", "p": 2.0, "r": 2.0,
              "distance": "euclidean"},
    invalid_hyperparameters=({"k": 0}, {"search_k": 1}, {"score": "paper"}, {"p": 0.5},
                             {"distance": "dot"}),
)
