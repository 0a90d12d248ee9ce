"""Modules and registry entries for the embedding losses (kind ``"embeddings"``).

Call every module as ``loss(embeddings, labels, ref_embeddings=None, ref_labels=None)``, like
pytorch-metric-learning. Hyperparameters are checked at construction. No maths lives here.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .._core.registry import Paper, register
from .._core.validation import check_number, check_reduction
from ..functional import contrastive as C
from ..functional import embedding as E
from ..functional import embedding_fewshot as FS


class _EmbeddingLoss(nn.Module):
    """Stores hyperparameters and forwards ``(embeddings, labels, ref_*)`` to the function."""

    def __init__(self, reduction: str | None, **hyperparameters: Any) -> None:
        super().__init__()
        self.reduction = None if reduction is None else check_reduction(type(self).__name__, reduction)
        self.hyperparameters = hyperparameters

    def _call(self, function: Any, embeddings: Tensor, labels: Tensor, **refs: Any) -> Tensor:
        extra = {} if self.reduction is None else {"reduction": self.reduction}
        out: Tensor = function(embeddings, labels, **refs, **extra, **self.hyperparameters)
        return out

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyperparameters.items()]
        if self.reduction is not None:
            items.append(f"reduction={self.reduction!r}")
        return ", ".join(items)


class MultiSimilarityLoss(_EmbeddingLoss):
    """Module form of :func:`losslab.functional.multi_similarity_loss` (MS loss, optional
    MS mining with ``epsilon``; ``variant="official"`` for the authors' code)."""

    def __init__(
        self,
        *,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        epsilon: float | None = None,
        distance: str = "cosine",
        variant: str = "pml",
        reduction: str = "mean",
    ) -> None:
        E._check_multi_similarity(
            alpha=alpha, beta=beta, base=base, epsilon=epsilon, distance=distance, variant=variant
        )
        super().__init__(
            reduction, alpha=alpha, beta=beta, base=base, epsilon=epsilon, distance=distance,
            variant=variant,
        )

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        pairs: E.PairIndices | None = None,
    ) -> Tensor:
        return self._call(
            E.multi_similarity_loss, embeddings, labels,
            ref_embeddings=ref_embeddings, ref_labels=ref_labels, pairs=pairs,
        )


class NTXentLoss(_EmbeddingLoss):
    """Module form of :func:`losslab.functional.nt_xent_loss` (SimCLR's NT-Xent; set
    ``gather_distributed=True`` to use every rank's negatives)."""

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        distance: str = "cosine",
        gather_distributed: bool = False,
        reduction: str = "mean",
    ) -> None:
        C._check_nt_xent(temperature=temperature, distance=distance)
        super().__init__(
            reduction, temperature=temperature, distance=distance,
            gather_distributed=bool(gather_distributed),
        )

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        return self._call(
            C.nt_xent_loss, embeddings, labels, ref_embeddings=ref_embeddings, ref_labels=ref_labels
        )


class MWLoss(_EmbeddingLoss):
    """Module form of :func:`losslab.functional.mw_loss` (Mann-Whitney / AUC retrieval loss)."""

    def __init__(
        self, *, temperature: float = 0.01, distance: str = "cosine", reduction: str = "mean"
    ) -> None:
        E._check_mw(temperature=temperature, distance=distance)
        super().__init__(reduction, temperature=temperature, distance=distance)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        return self._call(
            E.mw_loss, embeddings, labels, ref_embeddings=ref_embeddings, ref_labels=ref_labels
        )


class OrthogonalProjectionLoss(_EmbeddingLoss):
    """Module form of :func:`losslab.functional.orthogonal_projection_loss` (OPL; add it to a
    classification loss on the penultimate features)."""

    def __init__(self, *, gamma: float = 0.5, negative_abs: str = "outside") -> None:
        E._check_opl(gamma=gamma, negative_abs=negative_abs)
        super().__init__(None, gamma=gamma, negative_abs=negative_abs)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        return self._call(
            E.orthogonal_projection_loss, embeddings, labels,
            ref_embeddings=ref_embeddings, ref_labels=ref_labels,
        )


