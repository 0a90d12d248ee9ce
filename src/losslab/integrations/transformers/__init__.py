"""losslab in Hugging Face ``transformers``: fused losses for causal LMs, loss functions for
``Trainer``, and distillation without logits.

Needs the ``hf`` extra (``pip install 'losslab[hf]'``); importing this module without
``transformers`` installed raises an ``ImportError`` that says so.

- :func:`patch_causal_lm` / :func:`unpatch_causal_lm`: a model's training loss computed from
  its hidden states and output layer, never from (tokens × V) logits, with any per-token loss.
- :func:`causal_lm_loss`, :func:`sequence_classification_loss`: functions with the
  signatures of transformers' ``model.loss_function``.
- :func:`compute_loss_func`: for ``Trainer(compute_loss_func=...)``.
- :class:`DistillationTrainer`: a ``Trainer`` that distils a teacher into the model with KD,
  PLD or another teacher-logit loss, fused with both output layers.
"""

from __future__ import annotations

try:
    import transformers as _transformers  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "losslab.integrations.transformers needs transformers: pip install 'losslab[hf]'"
    ) from error

from .distillation import DistillationTrainer
from .loss_functions import causal_lm_loss, compute_loss_func, sequence_classification_loss
from .patch import is_patched, patch_causal_lm, unpatch_causal_lm

__all__ = [
    "DistillationTrainer",
    "causal_lm_loss",
    "compute_loss_func",
    "is_patched",
    "patch_causal_lm",
    "sequence_classification_loss",
    "unpatch_causal_lm",
]
