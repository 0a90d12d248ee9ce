"""The model of a run: a built-in one (:mod:`.models`) or the user's factory
``module:function`` called as ``factory(input_shape, num_classes)`` and returning an
``nn.Module`` that maps a batch ``(B, *input_shape)`` of float32 inputs to logits
``(B, num_classes)``.

:func:`check_model` builds the model once and runs one forward pass on two training samples,
so a factory that fails to import, raises, returns something else than a module, or a model
whose output has the wrong shape or is not finite stops the sweep before any training.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from .models import build_model
from .user_sources import import_callable, is_callable_spec, source_sha256

if TYPE_CHECKING:
    from .config import RunConfig

# Built-in models and the input shapes (per sample) they take.
_CNN_SHAPES = "(L,) or (C, L)"


def build_run_model(config: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``config.model`` for inputs of ``input_shape`` (one sample's shape). The MLP flattens
    any shape; the 1-D CNN takes a signal ``(L,)`` or ``(C, L)``."""
    if is_callable_spec(config.model):
        return _call_factory(config.model, input_shape, num_classes)
    if config.model == "cnn":
        channels = input_shape[0] if len(input_shape) == 2 else 1
        return build_model(config.model, input_shape[-1], num_classes, config.width,
                           in_channels=channels, head=config.head,
                           head_distance=config.head_distance, head_n=config.head_n)
    return build_model(config.model, math.prod(input_shape), num_classes, config.width,
                       head=config.head, head_distance=config.head_distance, head_n=config.head_n)


def _call_factory(spec: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    factory = import_callable(spec, "model")
    try:
        model = factory(input_shape, num_classes)
    except Exception as err:  # the user's factory failed: report it in one line
        raise ValueError(f"arena: model {spec!r} raised {type(err).__name__} when called as "
                         f"{spec.rpartition(':')[2]}({input_shape}, {num_classes}): {err}") from err
    if not isinstance(model, nn.Module):
        raise ValueError(f"arena: model {spec!r} returned a {type(model).__name__}; a model "
                         f"factory must return a torch.nn.Module")
    return model


def model_sha256(spec: str) -> str:
    """The hash of a factory's module source (part of its runs' keys)."""
    return source_sha256(import_callable(spec, "model"))


def check_model(config: RunConfig, sample: Tensor, num_classes: int, data_key: str) -> None:
    """Build ``config``'s model for inputs like ``sample`` (a batch of two) and check that one
    forward pass gives finite logits of shape (2, num_classes); ``data_key`` names the data
    the sample comes from (a check that passed is not repeated)."""
    shape = tuple(sample.shape[1:])
    if config.model == "cnn" and len(shape) > 2:
        raise ValueError(f"arena: model 'cnn' takes samples of shape {_CNN_SHAPES}, but the "
                         f"dataset's samples have shape {shape}; use model 'mlp' or your own "
                         f"model (module:function)")
    if is_callable_spec(config.model) and config.head != "linear":
        raise ValueError(f"arena: head={config.head!r} applies to the built-in models; model "
                         f"{config.model!r} brings its own head")
    _check_forward(config, shape, num_classes, sample, data_key)


# Model checks that passed: (model fields, sample shape, classes, data hash). A sweep checks
# every run's config; its model is built and run once per distinct entry.
_PASSED: set[tuple[object, ...]] = set()


def _check_forward(config: RunConfig, shape: tuple[int, ...], num_classes: int, sample: Tensor,
                   data_key: str) -> None:
    key = (config.model, config.width, config.head, config.head_distance, config.head_n,
           shape, num_classes, data_key)
    if key in _PASSED:
        return
    rng_state = torch.get_rng_state()
    try:
        model = build_run_model(config, shape, num_classes)
        model.eval()
        with torch.no_grad():
            out = model(sample)
    except ValueError:
        raise
    except Exception as err:  # the forward pass of the user's model failed
        raise ValueError(f"arena: model {config.model!r} failed on a batch of 2 samples of "
                         f"shape {shape} ({type(err).__name__}: {err})") from err
    finally:
        torch.set_rng_state(rng_state)  # checking never moves the caller's random stream
    if not isinstance(out, Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"arena: model {config.model!r} must map a batch of 2 samples to "
                         f"logits of shape (2, {num_classes}) (batch, num_classes), got {got}")
    if not out.is_floating_point() or not bool(torch.isfinite(out).all()):
        raise ValueError(f"arena: model {config.model!r} gave non-finite or non-float logits "
                         f"on 2 training samples")
    _PASSED.add(key)