class WithOPL(nn.Module):
    """A classification loss plus λ·OPL on the penultimate features: ``CE + λ·OPL`` (λ = 1).

    Call as ``loss(logits, features, target)``; ``classification_loss`` is any
    ``(input, target)`` loss module (default: :class:`losslab.nn.CrossEntropy`).
    """

    def __init__(
        self,
        classification_loss: nn.Module | None = None,
        *,
        weight: float = 1.0,
        gamma: float = 0.5,
        negative_abs: str = "outside",
    ) -> None:
        super().__init__()
        from .softmax import CrossEntropy

        self.weight = check_number("WithOPL", "weight", weight, low=0.0)
        self.classification_loss = CrossEntropy() if classification_loss is None else classification_loss
        self.opl = OrthogonalProjectionLoss(gamma=gamma, negative_abs=negative_abs)

    def forward(self, logits: Tensor, features: Tensor, target: Tensor) -> Tensor:
        base: Tensor = self.classification_loss(logits, target)
        regulariser: Tensor = self.opl(features, target)
        return base + self.weight * regulariser


class ProtoTripletLoss(_EmbeddingLoss):
    """Module form of :func:`losslab.functional.embedding_fewshot.proto_triplet_loss` (call with
    queries and labels, and the prototypes as ``ref_embeddings``/``ref_labels``)."""

    def __init__(self, *, margin: float = 0.5, distance: str = "euclidean", reduction: str = "mean") -> None:
        FS._check_proto_triplet(margin=margin, distance=distance)
        super().__init__(reduction, margin=margin, distance=distance)

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        return self._call(
            FS.proto_triplet_loss, embeddings, labels,
            ref_embeddings=ref_embeddings, ref_labels=ref_labels,
        )


_FAMILY = "embedding"

register(
    "ms",
    family=_FAMILY,
    paper=Paper(
        "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning", 2019,
        authors="Wang, Han, Huang, Dong, Scott", arxiv="1904.06627",
    ),
    function=E.multi_similarity_loss,
    module=MultiSimilarityLoss,
    kind="embeddings",
    defaults={"alpha": 2.0, "beta": 50.0, "base": 0.5, "epsilon": None, "distance": "cosine",
              "variant": "pml"},
    invalid_hyperparameters=({"alpha": 0.0}, {"beta": -1.0}, {"epsilon": -0.1},
                             {"distance": "hamming"}, {"variant": "paper"}),
)
register(
    "ntxent",
    family=_FAMILY,
    paper=Paper(
        "A Simple Framework for Contrastive Learning of Visual Representations", 2020,
        authors="Chen, Kornblith, Norouzi, Hinton", arxiv="2002.05709",
    ),
    function=C.nt_xent_loss,
    module=NTXentLoss,
    kind="embeddings",
    defaults={"temperature": 0.07, "distance": "cosine", "gather_distributed": False},
    invalid_hyperparameters=({"temperature": 0.0}, {"distance": "hamming"}),
)
register(
    "mw",
    family=_FAMILY,
    paper=Paper(
        "Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval", 2025,
        authors="Sheikholeslami et al.", arxiv="2510.00137",
    ),
    function=E.mw_loss,
    module=MWLoss,
    kind="embeddings",
    defaults={"temperature": 0.01, "distance": "cosine"},
    invalid_hyperparameters=({"temperature": 0.0}, {"temperature": -1.0}),
)
register(
    "opl",
    family=_FAMILY,
    paper=Paper("Orthogonal Projection Loss", 2021, authors="Ranasinghe et al.", arxiv="2103.14021"),
    function=E.orthogonal_projection_loss,
    module=OrthogonalProjectionLoss,
    kind="embeddings",
    defaults={"gamma": 0.5, "negative_abs": "outside"},
    invalid_hyperparameters=({"gamma": -0.5}, {"negative_abs": "both"}),
)
register(
    "proto-triplet",
    family=_FAMILY,
    paper=Paper(
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via "
        "two novel distance-based loss functions for few-shot image classification", 2023,
        authors="Mendez-Ruiz et al.", arxiv="2305.09062",
    ),
    function=FS.proto_triplet_loss,
    module=ProtoTripletLoss,
    kind="embeddings",
    defaults={"margin": 0.5, "distance": "euclidean"},
    invalid_hyperparameters=({"margin": -0.5}, {"distance": "hamming"}),
)
