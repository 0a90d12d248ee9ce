"""log(1 - p) from logits, exact where p -> 1 and cheap where it is not.

For p < 1/2, log1p(-p) is accurate. For p >= 1/2 (only the arg-max class of a row can be
there) the complement sum_{k != c} p_k is computed as a logsumexp with class c masked out —
exact even when p rounds to 1, so losses built on (1 - p) stay finite and differentiable at
any logit scale. The masked logsumexp runs only on the rows that need it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._core.validation import values_checkable

_HALF = -math.log(2.0)


def _masked_complement(z: Tensor, idx: Tensor) -> Tensor:
    """log sum_{k != idx} softmax(z)_k for (R, C) logits and (R,) class indices."""
    masked = z.scatter(1, idx.unsqueeze(1), float("-inf"))
    return torch.logsumexp(masked, dim=1) - torch.logsumexp(z, dim=1)


def log1m_prob_at(z: Tensor, idx: Tensor, log_p: Tensor) -> Tensor:
    """log(1 - p_idx) per row, given log p_idx; z (K, C) with C >= 2, idx and log_p (K,)."""
    high = log_p >= _HALF
    # The where-guard keeps log1p(-1) = -inf out of the gradient of rows that use the mask.
    out = torch.log1p(-torch.exp(torch.where(high, torch.full_like(log_p, -1.0), log_p)))
    if not values_checkable(z, log_p):  # traced or meta: every row's exact value, then select
        return torch.where(high, _masked_complement(z, idx), out)
    if bool(high.any()):
        rows = high.nonzero().squeeze(1)
        exact = _masked_complement(z[rows], idx[rows])
        out = out.index_put((rows,), exact)
    return out


def _log1m_softmax_exact(z: Tensor, p: Tensor) -> Tensor:
    top = p.argmax(dim=1)
    top_p = p.gather(1, top.unsqueeze(1)).squeeze(1)
    # Every class but the arg-max has 1 - p >= p_max >= 1/C: log1p is accurate there.
    rest = torch.log1p(-p.scatter(1, top.unsqueeze(1), 0.0))
    top_value = log1m_prob_at(z, top, torch.log(top_p))
    return rest.scatter(1, top.unsqueeze(1), top_value.unsqueeze(1))


def log1m_softmax(z: Tensor, p: Tensor) -> Tensor:
    """log(1 - softmax(z)) for every class; z and p = softmax(z) of shape (K, C), C >= 2."""
    high = p.detach().amax(dim=1) >= 0.5
    # Rows without a dominant class: log1p(-p) is accurate everywhere. The clamp keeps
    # log1p(-1) out of the rows replaced below (their values and gradients come from there).
    out = torch.log1p(-p.clamp(max=0.5))
    if not values_checkable(z, p):  # traced or meta: every row's exact value, then select
        return torch.where(high.unsqueeze(1), _log1m_softmax_exact(z, p), out)
    if bool(high.any()):
        rows = high.nonzero().squeeze(1)
        out = out.index_put((rows,), _log1m_softmax_exact(z[rows], p[rows]))
    return out


def target_log_prob(z: Tensor, y: Tensor) -> Tensor:
    """log softmax(z)_y per row of (K, C) logits and (K,) in-range indices.

    The fused cross-entropy kernel (log_softmax + gather, one backward) is several times
    faster than ``gather(z) - logsumexp(z)`` on CPU, whose logsumexp is an unfused chain.
    """
    return -F.cross_entropy(z, y, reduction="none")
