"""Fuse a causal LM's output layer with its loss, per model instance.

``patch_causal_lm(model)`` changes two things on *this* model object and nothing on its
class or on the library (so other models, and this one after ``unpatch_causal_lm``, behave
as shipped):

- the model's ``loss_function``: given those deferred logits it computes the loss from the
  hidden states and the head's weight with :func:`losslab.linear_cross_entropy` (``"ce"``)
  or :func:`losslab.linear_loss` (any other per-token loss), applying the logit transform
  the model applied to the stand-in (Gemma's soft cap, Cohere's and Granite's scales);
  given real logits it calls the loss function the model had;
- the model's ``forward``: with labels in training (or always with ``train_only=False``) it
  runs the stock forward with the output layer under a :class:`~._head.HeadCapture` (the
  layer records its input, the final hidden states, and returns a zero-size
  :class:`~._head.DeferredLogits` in place of the (batch, tokens, V) logits) and returns
  the output with ``logits=None``; otherwise (generation, evaluation, no labels) the stock
  forward runs untouched.

Everything the stock forward does around the loss is kept because it still runs: the label
shift (done by the fused loss without a copy), ``shift_labels``, ``num_items_in_batch``
(the sum over tokens divided by it, exactly as transformers' loss does for gradient
accumulation) and MoE router auxiliary losses (added by the stock forward to the returned
loss).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ._head import (
    FN,
    MISSING,
    DeferredLogits,
    HeadCapture,
    head_parameters,
    logit_transform,
    restore_attribute,
)
from ._loss import LossSpec, check_labels, normalise

_ATTR = "_losslab_patch"


class _Patch:
    """The state of one patched model: its loss and what the patch replaced."""

    def __init__(self, model: nn.Module, head: nn.Module, spec: LossSpec, train_only: bool) -> None:
        self.model = model
        self.head = head
        self.spec = spec
        self.train_only = train_only
        self.capture: HeadCapture | None = None  # set only while a fused forward runs
        self.saved_forward = model.__dict__.get("forward", MISSING)
        self.saved_loss = model.__dict__.get("_loss_function", MISSING)
        self.previous_loss: Callable[..., Any] = model.loss_function  # type: ignore[assignment]
        self.stock_forward: Callable[..., Any] = model.forward
        self.signature = inspect.signature(self.stock_forward)

    # -- the two replacements --------------------------------------------------------
    def loss_function(self, *args: Any, **kwargs: Any) -> Any:
        logits = kwargs["logits"] if "logits" in kwargs else (args[0] if args else None)
        if not isinstance(logits, DeferredLogits):
            return self.previous_loss(*args, **kwargs)
        bound = _LOSS_SIGNATURE.bind(*args, **kwargs).arguments
        return self.fused_loss(logits, bound["labels"], num_items_in_batch=bound.get(
            "num_items_in_batch"), ignore_index=bound.get("ignore_index", -100),
            shift_labels=bound.get("shift_labels"))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        try:
            labels = self.signature.bind_partial(*args, **kwargs).arguments.get("labels")
        except TypeError:
            labels = kwargs.get("labels")
        if labels is None or (self.train_only and not self.model.training):
            return self.stock_forward(*args, **kwargs)
        config = getattr(self.model, "config", None)
        want_tuple = kwargs.get("return_dict") is False or (
            "return_dict" not in kwargs and getattr(config, "return_dict", True) is False)
        if want_tuple:
            kwargs["return_dict"] = True
        try:
            with HeadCapture(self.head) as self.capture:
                out = self.stock_forward(*args, **kwargs)
        finally:
            self.capture = None  # drop the hidden states with the step
        out = _without_logits(out)
        return out.to_tuple() if want_tuple and hasattr(out, "to_tuple") else out

    # -- the loss ------------------------------------------------------------------------
    def fused_loss(self, logits: DeferredLogits, labels: Tensor, *, num_items_in_batch: Any,
                   ignore_index: int, shift_labels: Tensor | None) -> Tensor:
        hidden = None if self.capture is None else self.capture.hidden
        if hidden is None:
            raise RuntimeError(f"{FN}: the loss was asked of logits that the output layer of "
                               f"{type(self.model).__name__} did not produce in this step")
        transform = logit_transform(logits, type(self.model).__name__)
        weight, bias = head_parameters(self.head)
        if transform.scale != 1.0:
            hidden = hidden * transform.scale
        target, shift = (labels, True) if shift_labels is None else (shift_labels, False)
        target = target.to(hidden.device)
        check_labels(FN, target, weight.shape[0], ignore_index)
        reduction = "mean" if num_items_in_batch is None else "sum"
        loss = self.spec(hidden, weight, target, bias=bias, shift=shift,
                         ignore_index=ignore_index, reduction=reduction, softcap=transform.softcap)
        return loss if num_items_in_batch is None else normalise(loss, num_items_in_batch)


def _loss_signature(logits: Any, labels: Any, vocab_size: Any = None,
                    num_items_in_batch: Any = None, ignore_index: int = -100,
                    shift_labels: Any = None, **kwargs: Any) -> None:
    """The call signature transformers uses for a causal LM's ``loss_function``."""


