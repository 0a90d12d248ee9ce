"""Fused linear cross-entropy: the LM-head loss without the (N, V) logits.

:func:`linear_cross_entropy` dispatches to a readable reference, a chunked pure-PyTorch
``autograd.Function`` (two strategies, optional gradient filtering, vocabulary parallelism
over ``torch.distributed``) or, on CUDA, a Triton forward kernel. See ``docs/fused.md``.
"""

from .api import linear_cross_entropy
from .reference import reference_linear_cross_entropy

__all__ = ["linear_cross_entropy", "reference_linear_cross_entropy"]
