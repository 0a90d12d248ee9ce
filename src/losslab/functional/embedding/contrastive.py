r"""NT-Xent (SimCLR) with negatives gathered across ``torch.distributed`` ranks.

:func:`nt_xent_loss` equals pytorch-metric-learning's ``NTXentLoss``: for every positive pair
(i, j) the loss is a softmax cross-entropy of the positive against the anchor's negatives. With
``gather_distributed=True`` each rank's anchors are compared with the references of *all*
ranks (gathered with gradient), which is what large-batch SimCLR needs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as TF
from torch import Tensor

from ..._core.registry import Paper, register
from ..._core.validation import check_number, check_reduction
from .._core.distances import similarity_matrix
from .._core.pair_batch import check_metric, check_pair_batch, masked_logsumexp


class _GatherWithGradient(torch.autograd.Function):
    """``all_gather`` whose backward sums every rank's gradient for this rank's rows."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any) -> Tensor:
        ctx.group = group
        ctx.rows = x.shape[0]
        world = dist.get_world_size(group)
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor, None]:
        grad = grads[0].contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        start = dist.get_rank(ctx.group) * ctx.rows
        return grad[start : start + ctx.rows], None


def gather_with_gradient(x: Tensor, group: Any = None) -> Tensor:
    """Concatenate ``x`` (n, ...) from every rank (rank order) with a gradient path back to each
    rank's rows. Every rank must pass the same shape."""
    return _GatherWithGradient.apply(x, group)  # type: ignore[no-untyped-call,no-any-return]


def _gather_labels(y: Tensor, group: Any) -> Tensor:
    parts = [torch.empty_like(y) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, y.contiguous(), group=group)
    return torch.cat(parts)


def _check_same_rows(fn: str, rows: int, device: torch.device, group: Any) -> None:
    size = torch.tensor([rows], device=device)
    sizes = [torch.empty_like(size) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s.item()) for s in sizes]
    if len(set(counts)) != 1:
        raise ValueError(
            f"{fn}: gather_distributed needs the same batch size on every rank, got {counts}"
        )


def _check_nt_xent(*, temperature: float, distance: str) -> None:
    check_number("nt_xent_loss", "temperature", temperature, low=0.0, low_open=True)
    check_metric("nt_xent_loss", distance)


def nt_xent_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 0.07,
    distance: str = "cosine",
    gather_distributed: bool = False,
    process_group: Any = None,
) -> Tensor:
    r"""NT-Xent / InfoNCE over labelled pairs, equal to PML's ``NTXentLoss``.

    .. math::

        \ell_{ij} = -\log\frac{e^{s_{ij}/\tau}}{e^{s_{ij}/\tau} + \sum_{k\in N_i} e^{s_{ik}/\tau}},
        \qquad L = \operatorname{mean}_{(i,j)\ \text{positive}} \ell_{ij}

    With SimCLR's labels ``[0, 0, 1, 1, ...]`` (two views per image) this is the paper's L over
    2N anchors; the official TF code returns 2L. Distances enter as ``s = -d``.

    Distributed (``gather_distributed=True``, an initialised process group): the references
    (``ref_embeddings`` or the batch) and their labels are gathered from all ranks with
    gradient; each rank's anchors meet every rank's negatives. The value on rank r is
    ``W · Σ_{local pairs} ℓ / P`` (W ranks, P positive pairs overall), so the mean over ranks
    is the single-process loss on the concatenated batch, and DDP's gradient averaging yields
    exactly that loss's gradient. Every rank needs the same batch size. The other reductions
    follow the same rule where one exists: ``"sum"`` returns ``W · Σ_{local pairs} ℓ`` (its mean
    over ranks is the single-process sum); ``"none"`` returns this rank's anchors' pair losses,
    unscaled, each equal to the single-process value of that pair (concatenated in rank order,
    they are the single-process ``"none"`` output). ``process_group`` selects the ranks
    (default: the world group).

    Args:
        embeddings: (N, D); labels: (N,).
        ref_embeddings, ref_labels: optional (M, D), (M,).
        reduction: ``"mean"`` (over positive pairs) | ``"sum"`` | ``"none"`` (per positive
            pair, anchor-major order, as PML's ``(a1, p)``).
        temperature: τ > 0 (PML default 0.07; SimCLR 0.1, 0.5 in its ablations).

    Example (views at 0°, 30°, 90°, 135°, pairs (0, 1), (2, 3), τ = 0.5):
        >>> import torch
        >>> a = torch.tensor([0.0, 30.0, 90.0, 135.0]).deg2rad()
        >>> z = torch.stack([a.cos(), a.sin()], 1)
        >>> round(nt_xent_loss(z, torch.tensor([0, 0, 1, 1]), temperature=0.5).item(), 6)
        0.372454

    Reference: T. Chen et al., *A Simple Framework for Contrastive Learning of Visual
    Representations*, ICML 2020 (arXiv 2002.05709).
    """
    fn = "nt_xent_loss"
    _check_nt_xent(temperature=temperature, distance=distance)
    reduction = check_reduction(fn, reduction)
    batch = check_pair_batch(fn, embeddings, labels, ref_embeddings, ref_labels)
    x, rx, ry = batch.x, batch.rx, batch.ry
    scale = 1.0
    offset = 0
    if gather_distributed:
        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(f"{fn}: gather_distributed=True needs an initialised process group")
        _check_same_rows(fn, rx.shape[0], rx.device, process_group)
        offset = dist.get_rank(process_group) * rx.shape[0]
        rx, ry = gather_with_gradient(rx, process_group), _gather_labels(ry, process_group)
        scale = float(dist.get_world_size(process_group))
    logits = similarity_matrix(x, rx, False, distance) / temperature
    equal = batch.y.unsqueeze(1) == ry.unsqueeze(0)
    positive, negative = equal, ~equal
    if batch.same:
        n = x.shape[0]
        own = torch.zeros_like(equal)
        own[:, offset : offset + n] = torch.eye(n, dtype=torch.bool, device=x.device)
        positive = equal & ~own
    negatives = masked_logsumexp(logits, negative)
    # -log(e^s / (e^s + Σ e^n)) = softplus(LSE_n - s); an anchor without negatives gives 0.
    pair_loss = TF.softplus(negatives.unsqueeze(1) - logits)
    if reduction == "none":
        return pair_loss[positive]
    kept = pair_loss.masked_fill(~positive, 0.0)
    total = kept.sum()
    if reduction == "sum":
        return total * scale
    count = positive.sum().to(total.dtype)
    if gather_distributed:
        count = count.detach().clone()
        dist.all_reduce(count, group=process_group)
        return total * scale / count.clamp_min(1.0)
    return total / count.clamp_min(1.0)


register(
    nt_xent_loss,
    name="ntxent",
    module="NTXentLoss",
    check=_check_nt_xent,
    family="embedding",
    paper=Paper(
        "A Simple Framework for Contrastive Learning of Visual Representations", 2020,
        authors="Chen, Kornblith, Norouzi, Hinton", arxiv="2002.05709",
    ),
    kind="embeddings",
    options=("process_group",),
    invalid_hyperparameters=({"temperature": 0.0}, {"distance": "hamming"}),
    note="Set ``gather_distributed=True`` to use every rank's negatives, over "
         "``process_group`` (default: the world group); see the function for what each "
         "``reduction`` returns then.",
)


__all__ = ["nt_xent_loss"]
