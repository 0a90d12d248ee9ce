"""The output layer of a causal LM as (weight, bias), and the transform a model applies to
its logits after it, recovered without materialising any logits.

Two questions must be answered before the head can be fused with the loss:

1. *Which affine map is the head?* A plain ``nn.Linear`` is its ``weight`` and ``bias``; a
   PEFT ``ModulesToSaveWrapper`` is its active copy; a PEFT LoRA layer is
   ``W + s·B A`` (and ``b + s·b_B`` with a LoRA bias), which holds only without dropout on
   the adapter's input. Anything else is refused rather than guessed.
2. *What does the model do to the logits afterwards?* Some families rescale them (Cohere
   ``× logit_scale``, Granite ``/ logits_scaling``) or soft-cap them (Gemma 2/3:
   ``c·tanh(z/c)``). The head is made to return a :class:`DeferredLogits` stand-in of zero
   size that records every operation the model applies to it; :func:`logit_transform`
   reads the record back as ``softcap(α·z)``. An operation outside that form (slicing,
   a learnable scale, a cap with different inner and outer constants) is reported, so a
   family with an unknown transform fails with a clear error instead of a wrong loss.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

FN = "patch_causal_lm"


def head_parameters(head: nn.Module) -> tuple[Tensor, Tensor | None]:
    """(weight (V, D), bias (V,) or None) of the affine map the output layer computes,
    differentiable with respect to the layer's trainable tensors."""
    if type(head) is nn.Linear or (isinstance(head, nn.Linear) and not _is_peft_layer(head)):
        return head.weight, head.bias
    original = getattr(head, "original_module", None)
    copies = getattr(head, "modules_to_save", None)
    if isinstance(original, nn.Module) and isinstance(copies, nn.ModuleDict):
        active = _active_adapters(head)
        if bool(getattr(head, "disable_adapters", False)) or not active or active[0] not in copies:
            return head_parameters(original)
        return head_parameters(copies[active[0]])
    if _is_peft_layer(head):
        return _lora_parameters(head)
    raise TypeError(
        f"{FN}: cannot fuse an output layer of type {type(head).__name__}; supported are "
        "nn.Linear and PEFT's LoRA and modules_to_save wrappers of it"
    )


def _is_peft_layer(head: nn.Module) -> bool:
    return isinstance(getattr(head, "base_layer", None), nn.Module) and hasattr(head, "lora_A")


def _active_adapters(layer: nn.Module) -> list[str]:
    active = getattr(layer, "active_adapters", None)
    if active is None:
        active = getattr(layer, "active_adapter", [])
    return [active] if isinstance(active, str) else list(active)


def _lora_parameters(layer: Any) -> tuple[Tensor, Tensor | None]:
    weight, bias = head_parameters(layer.base_layer)
    if bool(getattr(layer, "disable_adapters", False)) or bool(getattr(layer, "merged", False)):
        return weight, bias
    for name in _active_adapters(layer):
        if name not in layer.lora_A:
            continue
        if bool(getattr(layer, "use_dora", {}).get(name, False)):
            raise TypeError(f"{FN}: a DoRA adapter on the output layer ({name!r}) cannot be fused")
        dropout = layer.lora_dropout[name]
        if layer.training and not isinstance(dropout, nn.Identity) and float(getattr(dropout, "p", 0)) > 0:
            raise ValueError(
                f"{FN}: the LoRA adapter {name!r} on the output layer has dropout "
                f"p={dropout.p}; the fused loss needs the head to be affine (lora_dropout=0 for "
                "the output layer)"
            )
        a, b = layer.lora_A[name], layer.lora_B[name]
        scale = layer.scaling[name]
        weight = weight + scale * (b.weight @ a.weight).to(weight.dtype)
        if getattr(b, "bias", None) is not None:
            extra = scale * b.bias.to(weight.dtype)
            bias = extra if bias is None else bias + extra
    return weight, bias


@dataclass(frozen=True)
class LogitTransform:
    """``softcap(scale · z)`` with softcap(x) = c·tanh(x/c) when ``softcap`` is set."""

    scale: float = 1.0
    softcap: float | None = None


@dataclass(frozen=True)
class _Step:
    op: str  # "scale", "tanh", "cast" or "unsupported"
    value: float = 1.0
    detail: str = ""


def _scalar(x: object) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, Tensor) and x.numel() == 1 and not x.requires_grad and not isinstance(
            x, DeferredLogits):
        return float(x.detach().cpu())
    return None


_MUL = {torch.mul, Tensor.mul, Tensor.__mul__, Tensor.__rmul__, torch.multiply}
_DIV = {torch.div, Tensor.div, Tensor.__truediv__, torch.true_divide, torch.divide}
_TANH = {torch.tanh, Tensor.tanh}
_CASTS = {Tensor.float, Tensor.to, Tensor.type_as, Tensor.contiguous}


