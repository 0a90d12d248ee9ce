"""Extra row-aligned inputs that some registered losses need (``LossInfo.extra_inputs``).

Each factory gets the (N, C, ...) logits and the class-index target and returns a tensor whose
dim 0 is aligned with the rows of ``input``; the suite subsets dim 0 when it drops rows.
Add an entry here when a loss declares a new extra input.
"""

from collections.abc import Callable

import torch
from torch import Tensor

ExtraFactory = Callable[[Tensor, Tensor], Tensor]

EXTRA_FACTORIES: dict[str, ExtraFactory] = {
    "sample_ids": lambda input, target: torch.arange(input.shape[0]),
    "teacher_logits": lambda input, target: torch.randn(
        input.shape, dtype=input.dtype, generator=torch.Generator().manual_seed(7)
    ),
}


def make_extras(names: tuple[str, ...], input: Tensor, target: Tensor) -> dict[str, Tensor]:
    missing = [n for n in names if n not in EXTRA_FACTORIES]
    if missing:
        raise KeyError(f"tests/conformance/extras.py has no factory for extra input(s) {missing}")
    return {n: EXTRA_FACTORIES[n](input, target) for n in names}


def subset_rows(extras: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    return {k: v[rows] for k, v in extras.items()}
