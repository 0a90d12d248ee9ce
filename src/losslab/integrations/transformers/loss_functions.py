"""losslab losses with the call signatures transformers expects of a loss function.

These work on logits the model has materialised (use :func:`~.patch.patch_causal_lm` to
avoid them at LM scale). Each follows the reduction transformers uses: the mean over kept
tokens, or — when ``Trainer`` passes ``num_items_in_batch`` for gradient accumulation — the
sum divided by it, so accumulated steps give the full-batch gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor
from torch.nn import functional as F

from ..._core.registry import LossInfo, get_loss, loss_info
from ._loss import normalise

TASKS = ("causal_lm", "sequence_classification", "token_classification")


def _per_token_loss(fn: str, name: object, hyperparameters: Mapping[str, Any]) -> LossInfo:
    """The registry entry of a per-token logit loss, with its hyperparameters checked."""
    if not isinstance(name, str):
        raise TypeError(f"{fn}: loss must be a registered loss name (str), got {type(name).__name__}")
    info = loss_info(name)
    if info.kind != "logits":
        raise ValueError(f"{fn}: loss {name!r} takes {info.kind}, not logits")
    if info.batch_level:
        raise ValueError(
            f"{fn}: loss {name!r} couples the rows of a batch, so it has no per-token sum to "
            "normalise across accumulated batches; choose a per-token loss"
        )
    if info.extra_inputs:
        hint = (" (for teacher logits use losslab.integrations.transformers.DistillationTrainer)"
                if "teacher_logits" in info.extra_inputs else "")
        raise ValueError(
            f"{fn}: loss {name!r} needs extra inputs ({', '.join(info.extra_inputs)}) that a "
            f"transformers loss function does not receive{hint}"
        )
    reserved = {"weight", "ignore_index", "reduction"} & set(hyperparameters)
    if reserved:
        raise TypeError(f"{fn}: {', '.join(sorted(reserved))} cannot be set here; transformers' "
                        "conventions decide them")
    get_loss(name, **hyperparameters)  # unknown or out-of-range hyperparameters raise now
    return info


def _reduce(info: LossInfo, hyperparameters: Mapping[str, Any], logits: Tensor, target: Tensor,
            ignore_index: int, num_items_in_batch: Any) -> Tensor:
    z = logits.reshape(-1, logits.shape[-1])
    y = target.reshape(-1).to(z.device)
    if num_items_in_batch is None:
        out: Tensor = info.function(z, y, ignore_index=ignore_index, reduction="mean",
                                    **hyperparameters)
        return out
    total = info.function(z, y, ignore_index=ignore_index, reduction="sum", **hyperparameters)
    return normalise(total, num_items_in_batch)


def causal_lm_loss(loss: str = "ce", **hyperparameters: Any) -> Callable[..., Tensor]:
    """A next-token loss with the signature of transformers' ``ForCausalLMLoss``.

    ``model.loss_function = causal_lm_loss("gce", q=0.7)`` makes a causal LM train with
    that loss. Labels are shifted as transformers does (token t scores label t+1; the
    last position is ignored) unless ``shift_labels`` is given.

    Example:
        >>> import torch
        >>> from losslab.integrations.transformers import causal_lm_loss
        >>> fn = causal_lm_loss("ce")
        >>> logits = torch.zeros(1, 3, 4); labels = torch.tensor([[0, 1, 2]])
        >>> round(fn(logits, labels, vocab_size=4).item(), 6)  # log 4
        1.386294
    """
    hp = dict(hyperparameters)
    info = _per_token_loss("causal_lm_loss", loss, hp)

    def loss_function(logits: Tensor, labels: Tensor, vocab_size: int | None = None,
                      num_items_in_batch: Any = None, ignore_index: int = -100,
                      shift_labels: Tensor | None = None, **kwargs: Any) -> Tensor:
        if shift_labels is None:
            shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
        return _reduce(info, hp, logits, shift_labels, ignore_index, num_items_in_batch)

    loss_function.__name__ = f"causal_lm_loss_{loss.replace('-', '_').replace('+', '_')}"
    return loss_function


def sequence_classification_loss(loss: str = "ce", **hyperparameters: Any) -> Callable[..., Tensor]:
    """A classification loss with the signature of transformers' sequence-classification
    ``loss_function`` (``labels, pooled_logits, config``).

    Single-label classification only: a model whose ``config.problem_type`` is (or, left
    unset, would be inferred as) regression or multi-label classification is refused.
    """
    hp = dict(hyperparameters)
    info = _per_token_loss("sequence_classification_loss", loss, hp)

    def loss_function(labels: Tensor, pooled_logits: Tensor, config: Any,
                      num_items_in_batch: Any = None, ignore_index: int = -100,
                      **kwargs: Any) -> Tensor:
        num_labels = int(getattr(config, "num_labels", pooled_logits.shape[-1]))
        problem = getattr(config, "problem_type", None)
        if problem is None:
            problem = ("regression" if num_labels == 1 else "single_label_classification"
                       if not labels.is_floating_point() else "multi_label_classification")
        if problem != "single_label_classification":
            raise ValueError(
                f"sequence_classification_loss: loss {loss!r} is a single-label classification "
                f"loss, but the model's problem_type is {problem!r} (num_labels={num_labels})"
            )
        return _reduce(info, hp, pooled_logits.reshape(-1, num_labels), labels, ignore_index,
                       num_items_in_batch)

    return loss_function


def compute_loss_func(loss: str = "ce", *, task: str = "causal_lm",
                      **hyperparameters: Any) -> Callable[..., Tensor]:
    """A function for ``Trainer(compute_loss_func=...)``: ``(outputs, labels,
    num_items_in_batch) -> loss``, normalised by ``num_items_in_batch`` when the Trainer
    gives it (so gradient accumulation matches the full batch).

    ``task``: ``"causal_lm"`` (labels shifted), ``"sequence_classification"`` ((B, C)
    logits) or ``"token_classification"`` ((B, T, C) logits, no shift).
    """
    if task not in TASKS:
        raise ValueError(f"compute_loss_func: task must be one of {', '.join(TASKS)}, got {task!r}")
    hp = dict(hyperparameters)
    info = _per_token_loss("compute_loss_func", loss, hp)

    def compute(outputs: Any, labels: Tensor, num_items_in_batch: Any = None) -> Tensor:
        logits = outputs["logits"] if isinstance(outputs, Mapping) or hasattr(outputs, "keys") \
            else outputs[0]
        if labels is None:
            raise ValueError("compute_loss_func: the Trainer passed no labels (the batch has no "
                             "'labels' entry)")
        target = labels
        if task == "causal_lm":
            target = F.pad(labels, (0, 1), value=-100)[..., 1:]
        return _reduce(info, hp, logits, target, -100, num_items_in_batch)

    return compute
