"""Row-aligned extra inputs of logit losses (teacher logits, aspect logits, second views).

An extra input has the layout of ``input``: (N, Q) or (N, Q, d1, ...) with the same N and
spatial dims, Q its own width. Inside a per-row function (called by
:func:`losslab._core.logit_loss.logit_loss` after it validated ``input`` and ``target``) it is
flattened like the logits and subset to the kept rows, so that it stays aligned with them.

Checks, with the public function's name in every message: a tensor (``TypeError``), the
layout above with the required width (``ValueError`` naming the shape expected, the input's
shape and the shape received), a floating-point dtype (``TypeError``). Values are not checked:
non-finite teacher logits give a non-finite loss, as non-finite ``input`` does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.validation import check_tensor, values_checkable


def aligned_rows(
    fn: str,
    name: str,
    extra: object,
    input: Tensor,
    target: Tensor,
    ignore_index: int,
    *,
    width: int | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Return ``extra`` as (K, Q) rows aligned with the kept rows of ``input``.

    ``width`` (if given) is the required Q, e.g. the number of classes for teacher logits.
    """
    e = check_tensor(fn, name, extra)
    if input.dim() == 1 and e.dim() == 1:  # unbatched: one row
        input, e, target = input.unsqueeze(0), e.unsqueeze(0), target.reshape(1)
    spatial = tuple(input.shape[2:])
    if (
        e.dim() != input.dim()
        or e.shape[0] != input.shape[0]
        or tuple(e.shape[2:]) != spatial
        or (width is not None and e.shape[1] != width)
    ):
        q = "Q" if width is None else str(width)
        want = (input.shape[0], q, *spatial)
        raise ValueError(
            f"{fn}: {name} must have shape ({', '.join(map(str, want))}) aligned with input "
            f"of shape {tuple(input.shape)}, got {tuple(e.shape)}"
        )
    if not e.is_floating_point():
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got dtype {e.dtype}")
    flat = e.movedim(1, -1).reshape(-1, e.shape[1]) if e.dim() > 2 else e
    # Traced (torch.compile) and meta inputs keep every row in place (see logit_loss).
    if values_checkable(flat, target):
        kept = target.reshape(-1) != ignore_index
        if not bool(kept.all()):
            flat = flat[kept]
    return flat if dtype is None else flat.to(dtype)


def logits_like_rows(
    fn: str,
    name: str,
    extra: object,
    input: Tensor,
    target: Tensor,
    ignore_index: int,
    z: Tensor,
    *,
    detach: bool,
) -> Tensor:
    """A second set of logits shaped like ``input`` (teacher or second view) as rows aligned
    with the kept rows ``z`` (K, C), in ``z``'s dtype; detached for teachers."""
    rows = aligned_rows(
        fn, name, extra, input, target, ignore_index, width=z.shape[1], dtype=z.dtype
    )
    return rows.detach() if detach else rows


def teacher_logit_rows(
    fn: str,
    teacher_logits: object,
    input: Tensor,
    target: Tensor,
    ignore_index: int,
    z: Tensor,
) -> Tensor:
    """The ``teacher_logits`` argument, shaped like ``input``, as detached rows aligned with the
    kept rows ``z`` (K, C), in ``z``'s dtype: a teacher gets no gradient."""
    return logits_like_rows(
        fn, "teacher_logits", teacher_logits, input, target, ignore_index, z, detach=True
    )
