"""Strategy and block shape of the fused linear cross-entropy under a memory budget.

One function, :func:`plan`, decides for every call of the chunked path which strategy runs
(gradients in the forward pass, recomputation in backward, or the vocabulary-major backward;
:mod:`.chunked`, :mod:`.vocab_major`) and how many rows a block holds. The decision is a
table lookup followed by arithmetic:

1. :data:`STRATEGY_TABLE` maps (precision, filtering, reduction) to candidate strategies,
   fastest first (the measurements behind each order are in ``docs/fused.md``).
2. For each candidate, :func:`footprint` splits the extra memory of the call into a fixed
   part and a part per row of a block; the budget then allows
   ``(budget − fixed) // per_row`` rows. The first candidate that allows at least
   :data:`~losslab._core.block_sizes.FUSED_CE_FAST_ROWS` rows (or every kept row) wins;
   when none does, the one that allows the most rows.
3. The block gets ``min(allowed, FUSED_CE_MAX_ROWS, kept rows)`` rows: more rows than
   ``FUSED_CE_MAX_ROWS`` buy no GEMM speed, only memory. Unless the block holds every kept
   row, that count is rounded down to a multiple of ``FUSED_CE_ROW_MULTIPLE`` (16): blocks of
   other widths run the softmax and GEMM kernels on their tail paths.

*Extra memory* is what the call allocates beyond its inputs, its outputs and the gradients it
returns: the block buffers, the per-row statistics, the fp32 ∂W accumulator of half-precision
row-major strategies, the gathered operands of gradient filtering. The budget is given in
bytes or as a fraction of the N×V logits in the compute precision (N = rows of ``hidden``);
without one, :func:`plan` takes a default: 2 % of the logits, raised to a
``FUSED_CE_DEFAULT_ROWS``-row block, at most 10 % of the logits or 16 MiB, whichever is more —
and never less than 1/16 of the weight's bytes (few tokens per call, wide hidden states).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._core.block_sizes import (
    CPU_VOCAB_TILE,
    FUSED_CE_DEFAULT_FRACTION,
    FUSED_CE_DEFAULT_MAX_FRACTION,
    FUSED_CE_DEFAULT_MIN_CAP,
    FUSED_CE_DEFAULT_ROWS,
    FUSED_CE_DEFAULT_WEIGHT_FRACTION,
    FUSED_CE_FAST_ROWS,
    FUSED_CE_MAX_ROWS,
    FUSED_CE_ROW_MULTIPLE,
)
from .filtering import MAX_ACTIVE_SHARE  # most columns a filtered block gathers, as a share

#: (precision, filtering, reduction) → strategies, fastest first. ``precision`` is "full"
#: (fp32/fp64) or "half" (bf16/fp16); ``reduction`` is "scalar" (mean/sum in one process) or
#: "per_row" (``none``, or a vocabulary-parallel group: the gradient needs what only backward
#: or all ranks know). Why this order (docs/fused.md, "Choosing the strategy"):
#: full precision: gradients in forward hold exactly what backward returns, one GEMM fewer
#: than recomputing; half precision: the row-major paths are 10–18 % faster but keep a
#: (V, D) fp32 ∂W accumulator, the vocabulary-major backward needs none; with filtering the
#: row-major column gathers skip far more than whole vocabulary tiles.
STRATEGY_TABLE: dict[tuple[str, bool, str], tuple[str, ...]] = {
    ("full", False, "scalar"): ("forward_grads",),
    ("full", True, "scalar"): ("forward_grads",),
    ("full", False, "per_row"): ("recompute",),
    ("full", True, "per_row"): ("recompute",),
    ("half", False, "scalar"): ("forward_grads", "vocab_major"),
    ("half", True, "scalar"): ("forward_grads", "vocab_major"),
    ("half", False, "per_row"): ("vocab_major",),
    ("half", True, "per_row"): ("recompute", "vocab_major"),
}

#: Rows of W per vocabulary-major tile (losslab._core.block_sizes).
VOCAB_TILE = CPU_VOCAB_TILE
#: (group, V) temporaries a registered loss is assumed to hold at once in linear_loss's
#: sweep (its softmax, log-softmax, their gradients and a few elementwise results).
LOSS_TEMPORARIES = 8


@dataclass(frozen=True)
class Problem:
    """What the byte model needs to know about one call."""

    rows: int  # N: rows of hidden (all leading dimensions)
    kept: int  # K: rows scored (not ignored)
    dim: int  # D
    vocab: int  # V (this rank's shard)
    compute_bytes: int  # bytes of one logit in the compute precision (fp32 for half inputs)
    storage_bytes: int  # bytes of one input element
    softcap: bool
    smoothing: bool
    filtering: bool
    gathered: bool  # rows are gathered (ignored rows, shift, target order): index buffers
    bias_grad: bool
    hidden_grad: bool
    threads: int
    teacher: bool = False  # linear_loss with a teacher head: a second (c, V) block
    group_rows: int = 0  # linear_loss: rows per loss call (its temporaries are (group, V))

    @property
    def logits_bytes(self) -> int:
        """Bytes of the N×V logits in the compute precision: what the fraction refers to."""
        return self.rows * self.vocab * self.compute_bytes

    @property
    def half(self) -> bool:
        return self.storage_bytes < self.compute_bytes


@dataclass(frozen=True)
class Footprint:
    """Extra bytes of a strategy for a block of ``rows`` rows: ``fixed + rows × per_row``,
    plus ``capped_per_row`` for each of the first ``cap_rows`` rows (what grows with the block
    only up to a limit, such as linear_loss's loss groups)."""

    fixed: int
    per_row: int
    capped_per_row: int = 0
    cap_rows: int = 0

    def bytes_for(self, rows: int) -> int:
        return self.fixed + rows * self.per_row + min(rows, self.cap_rows) * self.capped_per_row

    def rows_within(self, budget: int) -> int:
        """The most rows whose bytes stay within ``budget`` (0 when not even one row fits)."""
        room = budget - self.fixed
        if room <= 0:
            return 0
        below_cap = room // (self.per_row + self.capped_per_row)
        if below_cap <= self.cap_rows:
            return below_cap
        return (room - self.cap_rows * self.capped_per_row) // self.per_row


@dataclass(frozen=True)
class Plan:
    """The outcome of :func:`plan`: which strategy, how many rows per block, and the bytes
    the byte model predicts (≤ ``budget``)."""

    strategy: str
    rows_per_block: int  # rows of a (c, V) block (vocab_major: of its forward sweep)
    tile_rows: int  # rows of a vocab_major backward tile (0 for the row-major strategies)
    budget: int
    predicted_bytes: int
    max_active: int  # columns gradient filtering may gather per block (0: never gathers)


def _per_row_statistics(p: Problem) -> int:
    """The O(N) bookkeeping: targets, masks, row indices, each target's column in this shard,
    per-row LSE / target logit / logit sum / row weights and the upstream row weights."""
    index = p.rows * 9 + p.kept * 8 * (3 + int(p.gathered) + int(p.filtering))
    return index + p.kept * p.compute_bytes * (5 + int(p.smoothing))


#: (c,)-sized temporaries of a block held at once, each up to 8 bytes of index and a
#: compute-precision value (target columns, row indices, target logits, LSE, masks).
_BLOCK_VECTORS = 6


def _row_block_per_row(p: Problem, grads: bool) -> int:
    """Bytes per row of a row-major (c, V) block: the logits buffer, the tanh buffer when
    soft-capping, the half-precision GEMM copy, the gathered hidden rows and their ∂h with the
    per-thread partial products of their ∂h GEMM, the block's (c,) temporaries."""
    v = p.vocab
    per = v * p.compute_bytes * (1 + int(p.softcap)) + (v * p.storage_bytes if p.half else 0)
    per += _BLOCK_VECTORS * (8 + p.compute_bytes)
    per += 2 * p.dim * p.storage_bytes if p.gathered else 0
    if grads and p.hidden_grad and not p.half and p.threads > 1 and p.gathered:
        # ungathered rows split the ∂h GEMM in the ∂h rows of later blocks (no scratch)
        per += p.threads * p.dim * p.compute_bytes
    return per


def half_accumulator_bytes(p: Problem) -> int:
    """The fp32 (V, D) ∂W (and (V,) ∂b) accumulator of the half-precision row-major strategies."""
    return p.vocab * p.dim * 4 + (p.vocab * 4 if p.bias_grad else 0) if p.half else 0


def footprint(strategy: str, p: Problem) -> Footprint:
    """Fixed and per-row extra bytes of ``strategy``'s row-major (c, V) blocks on problem ``p``.

    ``forward_grads`` and ``recompute``: one (c, V) block set; half precision adds the fp32
    (V, D) ∂W accumulator (and fp32 ∂b). ``vocab_major``: its forward LSE sweep (the same
    block set, no gradients); its backward tiles are sized by :func:`vocab_major_tiles`.
    """
    if strategy == "loss_sweep":
        return _loss_sweep(p)
    if strategy not in ("forward_grads", "recompute", "vocab_major"):
        raise ValueError(f"unknown strategy {strategy!r}")
    fixed = _per_row_statistics(p)
    if strategy == "vocab_major":
        return Footprint(fixed, _row_block_per_row(p, grads=False))
    fixed += half_accumulator_bytes(p)
    return Footprint(fixed, _row_block_per_row(p, grads=True))


def _loss_sweep(p: Problem) -> Footprint:
    """linear_loss's sweep (:mod:`.loss_blocks`): per block row the row-major logits, the
    (c × 1024) tile buffers, tanh when soft-capping, the teacher's block and tiles, gathered
    rows and the ∂h partial products; fixed: the loss's temporaries on one group and, for
    half inputs, the fp32 ∂W accumulator."""
    v, cb = p.vocab, p.compute_bytes
    tile = min(VOCAB_TILE, max(v, 1))
    widths = 1 if v % tile == 0 else 2
    half = p.storage_bytes if p.half else 0
    block = v * (cb + half) + widths * tile * (cb * (1 + int(p.softcap)) + half)
    per = block * (1 + int(p.teacher)) + (v * cb if p.softcap else 0)
    per += _BLOCK_VECTORS * (8 + cb)
    per += 2 * p.dim * p.storage_bytes * (1 + int(p.teacher)) if p.gathered else 0
    per += p.threads * p.dim * cb if p.hidden_grad and not p.half and p.threads > 1 else 0
    fixed = _per_row_statistics(p)
    fixed += half_accumulator_bytes(p)
    # a loss group holds min(group_rows, c) rows
    return Footprint(fixed, per, capped_per_row=LOSS_TEMPORARIES * v * cb,
                     cap_rows=p.group_rows)


def vocab_major_tiles(p: Problem) -> Footprint:
    """Extra bytes of the vocabulary-major backward for tiles of ``rows`` × 1024: the tile
    buffers (two widths when V is not a multiple of 1024), the (1024, D) ∂W accumulator and
    its product, for half inputs or gathered rows a (K, D) compute-precision ∂h, and the
    gathered hidden rows."""
    tile = min(VOCAB_TILE, max(p.vocab, 1))
    widths = 1 if p.vocab % tile == 0 else 2
    elem = p.compute_bytes * (1 + int(p.softcap)) + (2 * p.storage_bytes if p.half else 0)
    k_d = p.kept * p.dim
    fixed = _per_row_statistics(p) + tile * p.dim * (p.compute_bytes + p.storage_bytes)
    if p.half or p.gathered:
        fixed += k_d * p.compute_bytes + (k_d * p.storage_bytes if p.half else 0)
    if p.gathered:
        fixed += k_d * p.storage_bytes
    fixed += p.vocab * p.compute_bytes if p.bias_grad else 0
    return Footprint(fixed, widths * tile * elem + p.dim * p.storage_bytes
                     + _BLOCK_VECTORS * (8 + p.compute_bytes))


def _filter_scratch_per_column(p: Problem, rows: int) -> int:
    """Gathered operands per active column: a column of the block, a row of W, a row of the
    (A, D) product."""
    return rows * p.compute_bytes + p.dim * (p.storage_bytes + p.compute_bytes)


def _default_budget(p: Problem, prints: dict[str, Footprint], smallest: int) -> int:
    """The budget when none is given: for the table's strategies in order, 2 % of the logits
    raised to fit a FUSED_CE_DEFAULT_ROWS-row block; the first that stays within 10 % of the
    logits (at least FUSED_CE_DEFAULT_MIN_CAP, 16 MiB) sets it. If none does, that cap; never
    below the smallest block (so the default never refuses a call).

    Whatever that gives, the default holds blocks of at least FUSED_CE_DEFAULT_WEIGHT_FRACTION
    (1/16) of the weight's bytes (beyond the strategy's fixed bytes): with few tokens per call
    and wide hidden states (N = 1024, D = 4096, say) 10 % of the logits is fewer rows than the
    GEMMs need (about D/16 rows in fp32), while the call already holds the weight and its
    gradient, each 16 times that (docs/fused.md, "Time against memory").

    One exception: with gradient filtering in half precision the row-major strategies' fp32
    (V, D) accumulator is not counted against the 10 % (it is the size of the weight's gradient
    in fp32 and does not grow with N): their column gathers make the filtered call about twice
    as fast as the vocabulary-major backward (0.93× against 1.86× the floor on the filtered-LM
    benchmark, docs/fused.md), so the default keeps that path, as before budgets existed."""
    cap = max(int(FUSED_CE_DEFAULT_MAX_FRACTION * p.logits_bytes), FUSED_CE_DEFAULT_MIN_CAP)
    floor = min(int(FUSED_CE_DEFAULT_FRACTION * p.logits_bytes), cap)
    weight_share = int(FUSED_CE_DEFAULT_WEIGHT_FRACTION * p.vocab * p.dim * p.storage_bytes)
    rows = min(FUSED_CE_DEFAULT_ROWS, max(p.kept, 1))
    for strategy, f in prints.items():
        exempt = half_accumulator_bytes(p) if p.filtering and strategy != "vocab_major" else 0
        # filtering gives half of the block's room to its gathers, so ask for twice the rows
        block = f.bytes_for(2 * rows if exempt else rows)
        wanted = max(floor + exempt, block)
        if wanted - exempt <= cap:
            return max(wanted, f.fixed + weight_share, smallest)
    return max(cap, min(f.fixed for f in prints.values()) + weight_share, smallest)


def table_key(dtype: torch.dtype, filtering: bool, reduction: str,
              vocab_parallel: bool) -> tuple[str, bool, str]:
    """The STRATEGY_TABLE key of a call."""
    precision = "half" if dtype in (torch.bfloat16, torch.float16) else "full"
    per_row = reduction == "none" or vocab_parallel
    return precision, filtering, "per_row" if per_row else "scalar"


def resolve_budget(fn: str, memory_budget: object, chunk_size: object,
                   logits_bytes: int) -> int | None:
    """Bytes of a ``memory_budget`` argument: an int is bytes (≥ 1), a float in (0, 1] a
    fraction of ``logits_bytes``; None stays None (the default). Giving ``chunk_size`` too
    is an error: the two set the same thing."""
    if memory_budget is None:
        return None
    if chunk_size is not None:
        raise ValueError(
            f"{fn}: pass chunk_size (rows per block) or memory_budget (bytes), not both; got "
            f"chunk_size={chunk_size!r} and memory_budget={memory_budget!r}"
        )
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)):
        raise TypeError(f"{fn}: memory_budget must be an int (bytes), a float in (0, 1] "
                        f"(fraction of the logits' bytes) or None, got "
                        f"{type(memory_budget).__name__}")
    if isinstance(memory_budget, int):
        if memory_budget < 1:
            raise ValueError(f"{fn}: memory_budget in bytes must be >= 1, got {memory_budget}")
        return memory_budget
    if not 0.0 < memory_budget <= 1.0:
        raise ValueError(f"{fn}: memory_budget as a float is a fraction of the logits' bytes "
                         f"and must lie in (0, 1], got {memory_budget}; pass an int for bytes")
    return max(1, int(memory_budget * logits_bytes))


