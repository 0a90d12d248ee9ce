"""Fused linear cross-entropy: the LM-head loss without the (N, V) logits.

:func:`linear_cross_entropy` dispatches to a readable reference, a chunked pure-PyTorch
``autograd.Function`` (two strategies, optional gradient filtering, vocabulary parallelism
over ``torch.distributed``) or, on CUDA, a Triton forward kernel. :func:`linear_loss` fuses
any per-row registered logit loss with the head the same way. See ``docs/fused.md``.
"""

from .api import linear_cross_entropy
from .loss_api import linear_loss
from .reference import reference_linear_cross_entropy

__all__ = ["linear_cross_entropy", "linear_loss", "reference_linear_cross_entropy"]
