"""Vocabulary parallelism for the fused linear cross-entropy over ``torch.distributed``.

Each rank r holds a contiguous shard W[start_r:stop_r] of the classifier (and of the bias);
hidden states and targets are replicated. Per row, every rank computes its local
LSE_r, the target logit if it owns the target (else 0) and, with label smoothing, its local
sum of logits. Two all-reduces combine them (the layout of Megatron's vocab-parallel CE and
of CCE's ``VocabParallelOptions``):

    M = max_r LSE_r,   LSE = M + log Σ_r exp(LSE_r − M),   z'_y = Σ_r z'_y,r,   Σ z' = Σ_r Σ z'_r.

Backward is local except for ∂h, which is all-reduced (summed) so that every rank returns the
same hidden gradient; ∂W and ∂b stay local to the shard.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def shard_layout(fn: str, weight: Tensor, bias: Tensor | None, rows: int,
                 group: Any) -> tuple[int, int]:
    """Gather every rank's (V_r, D, N) and return (vocab_start, vocab_total) for this rank.

    Raises on every rank when the shards disagree on D or the ranks disagree on the number of
    tokens N (hidden states must be replicated). Local checks run before this collective, so
    a rank that fails them alone leaves the others waiting in it.
    """
    dist = _dist()
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError(
            f"{fn}: process_group was given but torch.distributed is not initialised; "
            "call torch.distributed.init_process_group first"
        )
    rank = dist.get_rank(group)
    world = dist.get_world_size(group)
    mine = torch.tensor([weight.shape[0], weight.shape[1], rows], dtype=torch.int64)
    if _backend_device(group) != "cpu":
        mine = mine.to(weight.device)
    everyone = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(everyone, mine, group=group)
    sizes = [int(t[0]) for t in everyone]
    dims = [int(t[1]) for t in everyone]
    if len(set(dims)) != 1:
        raise ValueError(
            f"{fn}: weight shards disagree on the hidden size D across the process group: "
            f"got D={dims} on ranks 0..{world - 1}; every rank must hold (V_r, D) rows of one "
            "(V, D) weight"
        )
    counts = [int(t[2]) for t in everyone]
    if len(set(counts)) != 1:
        raise ValueError(
            f"{fn}: ranks disagree on the number of tokens: got N={counts} on ranks "
            f"0..{world - 1}; hidden and target must be replicated across the process group"
        )
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise ValueError(
            f"{fn}: bias must be this rank's shard of shape ({weight.shape[0]},), "
            f"got {tuple(bias.shape)}"
        )
    return sum(sizes[:rank]), sum(sizes)


def _backend_device(group: Any) -> str:
    backend = str(_dist().get_backend(group))
    return "cpu" if backend == "gloo" else "cuda"


def combine_row_stats(lse: Tensor, z_target: Tensor, z_sum: Tensor | None,
                      group: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    """Global per-row (LSE, target logit, logit sum) from the ranks' local values."""
    dist = _dist()
    m = lse.clone()
    dist.all_reduce(m, op=dist.ReduceOp.MAX, group=group)
    # A rank with an empty shard has LSE = −inf; exp(−inf − M) = 0 is what we want.
    parts = [torch.exp(lse - m), z_target] + ([z_sum] if z_sum is not None else [])
    packed = torch.stack(parts)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=group)
    total = m + packed[0].log()
    return total, packed[1], (packed[2] if z_sum is not None else None)


def all_reduce_sum(t: Tensor, group: Any) -> None:
    dist = _dist()
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
