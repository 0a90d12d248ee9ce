"""The settings of one fused linear-loss call, shared by the row-block sweep
(:mod:`.chunked`) and the vocabulary-major backward (:mod:`.vocab_major`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blocks import LossOptions


@dataclass(frozen=True)
class ChunkConfig:
    """Everything the Function needs besides tensors."""

    opts: LossOptions
    reduction: str
    strategy: str  # "forward_grads" | "recompute" | "vocab_major"
    rows_per_block: int
    filter_eps: float | None
    count: int  # kept rows over the whole batch (the mean's denominator)
    group: Any = None  # torch.distributed process group for a vocabulary-sharded weight
    vocab_start: int = 0
    tile_rows: int = 0  # rows of a vocab_major backward tile (0: tiles of LOGITS_TILE_BYTES)
    max_active: int | None = None  # most columns filtering gathers per block (None: 60 % of V)