class DeferredLogits(Tensor):
    """A zero-size stand-in for the (…, V) logits that records what the model does to them.

    Attribute reads (``shape``, ``device``, ``dtype``) pass through; elementwise scaling,
    ``tanh`` and dtype casts are recorded; any other operation is recorded as unsupported
    (and reported by :func:`logit_transform` only if the loss is then asked of it).
    """

    steps: tuple[_Step, ...]

    @staticmethod
    def make(like: Tensor, steps: tuple[_Step, ...] = ()) -> DeferredLogits:
        base = like.new_empty((*like.shape[:-1], 0))
        out = base.as_subclass(DeferredLogits)
        out.steps = steps
        return out

    @classmethod
    def __torch_function__(cls, func: Callable[..., Any], types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        source = next((a for a in args if isinstance(a, DeferredLogits)), None)
        with torch._C.DisableTorchFunctionSubclass():
            result = func(*args, **kwargs)
        if source is None or not isinstance(result, Tensor):
            return result
        others = [a for a in args if a is not source]
        step: _Step
        if func in _MUL and len(others) == 1 and _scalar(others[0]) is not None:
            step = _Step("scale", _scalar(others[0]) or 0.0)
        elif func in _DIV and len(args) == 2 and args[0] is source and _scalar(args[1]) not in (None, 0.0):
            step = _Step("scale", 1.0 / (_scalar(args[1]) or 1.0))
        elif func in _TANH:
            step = _Step("tanh")
        elif func in _CASTS:
            step = _Step("cast")
        else:
            step = _Step("unsupported", detail=getattr(func, "__name__", repr(func)))
        return DeferredLogits.make(result, source.steps + (step,))


def logit_transform(logits: DeferredLogits, model_name: str) -> LogitTransform:
    """Read the recorded operations back as ``softcap(α·z)``; raise on anything else.

    The record reads ``× a₁ × a₂ … [tanh × c₁ × c₂ …]`` (casts dropped). Without ``tanh``
    the transform is ``α·z`` with α = Πaᵢ. With it, ``c·tanh(α z)`` (c = Πcⱼ > 0) equals the
    soft cap ``c·tanh(x/c)`` of ``x = (α c)·z``: the scale on the hidden states is α·c and
    the cap is c (Gemma 2: α = 1/c, so the scale is 1).
    """
    steps = [s for s in logits.steps if s.op != "cast"]
    inner, i = _product(steps, 0)
    if i == len(steps):
        return LogitTransform(scale=inner)
    if steps[i].op == "tanh":
        outer, j = _product(steps, i + 1)
        if j == len(steps) and outer > 0:
            return LogitTransform(scale=inner * outer, softcap=outer)
    raise ValueError(
        f"{FN}: {model_name} applies an operation to its logits that losslab cannot fuse "
        f"({_describe(steps)}); unpatch it or train with its stock loss"
    )


def _product(steps: list[_Step], start: int) -> tuple[float, int]:
    """Product of the consecutive scale steps from ``start``, and the index after them."""
    value, i = 1.0, start
    while i < len(steps) and steps[i].op == "scale":
        value *= steps[i].value
        i += 1
    return value, i


def _describe(steps: list[_Step]) -> str:
    words = [f"×{s.value:g}" if s.op == "scale" else s.op if s.op == "tanh" else s.detail
             for s in steps]
    return " → ".join(words)


MISSING = object()


def restore_attribute(module: nn.Module, name: str, saved: object) -> None:
    """Put back an instance attribute saved with ``module.__dict__.get(name, MISSING)``."""
    if saved is MISSING:
        module.__dict__.pop(name, None)
    else:
        module.__dict__[name] = saved


#: Serialises entering and leaving captures, so two threads cannot both install one on a head.
_CAPTURES = threading.Lock()


class HeadCapture:
    """While entered, the output layer records its input and returns :class:`DeferredLogits`.

    Used by a patched causal LM's fused training step (:func:`~.patch.patch_causal_lm`) and
    by the distillation trainer on the student and the teacher: the forwards run as shipped
    up to the head, and no (tokens × V) logits are made. Leaving puts back the ``forward``
    the layer had on entering; ``hidden`` stays readable after leaving. Entering a capture on
    a layer that is already capturing (two fused steps of one model object at once, e.g. from
    two threads) is a RuntimeError rather than a layer left capturing.
    """

    def __init__(self, head: nn.Module) -> None:
        self.head = head
        self.hidden: Tensor | None = None
        self._saved: object = MISSING

    def _forward(self, hidden: Tensor, *args: Any, **kwargs: Any) -> DeferredLogits:
        self.hidden = hidden
        return DeferredLogits.make(hidden)

    def __enter__(self) -> HeadCapture:
        with _CAPTURES:
            current = self.head.__dict__.get("forward", MISSING)
            if isinstance(getattr(current, "__self__", None), HeadCapture):
                raise RuntimeError(
                    f"losslab: the output layer {type(self.head).__name__} is already capturing "
                    "its input for another fused step; one model object runs one fused "
                    "training step at a time (run concurrent steps on separate model copies)")
            self._saved = current
            self.hidden = None
            self.head.forward = self._forward
        return self

    def __exit__(self, *exc: object) -> None:
        with _CAPTURES:
            restore_attribute(self.head, "forward", self._saved)