def plan(p: Problem, key: tuple[str, bool, str], budget: int | None, *, fn: str,
         forced: str | None = None) -> Plan:
    """Choose the strategy and the block shape within ``budget`` bytes (None: the default).

    ``forced`` replaces the table's candidates by one strategy (``impl="chunked_…"``, or
    ``"loss_sweep"`` for :func:`losslab.linear_loss`'s generic path).
    Raises ValueError naming the minimum when no candidate fits even a one-row block.
    """
    candidates = (forced,) if forced is not None else STRATEGY_TABLE[key]
    prints = {s: footprint(s, p) for s in candidates}
    tiles = vocab_major_tiles(p)

    def smallest(s: str) -> int:
        one = prints[s].bytes_for(1)
        return max(one, tiles.bytes_for(1)) if s == "vocab_major" else one

    if budget is None:
        budget = _default_budget(p, prints, min(map(smallest, candidates)))
    kept = max(p.kept, 1)
    allowed: dict[str, int] = {}
    for s, f in prints.items():
        share = budget
        if p.filtering and s != "vocab_major":
            # half of what the block may take goes to the gathered operands of filtering
            share = f.fixed + (budget - f.fixed) // 2
        allowed[s] = max(f.rows_within(share), min(1, f.rows_within(budget)))
        allowed[s] = allowed[s] if smallest(s) <= budget else 0
    fitting = [s for s in candidates if allowed[s] >= 1]
    if not fitting:
        minimum = min(map(smallest, candidates))
        raise ValueError(
            f"{fn}: memory_budget={budget} bytes is too small: the smallest block "
            f"({' or '.join(candidates)}, one row) needs {minimum} bytes "
            f"({minimum / 2**20:.2f} MiB) at N={p.rows}, D={p.dim}, V={p.vocab}; pass at least "
            f"memory_budget={minimum}"
        )
    fast = min(FUSED_CE_FAST_ROWS, kept)
    chosen = next((s for s in fitting if allowed[s] >= fast),
                  max(fitting, key=lambda s: allowed[s]))
    rows = max(1, min(allowed[chosen], FUSED_CE_MAX_ROWS, kept))
    if rows < kept and rows > FUSED_CE_ROW_MULTIPLE:
        rows -= rows % FUSED_CE_ROW_MULTIPLE
    used = prints[chosen].bytes_for(rows)
    tile_rows = 0
    if chosen == "vocab_major":
        tile_rows = max(1, min(tiles.rows_within(budget), kept))
        used = max(used, tiles.bytes_for(tile_rows))
    max_active = 0
    if p.filtering and chosen != "vocab_major":
        per_column = _filter_scratch_per_column(p, rows)
        max_active = max(0, min(int(MAX_ACTIVE_SHARE * p.vocab), (budget - used) // per_column))
        used += max_active * per_column
    return Plan(strategy=chosen, rows_per_block=rows, tile_rows=tile_rows, budget=budget,
                predicted_bytes=used, max_active=max_active)
