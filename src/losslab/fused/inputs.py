"""Input checks and the row layout shared by the fused entries (``linear_cross_entropy``,
``linear_loss``): a linear head's tensors, class-index targets, the ``shift`` layout, kept
rows, and the scatter of per-row results back to the target's shape."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._core.validation import check_tensor

#: The argument names of the student head; a teacher head passes its own.
HEAD_NAMES = ("hidden", "weight", "bias")


def check_head(fn: str, hidden: object, weight: object, bias: object, *, shift: bool,
               names: tuple[str, str, str] = HEAD_NAMES) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check a linear head: (..., D) hidden states, a (V, D) weight of the same floating dtype
    and an optional (V,) bias, all on hidden's device."""
    nh, nw, nb = names
    h = check_tensor(fn, nh, hidden)
    w = check_tensor(fn, nw, weight)
    for name, x in ((nh, h), (nw, w)):
        if not x.is_floating_point():
            raise TypeError(f"{fn}: {name} must be a floating-point tensor, got dtype {x.dtype}")
    if w.dim() != 2:
        raise ValueError(f"{fn}: {nw} must have shape (V, D), got shape {tuple(w.shape)}")
    if h.dim() < (2 if shift else 1):
        raise ValueError(
            f"{fn}: {nh} must have shape (..., {'T, ' if shift else ''}D), "
            f"got shape {tuple(h.shape)}"
        )
    if h.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{fn}: {nh} has D={h.shape[-1]} (shape {tuple(h.shape)}) but {nw} has "
            f"D={w.shape[1]} (shape {tuple(w.shape)}); expected {nw} of shape (V, {h.shape[-1]})"
        )
    if h.dtype != w.dtype:
        raise TypeError(
            f"{fn}: {nh} and {nw} must have the same dtype, got {h.dtype} and {w.dtype}"
        )
    b = None
    if bias is not None:
        b = check_tensor(fn, nb, bias)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{fn}: {nb} must have shape ({w.shape[0]},), got {tuple(b.shape)}")
        if b.dtype != w.dtype:
            raise TypeError(f"{fn}: {nb} must have {nw}'s dtype {w.dtype}, got {b.dtype}")
    for name, other in ((nw, w), (nb, b)):
        if other is not None and other.device != h.device:
            raise ValueError(f"{fn}: {name} is on {other.device} but {nh} is on {h.device}")
    return h, w, b


def check_index_target(fn: str, target: object, hidden: Tensor) -> Tensor:
    """Class indices with hidden's shape without D, on hidden's device."""
    t = check_tensor(fn, "target", target)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(
            f"{fn}: target must hold class indices (an integer tensor such as int64), "
            f"got dtype {t.dtype}"
        )
    if tuple(t.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"{fn}: target must have shape {tuple(hidden.shape[:-1])} (hidden's shape without "
            f"D), got {tuple(t.shape)}"
        )
    if t.device != hidden.device:
        raise ValueError(f"{fn}: target is on {t.device} but hidden is on {hidden.device}")
    return t


def check_target_range(fn: str, y: Tensor, vocab_total: int, ignore_index: int) -> None:
    kept = y[y != ignore_index]
    if kept.numel() == 0:
        return
    low, high = int(kept.min()), int(kept.max())
    if high >= vocab_total or low < 0:
        bad = high if high >= vocab_total else low
        raise ValueError(
            f"{fn}: target has class {bad} but the vocabulary has V={vocab_total} entries; "
            f"targets must lie in [0, {vocab_total - 1}] or equal ignore_index={ignore_index}"
        )


class RowLayout(NamedTuple):
    """Targets of the kept rows among the M = prod(hidden.shape[:-1]) rows of hidden."""

    y: Tensor  # (K,) int64 targets of the kept rows
    rows: Tensor | None  # (K,) their indices among the M rows, None when every row is kept
    total: int  # M


def kept_rows(target: Tensor, ignore_index: int, shift: bool) -> RowLayout:
    """Row i of the flattened hidden states is scored against target i, or with ``shift``
    against target[..., t + 1] (the last position of each sequence is then ignored); no
    copy of hidden is made."""
    if shift:
        y_all = torch.full_like(target, ignore_index)
        y_all[..., :-1] = target[..., 1:]
        y_all = y_all.reshape(-1).long()
    else:
        y_all = target.reshape(-1).long()
    kept = y_all != ignore_index
    if bool(kept.all()):
        return RowLayout(y_all, None, y_all.shape[0])
    rows = kept.nonzero().squeeze(1)
    return RowLayout(y_all.index_select(0, rows), rows, y_all.shape[0])


def scatter_rows(values: Tensor, rows: Tensor | None, total: int, shape: tuple[int, ...],
                 shift: bool) -> Tensor:
    """Kept-row values → target-shaped tensor with zeros at ignored positions (with
    ``shift``: target[..., 1:]'s shape)."""
    full = values if rows is None else values.new_zeros(total).index_put((rows,), values)
    full = full.reshape(shape)
    return full[..., :-1] if shift else full
