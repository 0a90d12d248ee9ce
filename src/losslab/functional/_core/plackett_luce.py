r"""Plackett–Luce list loss over the teacher's order, value and gradient in one pass.

For one row with student logits s in list order π (π_1 first) and weights α,

.. math::

    \ell = \sum_k \alpha_k\big[\log S_k - s_k\big],\qquad S_k = \sum_{l \ge k} e^{s_l},
    \qquad \frac{\partial \ell}{\partial s_j} = e^{s_j}\sum_{k \le j}\frac{\alpha_k}{S_k} - \alpha_j

Working in the *reversed* list (ascending), the suffix sums S are plain prefix sums (one
cumsum); the gradient needs one reversed cumsum. The order itself needs a sort of each row
by the teacher: unavoidable, since S_k depends on the rank of every class. The sort is most
of the cost, so it is made cheap:

* exact reference (:func:`ascending_pl_order`): int64 keys (teacher value, class index), so
  an unstable sort reproduces the stable order (ties by class index);
* fast path (CPU, float32, C ≤ 4096): int32 keys — the teacher quantised monotonically to
  the bits the class index leaves free, then the index — a faster sort than int64 keys
  (measured in ``docs/benchmarks.md``, "Measurements behind implementation choices").
  Quantisation can only swap classes whose teacher values share a quantisation step; those
  are found by checking the sorted teacher values and repaired (a swapped pair is swapped
  back; a row with a longer run of shared steps is re-sorted with the exact keys), so the
  order is exactly the reference's.

The gradient is computed in the forward, block by block while the block is in cache, and
kept (when a backward can follow): the backward only scales it by the upstream gradient
instead of sorting again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..._core.autograd import first_order_only
from ..._core.block_sizes import PLACKETT_LUCE_ELEMENTS
from ..._core.scratch import Scratch
from .row_blocks import block_slices
from .softmax_objectives import rowdot

#: Widest rows sorted with int32 keys: 12 index bits leave 19 bits of teacher resolution.
INT32_KEY_MAX_CLASSES = 4096
#: Rows whose teacher spans more than this (masked classes at -inf or -1e9) are quantised
#: over their top MASK_WINDOW only; anything further below shares the lowest step.
MASK_WINDOW = 1024.0
#: Elements per block on the CPU: losslab._core.block_sizes (the measurement behind it is in
#: docs/benchmarks.md).
BLOCK_ELEMENTS = PLACKETT_LUCE_ELEMENTS


def _ordered_int(t: Tensor) -> Tensor:
    """int64 keys with the order of float32 values (−0.0 folded into +0.0, as == does)."""
    bits = (t + 0.0).view(torch.int32)
    # Negative floats order backwards as integers: flip their magnitude bits.
    flipped = torch.bitwise_xor(bits, torch.bitwise_and(bits >> 31, 0x7FFFFFFF))
    return flipped.to(torch.int64)


def _class_keys(key: Tensor, y: Tensor, bits: int, label_step: int) -> Tensor:
    """Sort keys, in place: ``key · 2^bits`` plus the reversed class index (so that an
    ascending sort breaks ties by descending class), and for the true label the key of step
    ``label_step``, above every other. :func:`_classes` reads the class back."""
    low = (1 << bits) - 1
    reversed_class = torch.arange(low, low - key.shape[1], -1, dtype=key.dtype, device=key.device)
    key = torch.add(reversed_class, key, alpha=1 << bits, out=key)
    label = (label_step << bits) + (low - y.to(key.dtype))
    return key.scatter_(1, y.unsqueeze(1), label.unsqueeze(1))


def _classes(keys: Tensor, bits: int, out: Tensor | None = None) -> Tensor:
    """The class index of each key made by :func:`_class_keys`: low - (key & low)."""
    low = (1 << bits) - 1
    return torch.bitwise_and(keys, low, out=out).neg_().add_(low)


def stable_pl_order(t: Tensor, y: Tensor) -> Tensor:
    """:func:`ascending_pl_order` by one stable ``argsort`` in PyTorch (any dtype, traceable
    by ``torch.compile``); slower than the integer keys on float32."""
    first = torch.zeros_like(t, dtype=torch.bool).scatter_(1, y.unsqueeze(1), True)
    desc = torch.argsort(t.masked_fill(first, float("inf")), dim=1, descending=True, stable=True)
    return desc.flip(1)


def ascending_pl_order(t: Tensor, y: Tensor) -> Tensor:
    """The reversed Plackett–Luce order: the true label last, before it the other classes by
    ascending teacher logit, ties by descending class index (the reverse of a stable
    descending sort with the true label first). t: (K, C) teacher logits, y: (K,)."""
    k, c = t.shape
    if t.dtype != torch.float32 or c >= 2**30:
        return stable_pl_order(t, y)
    bits = max(1, (c - 1).bit_length())
    # Step 2^31 is above every float key: the true label sorts last.
    key = _class_keys(_ordered_int(t), y, bits, 1 << 31)
    if key.device.type == "cpu":
        keys = torch.from_numpy(np.sort(key.numpy(), axis=1))
    else:
        keys = torch.sort(key, dim=1).values
    return _classes(keys, bits)


def _quantized_order(t: Tensor, y: Tensor, ws: Scratch) -> tuple[Tensor, Tensor]:
    """:func:`ascending_pl_order` (as int32) and the teacher in that order, for float32 CPU
    rows of at most INT32_KEY_MAX_CLASSES classes, sorting int32 keys."""
    k, c = t.shape
    bits = max(1, (c - 1).bit_length())
    # Steps are exact float32 integers (< 2^22) and leave the int32 key's sign bit clear.
    label_step = (1 << min(31 - bits, 22)) - 1  # the true label's step: above every class's
    lo, hi = t.amin(dim=1, keepdim=True), t.amax(dim=1, keepdim=True)
    wide = ~(hi - lo <= MASK_WINDOW)  # also infinite and NaN spans
    masked = bool(wide.any())
    if masked:
        # Masked classes (-inf, -1e9, finfo.min) would widen the range until every real
        # logit shared one step: such rows are quantised over their top MASK_WINDOW.
        near = torch.ge(t, hi - MASK_WINDOW, out=ws("near", (k, c), torch.bool))
        above = torch.where(near, t, hi, out=ws("step", (k, c), t.dtype))
        lo = torch.where(wide, above.amin(dim=1, keepdim=True), lo)
    # Steps 0 .. label_step - 3 from lo (one spare: rounding may lift the top by < 1), monotone
    # in t; with masked rows, 1 .. label_step - 2 and step 0 for all that lies below lo.
    scale = (label_step - 3) / (hi - lo)
    step = torch.sub(t, lo, out=ws("step", (k, c), t.dtype)).mul_(scale)
    if masked:
        step.add_(1.0).clamp_(min=0.0)
    # The repair relies on steps that never decrease along the teacher. Constant rows,
    # +inf and NaN would break that: one step for the whole row, which the repair then sorts.
    usable = torch.isfinite(scale) & (scale > 0)
    if not bool(usable.all()):
        step.masked_fill_(~usable, 0.0)
    key = ws("key", (k, c), torch.int32).copy_(step)  # truncation: the floor of steps >= 0
    key = _class_keys(key, y, bits, label_step)
    key.numpy().sort(axis=1)
    order = _classes(key, bits, out=ws("order", (k, c), torch.int32))
    ts = torch.gather(t, 1, order, out=ws("teacher", (k, c), t.dtype))
    # A class may precede one with a smaller teacher value only inside a shared step (ties
    # are already by class index: equal values share a step). The true label is excluded.
    late = torch.lt(ts[:, 1 : c - 1], ts[:, : c - 2], out=ws("late", (k, c - 2), torch.bool))
    # numpy's nonzero on bools is ~7× faster than torch's on the CPU.
    flat = torch.from_numpy(np.flatnonzero(late.numpy()))
    if flat.numel():
        _repair(t, y, key, bits, order, ts, flat // (c - 2), flat % (c - 2))
    return order, ts


def _repair(t: Tensor, y: Tensor, key: Tensor, bits: int, order: Tensor, ts: Tensor, rows: Tensor,
            pos: Tensor) -> tuple[int, int]:
    """Fix the out-of-order adjacent pairs (rows, pos)/(rows, pos + 1) of ``order`` and ``ts``
    in place: a pair that is its step's only two classes is swapped; a row with a longer
    run of shared steps is sorted again with the exact keys. Returns (pairs swapped, rows
    re-sorted)."""

    def step(at: Tensor) -> Tensor:  # the quantised teacher of sorted position (rows, at)
        return key[rows, at] >> bits

    # pos + 2 <= C - 1 is at worst the true label, alone in its step.
    alone_before = (pos == 0) | (step((pos - 1).clamp(min=0)) != step(pos))
    pair = alone_before & (step(pos + 2) != step(pos + 1))
    r, p = rows[pair], pos[pair]
    for x in (order, ts):
        left = x[r, p]
        x[r, p] = x[r, p + 1]
        x[r, p + 1] = left
    longer = torch.unique(rows[~pair])
    if longer.numel():
        exact = ascending_pl_order(t[longer], y[longer])
        order[longer] = exact.to(order.dtype)
        ts[longer] = t[longer].gather(1, exact)
    return int(r.numel()), int(longer.numel())


def _order(t: Tensor, y: Tensor, ws: Scratch) -> tuple[Tensor, Tensor]:
    """(order, teacher in that order) of a block: the ascending Plackett–Luce order."""
    if t.device.type == "cpu" and t.dtype == torch.float32 and 3 <= t.shape[1] <= INT32_KEY_MAX_CLASSES:
        return _quantized_order(t, y, ws)
    order = ascending_pl_order(t, y)
    return order, t.gather(1, order)


def _block(
    z: Tensor, t: Tensor, y: Tensor, tau: float, grad: Tensor | None, ws: Scratch
) -> tuple[Tensor, Tensor]:
    """Loss of each row of a block and the rows whose suffix sums underflow; writes
    ∂loss/∂z into ``grad`` when given. Every (rows, C) temporary is a ``ws`` buffer."""
    shape, dtype = z.shape, z.dtype
    order, ts = _order(t, y, ws)
    if tau != 1.0:
        ts = torch.div(ts, tau, out=ws("scaled", shape, ts.dtype))
    alpha = torch._softmax(ts, 1, False, out=ws("alpha", shape, ts.dtype)).to(dtype)
    s = torch.gather(z, 1, order, out=ws("student", shape, dtype))
    s = s.sub_(s.amax(dim=1, keepdim=True))
    e = torch.exp(s, out=ws("exp", shape, dtype))
    sums = torch.cumsum(e, dim=1, out=ws("sums", shape, dtype))
    tiny = torch.finfo(dtype).tiny
    # Prefix sums of positive terms never decrease: a row underflows iff its first does.
    bad = sums[:, 0] < tiny if shape[1] else sums.new_zeros(shape[0], dtype=torch.bool)
    if bool(bad.any()):
        # Those rows are recomputed by the caller; keep their discarded values finite.
        sums.masked_fill_(sums < tiny, 1.0)
    # log S_k - s_k = log(sum_{l <= k} e_l) - (s_k - max s)
    value = rowdot(alpha, torch.log(sums, out=ws("terms", shape, dtype)).sub_(s))
    if grad is not None:
        w = torch.div(alpha, sums, out=sums)
        # sum_{k >= j} w_k as a reversed cumsum: "total - prefix" would cancel catastrophically
        # (w is largest at the head, where the prefix sums are tiny).
        reverse = torch.arange(shape[1] - 1, -1, -1, device=z.device)
        tail = torch.index_select(w, 1, reverse, out=ws("terms", shape, dtype)).cumsum_(dim=1)
        tail = torch.index_select(tail, 1, reverse, out=sums)
        grad.scatter_(1, order, tail.mul_(e).sub_(alpha))
    return value, bad


def _loss_rows(z: Tensor, t: Tensor, y: Tensor, tau: float, grad: Tensor | None) -> tuple[Tensor, Tensor]:
    """Per-row loss and underflow mask of (K, C) inputs, block by block; fills ``grad``."""
    value = z.new_empty(z.shape[0])
    bad = torch.empty(z.shape[0], dtype=torch.bool, device=z.device)
    ws = Scratch(z.device)
    for rows in block_slices(z, BLOCK_ELEMENTS):
        value[rows], bad[rows] = _block(
            z[rows], t[rows], y[rows], tau, None if grad is None else grad[rows], ws
        )
    return value, bad


class _PlackettLuce(torch.autograd.Function):
    """The gradient made in the forward is handed to the first backward, which scales it in
    place and returns it: no second (K, C) allocation (0.18 s, 12 % of the loss, at
    65536×1000). A later backward through a retained graph computes it again from the saved
    inputs. The buffer is a ``ctx`` attribute, so saved-tensor hooks (offloading) skip it."""

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, t: Tensor, y: Tensor, tau: float, keep_grad: bool
    ) -> tuple[Tensor, Tensor]:
        ctx.grad = torch.empty_like(z) if keep_grad else None
        value, bad = _loss_rows(z, t, y, tau, ctx.grad)
        ctx.loss_name = "PlackettLuce"  # named by first_order_only's error
        ctx.tau = tau
        ctx.save_for_backward(z, t, y)
        ctx.mark_non_differentiable(bad)
        return value, bad

    @staticmethod
    @first_order_only
    @once_differentiable
    def backward(ctx: Any, grad_value: Tensor, _: Tensor) -> tuple[Tensor | None, ...]:
        grad, ctx.grad = ctx.grad, None
        if grad is None:
            # Unpacked only here: the forward's gradient does not depend on later in-place
            # changes to the inputs, a recomputed one would (PyTorch's version check raises).
            z, t, y = ctx.saved_tensors
            grad = torch.empty_like(z)
            _loss_rows(z, t, y, ctx.tau, grad)
        return grad.mul_(grad_value.unsqueeze(1)), None, None, None, None


def plackett_luce(z: Tensor, teacher_logits: Tensor, y: Tensor, *, tau: float) -> tuple[Tensor, Tensor]:
    """Per-row PL loss of logits z (K, C) in the order of the teacher (true label ``y`` first,
    then descending teacher logit), weighted by softmax(teacher / tau) (constants), and a mask
    of rows whose suffix sums underflowed (their values must be recomputed in log space by
    the caller)."""
    value: Tensor
    bad: Tensor
    # The gradient is made in the forward: only when a backward can follow.
    keep_grad = torch.is_grad_enabled() and z.requires_grad
    value, bad = _PlackettLuce.apply(  # type: ignore[no-untyped-call]
        z, teacher_logits.detach(), y, float(tau), keep_grad
    )
    return value, bad
