"""Extra row-aligned inputs that some registered losses need (``LossInfo.extra_inputs``).

Each factory gets the (N, C, ...) logits and the class-index target and returns a tensor whose
dim 0 is aligned with the rows of ``input``; the suite subsets dim 0 when it drops rows.
Add an entry here when a loss declares a new extra input.
"""

from collections.abc import Callable

import torch
from torch import Tensor

ExtraFactory = Callable[[Tensor, Tensor], Tensor]


def _float(input: Tensor) -> torch.dtype:
    # float32 for half / bf16 / integer inputs so that the extras of a half call equal those of
    # the float32 call (the half-precision check compares the two), float64 kept for gradcheck.
    return torch.promote_types(input.dtype, torch.float32)


EXTRA_FACTORIES: dict[str, ExtraFactory] = {
    "sample_ids": lambda input, target: torch.arange(target.numel()).reshape(target.shape),
    "teacher_logits": lambda input, target: torch.randn(
        input.shape, dtype=_float(input), generator=torch.Generator().manual_seed(7)
    ),
    # multi-aspect-kd: Q = 3 aspect logits per row and the teacher's yes-probabilities.
    "aspect_logits": lambda input, target: torch.randn(
        (input.shape[0], 3, *input.shape[2:]),
        dtype=_float(input),
        generator=torch.Generator().manual_seed(8),
    ),
    "aspect_targets": lambda input, target: torch.rand(
        (input.shape[0], 3, *input.shape[2:]),
        dtype=_float(input),
        generator=torch.Generator().manual_seed(9),
    ),
    # consistency losses: logits of a second (augmented) view, shaped like input.
    "view_logits": lambda input, target: torch.randn(
        input.shape, dtype=_float(input), generator=torch.Generator().manual_seed(10)
    ),
}


def make_extras(names: tuple[str, ...], input: Tensor, target: Tensor) -> dict[str, Tensor]:
    missing = [n for n in names if n not in EXTRA_FACTORIES]
    if missing:
        raise KeyError(f"tests/conformance/extras.py has no factory for extra input(s) {missing}")
    return {n: EXTRA_FACTORIES[n](input, target) for n in names}


def subset_rows(extras: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    return {k: v[rows] for k, v in extras.items()}
