r"""Plackett–Luce list loss over a fixed permutation, with a hand-written backward.

For one row with student logits s in list order π (π_1 first) and weights α,

.. math::

    \ell = \sum_k \alpha_k\big[\log S_k - s_k\big],\qquad S_k = \sum_{l \ge k} e^{s_l},
    \qquad \frac{\partial \ell}{\partial s_j} = e^{s_j}\sum_{k \le j}\frac{\alpha_k}{S_k} - \alpha_j

Working in the *reversed* list (ascending), the suffix sums S are plain prefix sums, so the
forward is one cumsum without flips; the backward needs one reversed cumsum. The permutation itself needs a
sort of each row by the teacher: unavoidable, since S_k depends on the rank of every class.
On float32 teachers the sort runs on int64 keys that encode (teacher value, class index), so
an unstable sort reproduces the stable order exactly (ties by class index) and runs ~3× faster
than a stable float sort; on CPU numpy's vectorised sort is used for the keys.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._row_chunks import Grads, Needs, RowKernel, Rows, run_rows
from ._softmax_ops import rowdot


def _ordered_int(t: Tensor) -> Tensor:
    """int64 keys with the order of float32 values (−0.0 folded into +0.0, as == does)."""
    bits = (t + 0.0).view(torch.int32)
    # Negative floats order backwards as integers: flip their magnitude bits.
    flipped = torch.bitwise_xor(bits, torch.bitwise_and(bits >> 31, 0x7FFFFFFF))
    return flipped.to(torch.int64)


def ascending_pl_order(t: Tensor, y: Tensor) -> Tensor:
    """The reversed Plackett–Luce order: the true label last, before it the other classes by
    ascending teacher logit, ties by descending class index (the reverse of a stable
    descending sort with the true label first). t: (K, C) teacher logits, y: (K,)."""
    k, c = t.shape
    if t.dtype != torch.float32 or c >= 2**30:
        first = torch.zeros_like(t, dtype=torch.bool).scatter_(1, y.unsqueeze(1), True)
        desc = torch.argsort(t.masked_fill(first, float("inf")), dim=1, descending=True, stable=True)
        return desc.flip(1)
    shift = max(1, (c - 1).bit_length())
    low = (1 << shift) - 1
    cls = torch.arange(c, device=t.device)
    key = _ordered_int(t).mul_(1 << shift).add_(low - cls)
    # Above every float key: the true label sorts last.
    key.scatter_(1, y.unsqueeze(1), ((1 << 31) << shift) + (low - y).unsqueeze(1))
    if key.device.type == "cpu":
        keys = torch.from_numpy(np.sort(key.numpy(), axis=1))
    else:
        keys = torch.sort(key, dim=1).values
    return low - torch.bitwise_and(keys, low)


class _PlackettLuce(RowKernel):
    """Inputs (z, t, y): student logits, teacher logits (constant), true labels. Block by
    block: the order is sorted once and kept compactly (int16 up to 32767 classes) for the
    backward, which recomputes the rest."""

    def __init__(self, tau: float) -> None:
        self.tau = tau

    def _terms(self, z: Tensor, t: Tensor, order: Tensor) -> tuple[Tensor, ...]:
        """(alpha, s - max s, e = exp(s - max s), prefix sums of e, rows whose sums underflow)."""
        alpha = torch.softmax(t if self.tau == 1.0 else t / self.tau, dim=1)
        alpha = alpha.to(z.dtype).gather(1, order)
        s = z.gather(1, order)
        s = s.sub_(s.amax(dim=1, keepdim=True))
        e = s.exp()
        sums = torch.cumsum(e, dim=1)
        # Prefix sums of positive terms never decrease: a row underflows iff its first does.
        bad = sums[:, 0] < torch.finfo(z.dtype).tiny if sums.shape[1] else sums.new_zeros(
            sums.shape[0], dtype=torch.bool)
        if bool(bad.any()):
            # Those rows are recomputed by the caller; keep their discarded values finite.
            sums.masked_fill_(sums < torch.finfo(z.dtype).tiny, 1.0)
        return alpha, s, e, sums, bad

    def forward_rows(self, inputs: Rows) -> tuple[Rows, Rows]:
        z, t, y = inputs
        order = ascending_pl_order(t, y)
        alpha, s, e, sums, bad = self._terms(z, t, order)
        # log S_k - s_k = log(sum_{l <= k} e_l) - (s_k - max s)
        value = rowdot(alpha, torch.log(sums).sub_(s))
        small = torch.int16 if z.shape[1] <= 2**15 else torch.int32
        return (value, bad), (order.to(small),)

    def backward_rows(self, inputs: Rows, saved: Rows, grads: Rows, needs: Needs) -> Grads:
        z, t, _ = inputs
        order = saved[0].long()
        alpha, _, e, sums, _ = self._terms(z, t, order)
        w = torch.div(alpha, sums).flip(1)
        # sum_{k >= j} w_k as a reversed cumsum: "total - prefix" would cancel catastrophically
        # (w is largest at the head, where the prefix sums are tiny).
        tail = w.cumsum_(dim=1).flip(1)
        grad_s = tail.mul_(e).sub_(alpha).mul_(grads[0].unsqueeze(1))
        return torch.zeros_like(grad_s).scatter_(1, order, grad_s), None, None


def plackett_luce(z: Tensor, teacher_logits: Tensor, y: Tensor, *, tau: float) -> tuple[Tensor, Tensor]:
    """Per-row PL loss of logits z (K, C) in the order of the teacher (true label ``y`` first,
    then descending teacher logit), weighted by softmax(teacher / tau) (constants), and a mask
    of rows whose suffix sums underflowed (their values must be recomputed in log space by
    the caller)."""
    value, bad = run_rows(_PlackettLuce(float(tau)), z, teacher_logits.detach(), y)
    return value, bad
