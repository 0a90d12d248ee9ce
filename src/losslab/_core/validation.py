"""Input checks shared by every public entry point.

Every check raises ``ValueError`` or ``TypeError`` whose message starts with the public
function's name, names the argument, and says what was received and what was expected.
Checks run once, at the public entry; inner helpers trust their inputs.

Checks of shapes, dtypes and arguments always run. Checks that read tensor *values* (a class
index out of range, a negative weight) run only where values exist: they are skipped for
meta tensors (shape inference) and while ``torch.compile`` traces the function, where a
value-dependent branch would break the graph (:func:`values_checkable`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def values_checkable(*tensors: Tensor | None) -> bool:
    """Whether checks that read tensor values can run: not while ``torch.compile`` traces, and
    not on meta tensors, which have shapes but no values."""
    if torch.compiler.is_compiling():
        return False
    return not any(t is not None and t.is_meta for t in tensors)


def class_counts(y: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """How many of the indices ``y`` (K,) name each class, as (C,) in ``dtype``;
    ``bincount`` where it has values, a scatter-add on meta tensors (no ``bincount`` there)."""
    if y.is_meta:
        return torch.zeros(num_classes, dtype=dtype, device=y.device).index_add_(
            0, y, torch.ones(y.shape, dtype=dtype, device=y.device))
    return torch.bincount(y, minlength=num_classes).to(dtype)


def check_tensor(fn: str, name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_floating(fn: str, name: str, value: Tensor) -> None:
    if not value.is_floating_point():
        raise TypeError(
            f"{fn}: {name} must be a floating-point tensor (logits), got dtype {value.dtype}"
        )


def check_reduction(fn: str, reduction: object) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{fn}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}"
        )
    return str(reduction)


def check_ignore_index(fn: str, ignore_index: object) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{fn}: ignore_index must be an int, got {type(ignore_index).__name__}")
    return int(ignore_index)


def check_class_weight(fn: str, weight: object, num_classes: int, like: Tensor) -> Tensor | None:
    """Validate a per-class weight vector of shape (C,) and return it as float32 on ``like``'s
    device."""
    if weight is None:
        return None
    w = check_tensor(fn, "weight", weight)
    if w.dim() != 1 or w.shape[0] != num_classes:
        raise ValueError(
            f"{fn}: weight must have shape ({num_classes},), one entry per class, "
            f"got shape {tuple(w.shape)}"
        )
    if not w.is_floating_point():
        raise TypeError(f"{fn}: weight must be a floating-point tensor, got dtype {w.dtype}")
    if values_checkable(w) and (bool((w < 0).any()) or not bool(torch.isfinite(w).all())):
        raise ValueError(f"{fn}: weight must be finite and non-negative, got {w.tolist()}")
    return w.to(device=like.device, dtype=torch.promote_types(like.dtype, torch.float32))


def check_number(
    fn: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that a scalar hyperparameter is a finite real number inside an interval.

    ``low_open=True`` excludes ``low`` itself (for example ``q`` in ``(0, 1]``). Python and
    NumPy numbers are accepted, and so is a one-element tensor that does not require grad.
    Hyperparameters are constants: a learnable one (``requires_grad=True``) is rejected rather
    than silently detached — to learn, e.g., a temperature, scale the logits yourself.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        if value.requires_grad:
            raise TypeError(
                f"{fn}: {name} must be a constant, got a tensor that requires grad; "
                f"hyperparameters are not differentiated"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{fn}: {name} must be finite, got {v}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = f"{left}{lo}, {hi}{right}"
        raise ValueError(f"{fn}: {name} must lie in {interval}, got {v:g}")
    return v


def check_choice(fn: str, name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(
            f"{fn}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return str(value)


def flatten_logits(fn: str, input: Tensor) -> tuple[Tensor, int]:
    """Return logits as (M, C) with the class dimension last, and C.

    Accepts (N, C) and (N, C, d1, ...) like ``F.cross_entropy``, and its unbatched form: one
    row of logits (C,) with a 0-dim target is the batch (1, C).
    """
    check_tensor(fn, "input", input)
    check_floating(fn, "input", input)
    if input.dim() == 1 and input.shape[0] >= 1:
        return input.unsqueeze(0), input.shape[0]
    if input.dim() < 2:
        raise ValueError(
            f"{fn}: input must be logits of shape (N, C) or (N, C, d1, ...), "
            f"got shape {tuple(input.shape)}"
        )
    num_classes = input.shape[1]
    if num_classes < 1:
        raise ValueError(f"{fn}: input has no classes (C=0), shape {tuple(input.shape)}")
    flat = input.movedim(1, -1).reshape(-1, num_classes) if input.dim() > 2 else input
    return flat, num_classes


def expected_target_shape(input: Tensor) -> tuple[int, ...]:
    """The shape of class-index targets (and of ``reduction="none"``) for ``input``: () for
    unbatched logits (C,)."""
    if input.dim() == 1:
        return ()
    return (input.shape[0], *input.shape[2:])


def check_index_target(fn: str, input: Tensor, target: object, ignore_index: int) -> Tensor:
    """Check class-index targets against logits; return them flattened to (M,) int64."""
    t = check_tensor(fn, "target", target)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(
            f"{fn}: target must hold class indices (an integer tensor such as int64), "
            f"got dtype {t.dtype}"
        )
    shape = expected_target_shape(input)
    if tuple(t.shape) != shape:
        raise ValueError(
            f"{fn}: target must have shape {shape} for input of shape {tuple(input.shape)}, "
            f"got {tuple(t.shape)}"
        )
    flat = t.reshape(-1).long()
    if not values_checkable(input, flat):
        return flat
    num_classes = input.shape[1] if input.dim() > 1 else input.shape[0]
    kept = flat[flat != ignore_index]
    if kept.numel() > 0:
        low, high = int(kept.min()), int(kept.max())
        if high >= num_classes:
            raise ValueError(
                f"{fn}: target has class {high} but input has only {num_classes} classes "
                f"(C={num_classes})"
            )
        if low < 0:
            raise ValueError(
                f"{fn}: target has negative class {low}; class indices must lie in "
                f"[0, {num_classes - 1}] or equal ignore_index={ignore_index}"
            )
    return flat


def check_probability_target(fn: str, input: Tensor, target: Tensor) -> Tensor:
    """Check a probability target shaped like ``input``; return it as (M, C)."""
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"{fn}: a probability target must have the input's shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    flat, _ = flatten_logits(fn, target)
    return flat


_F32 = torch.finfo(torch.float32)


def check_float32_number(fn: str, name: str, value: float) -> float:
    """Reject a (validated) hyperparameter that float32 cannot hold: it would become ``inf`` or
    ``0`` inside the loss (for example ``lam=1e300`` → ``inf·0 = NaN``)."""
    v = float(value)
    if v != 0.0 and not _F32.tiny <= abs(v) <= _F32.max:
        raise ValueError(
            f"{fn}: {name} must be 0 or have magnitude in [{_F32.tiny:.3g}, {_F32.max:.3g}] "
            f"(representable in float32), got {v:g}"
        )
    return v
