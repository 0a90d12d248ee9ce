"""Shared plumbing of the embedding losses: input checks, reference sets and pair masks.

Every embedding loss takes ``(embeddings, labels, *, ref_embeddings=None, ref_labels=None)``
like pytorch-metric-learning: anchors are the rows of ``embeddings``; they are compared with
the rows of ``ref_embeddings`` (default: the batch itself, then an anchor is never paired with
itself). A pair is positive when the labels are equal and negative otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..._core.logit_loss import compute_dtype
from ..._core.validation import check_tensor, values_checkable
from .distances import METRICS, similarity_matrix


@dataclass(frozen=True)
class PairBatch:
    """Validated inputs: anchors ``x`` (N, D), labels ``y`` (N,), references ``rx`` (M, D),
    ``ry`` (M,), and ``same`` (the references are the anchors themselves)."""

    x: Tensor
    y: Tensor
    rx: Tensor
    ry: Tensor
    same: bool

    def masks(self) -> tuple[Tensor, Tensor]:
        """(N, M) boolean masks of positive pairs (self-pairs excluded) and negative pairs."""
        equal = self.y.unsqueeze(1) == self.ry.unsqueeze(0)
        positive = equal
        if self.same:
            eye = torch.eye(equal.shape[0], dtype=torch.bool, device=equal.device)
            positive = equal & ~eye
        return positive, ~equal

    def similarity(self, metric: str, p: float = 2.0) -> Tensor:
        """(N, M) similarities; distances enter as ``-distance``."""
        return similarity_matrix(self.x, self.rx, self.same, metric, p)


def _check_embedding_tensor(fn: str, name: str, value: object) -> Tensor:
    t = check_tensor(fn, name, value)
    if not t.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got dtype {t.dtype}")
    if t.dim() != 2:
        raise ValueError(
            f"{fn}: {name} must be 2-D (batch, embedding_dim), got shape {tuple(t.shape)}"
        )
    if values_checkable(t) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{fn}: {name} contains NaN or inf values")
    return t


def _check_labels(fn: str, name: str, value: object, count: int, of: str) -> Tensor:
    t = check_tensor(fn, name, value)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{fn}: {name} must be an integer tensor, got dtype {t.dtype}")
    if t.dim() != 1 or t.shape[0] != count:
        raise ValueError(
            f"{fn}: {name} must have shape ({count},), one label per row of {of}, "
            f"got shape {tuple(t.shape)}"
        )
    return t


def check_pair_batch(
    fn: str,
    embeddings: object,
    labels: object,
    ref_embeddings: object = None,
    ref_labels: object = None,
) -> PairBatch:
    """Validate the embedding-loss inputs once, at the public entry; compute in float32+."""
    x = _check_embedding_tensor(fn, "embeddings", embeddings)
    y = _check_labels(fn, "labels", labels, x.shape[0], "embeddings")
    if (ref_embeddings is None) != (ref_labels is None):
        raise ValueError(f"{fn}: give ref_embeddings and ref_labels together, or neither")
    dtype = compute_dtype(x)
    x = x.to(dtype)
    y = y.to(device=x.device)
    if ref_embeddings is None or (ref_embeddings is embeddings and ref_labels is labels):
        return PairBatch(x, y, x, y, True)
    rx = _check_embedding_tensor(fn, "ref_embeddings", ref_embeddings)
    if rx.shape[1] != x.shape[1]:
        raise ValueError(
            f"{fn}: ref_embeddings must have embedding_dim {x.shape[1]} like embeddings, "
            f"got shape {tuple(rx.shape)}"
        )
    ry = _check_labels(fn, "ref_labels", ref_labels, rx.shape[0], "ref_embeddings")
    return PairBatch(x, y, rx.to(dtype), ry.to(device=x.device), False)


def log1p_sum_exp(z: Tensor, mask: Tensor) -> Tensor:
    """Row-wise ``log(1 + sum_{k in mask} exp(z_k))`` = LSE over {0} and the kept entries.

    Stable at any scale; a row with no kept entry gives exactly 0 with a zero (finite) gradient.
    """
    if z.shape[1] == 0:
        return z.sum(1)
    masked = z.masked_fill(~mask, float("-inf"))
    shift = masked.amax(dim=1, keepdim=True).clamp_min(0.0).detach()
    return (shift + torch.log(torch.exp(-shift) + torch.exp(masked - shift).sum(1, keepdim=True))).squeeze(1)


def masked_logsumexp(z: Tensor, mask: Tensor) -> Tensor:
    """Row-wise LSE over the kept entries; ``-inf`` for a row with none, with finite gradients."""
    any_kept = mask.any(dim=1)
    filler = torch.where(any_kept.unsqueeze(1), float("-inf"), 0.0).to(z.dtype)
    lse = torch.logsumexp(torch.where(mask, z, filler), dim=1)
    return torch.where(any_kept, lse, float("-inf"))


LOSS_METRICS = tuple(m for m in METRICS if m != "mahalanobis")


def check_metric(fn: str, distance: object) -> str:
    """The ``distance=`` argument of an embedding loss: a metric of the distances module
    (Mahalanobis needs a matrix, so it is offered by the heads, not by the losses)."""
    if distance not in LOSS_METRICS:
        raise ValueError(
            f"{fn}: distance must be one of {', '.join(map(repr, LOSS_METRICS))}, got {distance!r}"
        )
    return str(distance)


def is_similarity(metric: str) -> bool:
    return metric in ("cosine", "dot")
