r"""Per-row objectives over (K, C) logits computed a block of rows at a time.

Eager PyTorch runs one pass over the whole (K, C) matrix per elementwise operation, and every
intermediate it keeps for the backward is another freshly allocated (K, C) tensor. At the
sizes where speed matters (K = 65536 rows, C = 1000) each such tensor is 256 MiB: its passes
run at memory bandwidth and its allocation costs page faults. A :class:`RowKernel` instead
sees a block of about 2¹⁶ elements at a time (65 rows at C = 1000, 256 KiB per tensor), so
its intermediates stay in cache; it keeps only per-row statistics (K,) for the backward,
which recomputes what it needs block by block and writes the gradient once. The measured
effect is in ``docs/benchmarks.md`` ("Measurements behind implementation choices").

On devices other than the CPU the whole batch is one block (kernel launches, not cache,
dominate there). Backward passes are first order (:func:`~losslab._core.autograd.first_order_only`);
every kernel is checked against autograd with float64 ``gradcheck`` in ``tests/functional``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from ..._core.block_sizes import CPU_BLOCK_ELEMENTS, MIN_ROWS, ROW_TEMPORARY_ELEMENTS

Rows = tuple[Tensor, ...]  # row-aligned blocks of a kernel's inputs, outputs or statistics
Needs = tuple[bool, ...]  # which inputs need a gradient
Grads = tuple[Tensor | None, ...]  # one gradient (or None) per input

# Block sizes (CPU_BLOCK_ELEMENTS, MIN_ROWS): losslab._core.block_sizes.


def rows_per_block(x: Tensor, elements: int | None = None) -> int:
    """How many rows of the (K, C...) tensor ``x`` one block of about ``elements`` elements
    (default CPU_BLOCK_ELEMENTS) holds."""
    rows = x.shape[0]
    if x.device.type != "cpu":
        return max(rows, 1)
    width = x[0].numel() if rows else 1
    return max(MIN_ROWS, (elements or CPU_BLOCK_ELEMENTS) // max(width, 1))


class RowKernel:
    """A per-row objective written block by block.

    ``forward_rows`` gets one block of each row-aligned input (rows ``i:j`` of every tensor
    passed to :func:`run_rows`) and returns ``(outputs, saved)``: the per-row outputs of the
    block and the row-aligned tensors the backward needs (usually (rows,) statistics).
    ``backward_rows`` gets the same input block, the saved block, the outputs' upstream
    gradients for the block, and which inputs need a gradient; it returns one gradient
    (or None) per input.
    """

    def forward_rows(self, inputs: Rows) -> tuple[Rows, Rows]:
        raise NotImplementedError

    def backward_rows(self, inputs: Rows, saved: Rows, grads: Rows, needs: Needs) -> Grads:
        raise NotImplementedError


def _blocks(rows: int, step: int) -> list[slice]:
    # Zero rows still run the kernel once, on empty blocks, so outputs get their shapes.
    return [slice(i, i + step) for i in range(0, rows, step)] or [slice(0, 0)]


def block_slices(x: Tensor, elements: int | None = None) -> list[slice]:
    """The row blocks of ``x`` for loops outside :func:`run_rows` (ones that need no gradient,
    or that make their own), of about ``elements`` elements each (default
    CPU_BLOCK_ELEMENTS)."""
    return _blocks(x.shape[0], rows_per_block(x, elements))


class _RowChunked(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, kernel: RowKernel, *inputs: Tensor) -> tuple[Tensor, ...]:
        step = rows_per_block(inputs[0])
        outs: list[list[Tensor]] = []
        kept: list[list[Tensor]] = []
        for block in _blocks(inputs[0].shape[0], step):
            o, s = kernel.forward_rows(tuple(x[block] for x in inputs))
            outs = outs or [[] for _ in o]
            kept = kept or [[] for _ in s]
            for acc, t in zip(outs, o, strict=True):
                acc.append(t)
            for acc, t in zip(kept, s, strict=True):
                acc.append(t)
        outputs = tuple(torch.cat(parts) for parts in outs)
        ctx.kernel, ctx.step, ctx.n_inputs = kernel, step, len(inputs)
        ctx.loss_name = type(kernel).__name__.lstrip("_")  # named by first_order_only's error
        ctx.save_for_backward(*inputs, *(torch.cat(parts) for parts in kept))
        ctx.mark_non_differentiable(*(o for o in outputs if not o.is_floating_point()))
        return outputs

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        tensors = ctx.saved_tensors
        inputs, saved = tensors[: ctx.n_inputs], tensors[ctx.n_inputs :]
        needs = tuple(ctx.needs_input_grad[1:])
        result = [torch.empty_like(x) if need else None for x, need in zip(inputs, needs, strict=True)]
        for block in _blocks(inputs[0].shape[0], ctx.step):
            parts = ctx.kernel.backward_rows(
                tuple(x[block] for x in inputs),
                tuple(s[block] for s in saved),
                tuple(g[block] for g in grads),
                needs,
            )
            for out, part in zip(result, parts, strict=True):
                if out is None:
                    continue
                if part is None:  # a kernel may return None for a zero gradient
                    out[block].zero_()
                else:
                    out[block].copy_(part)
        return (None, *result)


def run_rows(kernel: RowKernel, *inputs: Tensor) -> tuple[Tensor, ...]:
    """Apply ``kernel`` block by block to row-aligned ``inputs`` (the first one sets the
    blocks); returns its per-row outputs, differentiable in the floating-point inputs."""
    out: tuple[Tensor, ...] = _RowChunked.apply(kernel, *inputs)  # type: ignore[no-untyped-call]
    return out


# Elements per block of row-blocked temporaries: losslab._core.block_sizes.
_BLOCK_ELEMENTS = ROW_TEMPORARY_ELEMENTS


def row_blocks(x: Tensor) -> list[slice]:
    """Slices of about 2M elements over the rows of a (K, C) tensor.

    Temporaries that only feed a row reduction are computed block by block: a fresh (K, C)
    allocation costs more in page faults than the arithmetic on it, while blocks of a few MB
    are reused by the allocator.
    """
    step = max(1, _BLOCK_ELEMENTS // max(1, x.shape[1]))
    return [slice(start, start + step) for start in range(0, x.shape[0], step)]
