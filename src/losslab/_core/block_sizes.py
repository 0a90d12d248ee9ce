"""Block sizes of the block-wise kernels, each named once.

Every kernel that walks a (rows, classes) or (rows, vocabulary) matrix a block at a time takes
its block size from here, so a size is tuned in one place and the kernels that share one
cannot drift apart. Sizes count elements (kernels whose dtype is fixed) or bytes (kernels
that run in several precisions). Only the CPU uses them: on other devices a whole batch is
one block, since kernel launches, not cache, dominate there. The measurements behind the
values are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

#: Elements per block of the per-row kernels (``functional/_core/row_blocks.py``): 256 KiB of
#: float32, inside a core's L2 cache.
CPU_BLOCK_ELEMENTS = 1 << 16
#: Fewest rows per block of the per-row kernels (on wide rows a block exceeds
#: CPU_BLOCK_ELEMENTS): at LM vocabularies single-row blocks would spend more in per-block
#: dispatch than the cache saves.
MIN_ROWS = 8
#: Elements per block of the temporaries that only feed a row reduction (the softmax row
#: statistics, ALDR's KL): 8 MiB of float32, a size the allocator reuses instead of page
#: faulting a fresh (K, C) tensor in.
ROW_TEMPORARY_ELEMENTS = 1 << 21
#: Elements per block of the Plackett–Luce loss (2 MiB of float32 per buffer): larger than
#: CPU_BLOCK_ELEMENTS because it runs ~20 operations per block, several on small per-row
#: tensors, whose dispatch cost larger blocks amortise.
PLACKETT_LUCE_ELEMENTS = 1 << 19
#: Vocabulary rows per tile of a CPU logits GEMM (fused forward) and of the vocabulary-major
#: backward: output and operand tiles stay in cache.
CPU_VOCAB_TILE = 1024
#: Bytes of one compute-precision logits block of ``linear_loss`` and of one (rows × vocabulary)
#: tile of the vocabulary-major backward: 8 MiB.
LOGITS_TILE_BYTES = 8 * 2**20
#: Fewest rows per ``linear_loss`` block (32 rows ran the GEMMs 1.7× slower per row than 64 at
#: V = 32768 in fp32).
LINEAR_LOSS_MIN_ROWS = 16
#: Logits per ``linear_loss`` loss call and CPU thread (8 rows at V = 32768, 256 at V = 1024;
#: at least 8 rows): a loss call's fixed autograd cost must be amortised over the group.
LINEAR_LOSS_GROUP_ELEMENTS = 8 * 32768
#: Default memory budget of the fused linear cross-entropy as a fraction of the N×V logits'
#: bytes (``fused/strategy.py``), raised to fit FUSED_CE_DEFAULT_ROWS rows and capped at
#: FUSED_CE_DEFAULT_MAX_FRACTION.
FUSED_CE_DEFAULT_FRACTION = 0.02
FUSED_CE_DEFAULT_MAX_FRACTION = 0.10
#: The default's cap is never below this many bytes: on small problems (V = 1000, say) 10 % of
#: the logits cannot hold even the fixed buffers, and one-row blocks would run at GEMV speed.
FUSED_CE_DEFAULT_MIN_CAP = 16 * 2**20
#: The default budget is at least this share of the weight's bytes (V·D in its dtype): with few
#: tokens per call (N ≤ ~1300 at D ≥ 2048) 10 % of the logits leaves blocks too small for the
#: GEMMs, while the call already holds the weight and its gradient, each 16× this allowance.
#: In rows, the allowance is about D/16 rows per block in fp32 (256 at D = 4096).
FUSED_CE_DEFAULT_WEIGHT_FRACTION = 1 / 16
#: Rows per block are rounded down to a multiple of this (once a block has more): a (V, c)
#: block whose c is not a multiple of the vector width (16 fp32 lanes with AVX-512) runs the
#: softmax and the GEMMs on their scalar tail paths (measured: 82 rows 1.16×, 80 rows 1.10×
#: the three-GEMM floor at 4096×512×32768 on two threads).
FUSED_CE_ROW_MULTIPLE = 16
#: Rows per block the default budget reaches for when 10 % of the logits allow it: with fewer
#: rows the block GEMMs run below the full-batch speed (measurements in docs/benchmarks.md).
FUSED_CE_DEFAULT_ROWS = 128
#: A strategy of the table is passed over for the next when the budget leaves it fewer rows
#: than this while the next gets more.
FUSED_CE_FAST_ROWS = 64
#: Most rows per block: more buy no GEMM speed, only memory.
FUSED_CE_MAX_ROWS = 512
