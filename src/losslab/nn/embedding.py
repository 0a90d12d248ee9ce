"""Modules and registry entries for the embedding losses (kind ``"embeddings"``).

Call every module as ``loss(embeddings, labels, ref_embeddings=None, ref_labels=None)``, like
pytorch-metric-learning. Hyperparameters are checked at construction. No maths lives here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .._core.registry import Paper, register
from .._core.validation import check_number, check_reduction
from ..functional import contrastive as C
from ..functional import embedding as E
from ..functional import embedding_fewshot as FS

# Keyword arguments of an embedding loss that are per-call inputs, not hyperparameters.
_CALL_INPUTS = ("ref_embeddings", "ref_labels", "pairs")


class EmbeddingLoss(nn.Module):
    """Base of the generated embedding-loss modules (see :func:`embedding_loss_module`).

    Subclasses set ``function``; ``check`` validates the hyperparameters at construction (it
    receives those of its keyword arguments that the function has). Construct with the
    function's keyword arguments (hyperparameters and ``reduction`` where the function has
    one); call with ``(embeddings, labels, ref_embeddings=None, ref_labels=None, **inputs)``,
    where ``inputs`` are per-call arguments such as ``pairs=`` of the MS loss.
    """

    function: Callable[..., Tensor]
    check: Callable[..., Any] | None = None

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__()
        owner = type(self).__name__
        fn = type(self).function
        defaults = {
            p.name: p.default
            for p in inspect.signature(fn).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in _CALL_INPUTS
        }
        unknown = sorted(set(hyperparameters) - set(defaults))
        if unknown:
            raise TypeError(
                f"{owner}: unexpected hyperparameter {', '.join(map(repr, unknown))}; "
                f"it accepts {', '.join(defaults) or 'none'}"
            )
        values = {**defaults, **hyperparameters}
        reduction = values.pop("reduction", None)
        self.reduction = None if reduction is None else check_reduction(owner, reduction)
        check = type(self).check
        if check is not None:
            accepted = inspect.signature(check).parameters
            check(**{k: v for k, v in values.items() if k in accepted})
        self.hyperparameters = values

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        **inputs: Any,
    ) -> Tensor:
        extra = {} if self.reduction is None else {"reduction": self.reduction}
        return type(self).function(
            embeddings, labels, ref_embeddings=ref_embeddings, ref_labels=ref_labels,
            **inputs, **extra, **self.hyperparameters,
        )

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyperparameters.items() if k != "process_group"]
        if self.reduction is not None:
            items.append(f"reduction={self.reduction!r}")
        return ", ".join(items)


def embedding_loss_module(
    name: str, function: Callable[..., Tensor], check: Callable[..., Any] | None, doc: str
) -> type[EmbeddingLoss]:
    """Create ``class <name>(EmbeddingLoss)`` calling ``function``; ``doc`` is its docstring."""
    attrs = {
        "function": staticmethod(function),
        "check": None if check is None else staticmethod(check),
        "__doc__": doc,
        "__module__": "losslab.nn",
    }
    return type(name, (EmbeddingLoss,), attrs)


MultiSimilarityLoss = embedding_loss_module(
    "MultiSimilarityLoss", E.multi_similarity_loss, E._check_multi_similarity,
    """Module form of :func:`losslab.functional.multi_similarity_loss` (MS loss, optional
    MS mining with ``epsilon``; ``variant="official"`` for the authors' code). Pass mined
    ``pairs=`` per call.""",
)
NTXentLoss = embedding_loss_module(
    "NTXentLoss", C.nt_xent_loss, C._check_nt_xent,
    """Module form of :func:`losslab.functional.nt_xent_loss` (SimCLR's NT-Xent). Set
    ``gather_distributed=True`` to use every rank's negatives, over ``process_group``
    (default: the world group); see the function for what each ``reduction`` returns then.""",
)
MWLoss = embedding_loss_module(
    "MWLoss", E.mw_loss, E._check_mw,
    """Module form of :func:`losslab.functional.mw_loss` (Mann-Whitney / AUC retrieval loss).""",
)
OrthogonalProjectionLoss = embedding_loss_module(
    "OrthogonalProjectionLoss", E.orthogonal_projection_loss, E._check_opl,
    """Module form of :func:`losslab.functional.orthogonal_projection_loss` (OPL; add it to a
    classification loss on the penultimate features).""",
)
ProtoTripletLoss = embedding_loss_module(
    "ProtoTripletLoss", FS.proto_triplet_loss, FS._check_proto_triplet,
    """Module form of :func:`losslab.functional.embedding_fewshot.proto_triplet_loss` (call with
    queries and labels, and the prototypes as ``ref_embeddings``/``ref_labels``).""",
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
