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
#: Bytes of one block of logits of the fused linear cross-entropy: 10 MiB (2 % of the fp32
#: logits at 4096×32768).
FUSED_CE_BLOCK_BYTES = 10 * 2**20
#: Fewest rows per fused cross-entropy block: fewer starve the GEMMs.
FUSED_CE_MIN_ROWS = 32
