"""Module and registry entry for the ICNN loss of "SuSana Distancia" (kind ``"embeddings"``).

Call as ``loss(embeddings, labels, ref_embeddings=None, ref_labels=None)``. No maths here.
"""

from __future__ import annotations

from .._core.registry import Paper, register
from ..functional import embedding_icnn as IC
from .embedding import embedding_loss_module

ICNNLoss = embedding_loss_module(
    "ICNNLoss", IC.icnn_loss, IC._check_icnn,
    """Module form of :func:`losslab.functional.embedding_icnn.icnn_loss` (``-log`` of the
    intra-/inter-class nearest-neighbour score; a whole-batch scalar, no ``reduction``).""",
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