_LOSS_SIGNATURE = inspect.signature(_loss_signature)


def _without_logits(out: Any) -> Any:
    """The model output with ``logits`` left out (``None``), whatever its ModelOutput type."""
    if hasattr(out, "keys") and "logits" in out:
        return type(out)(**{k: v for k, v in out.items() if k != "logits"})
    return out


def _language_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT wrapper, or the model itself."""
    get_base = getattr(model, "get_base_model", None)
    inner = get_base() if callable(get_base) else model
    if not isinstance(inner, nn.Module) or not hasattr(inner, "get_output_embeddings"):
        raise TypeError(
            f"{FN}: expected a transformers causal LM (a PreTrainedModel with an output layer), "
            f"got {type(model).__name__}"
        )
    return inner


def patch_causal_lm(model: nn.Module, loss: str = "ce", *, train_only: bool = True,
                    **hyperparameters: Any) -> nn.Module:
    """Compute a causal LM's training loss fused with its output layer; return the model.

    With labels in training the (tokens × V) logits are never made: the loss comes from the
    final hidden states and the head's weight, block by block, and the output's ``logits``
    is ``None``. Generation, evaluation (unless ``train_only=False``) and calls without
    labels run the stock forward. Calling it again on a patched model changes its loss.

    Args:
        model: a transformers causal LM (``…ForCausalLM``), possibly wrapped by PEFT.
        loss: ``"ce"`` (options ``label_smoothing``, ``z_loss``, ``impl``, ``chunk_size``,
            ``memory_budget``,
            ``filter_eps``) or any per-token registered loss (``"gce"``, ``"focal"``,
            ``"dco"``, …) with its hyperparameters; see :func:`losslab.linear_loss`.
        train_only: fuse only while ``model.training``; ``False`` fuses every call with
            labels (evaluation loss without logits).

    Example:
        >>> import torch
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> from losslab.integrations.transformers import patch_causal_lm
        >>> cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
        ...                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
        >>> model = patch_causal_lm(LlamaForCausalLM(cfg), "gce", q=0.5)
        >>> ids = torch.randint(0, 64, (2, 8))
        >>> out = model(input_ids=ids, labels=ids)
        >>> out.logits is None, out.loss.shape
        (True, torch.Size([]))
    """
    if not isinstance(train_only, bool):
        raise TypeError(f"{FN}: train_only must be a bool, got {type(train_only).__name__}")
    spec = LossSpec(FN, loss, dict(hyperparameters))
    if spec.needs_teacher:
        raise ValueError(
            f"{FN}: loss {loss!r} needs a teacher's logits; use "
            "losslab.integrations.transformers.DistillationTrainer"
        )
    inner = _language_model(model)
    existing = inner.__dict__.get(_ATTR)
    if isinstance(existing, _Patch):
        spec.check_on_a_tiny_problem()
        existing.spec = spec
        existing.train_only = train_only
        return model
    head = inner.get_output_embeddings()  # type: ignore[operator]
    if not isinstance(head, nn.Module):
        raise ValueError(
            f"{FN}: {type(inner).__name__} has no output embeddings (get_output_embeddings() "
            "returned None); only causal LMs with an output layer can be patched"
        )
    head_parameters(head)  # unsupported head types fail now, not in the first step
    spec.check_on_a_tiny_problem()
    patch = _Patch(inner, head, spec, train_only)
    inner.__dict__[_ATTR] = patch
    inner.forward = _signature_keeping(patch.forward, patch.stock_forward)
    inner.__dict__["_loss_function"] = patch.loss_function  # what the loss_function setter stores
    return model


def unpatch_causal_lm(model: nn.Module) -> nn.Module:
    """Undo :func:`patch_causal_lm` (a model that is not patched is returned unchanged)."""
    inner = _language_model(model)
    patch = inner.__dict__.pop(_ATTR, None)
    if not isinstance(patch, _Patch):
        return model
    restore_attribute(inner, "forward", patch.saved_forward)
    restore_attribute(inner, "_loss_function", patch.saved_loss)
    return model


def is_patched(model: nn.Module) -> bool:
    """Whether :func:`patch_causal_lm` is in effect on this model."""
    return isinstance(_language_model(model).__dict__.get(_ATTR), _Patch)


def _signature_keeping(call: Callable[..., Any], stock: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` under the stock forward's name, docstring and signature: ``Trainer`` reads
    the signature to decide whether the model accepts ``num_items_in_batch``."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs)

    return functools.update_wrapper(forward, stock)


__all__ = ["is_patched", "patch_causal_lm", "unpatch_causal_lm"]
