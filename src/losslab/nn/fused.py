"""Module forms of the fused linear losses (no registry entry: they consume hidden states and
a weight, not logits)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..fused.api import linear_cross_entropy
from ..fused.loss_api import check_options, linear_loss
from ..fused.strategy import resolve_budget


class LinearCrossEntropy(nn.Module):
    """Module form of :func:`losslab.linear_cross_entropy`.

    Construct with the function's keyword options; call with ``(hidden, weight, target)``
    and optionally ``bias=``. The weight is passed at call time so that the LM head stays a
    parameter of the model (tied embeddings, FSDP and tensor parallelism keep working).

    Example:
        >>> import torch, losslab
        >>> loss = losslab.nn.LinearCrossEntropy(label_smoothing=0.1)
        >>> h, W = torch.randn(4, 8), torch.randn(16, 8)
        >>> loss(h, W, torch.randint(0, 16, (4,))).shape
        torch.Size([])
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        bad = {"bias", "process_group"} & set(options)
        if bad:
            raise TypeError(
                f"LinearCrossEntropy: pass {', '.join(sorted(bad))} at call time, not to the "
                "constructor"
            )
        self.options = options
        # Validate once at construction, on a 1-token problem, so bad options fail early (a
        # memory budget only by form: whether it fits depends on the call's shapes).
        import torch

        resolve_budget("LinearCrossEntropy", options.get("memory_budget"),
                       options.get("chunk_size"), 1)
        linear_cross_entropy(torch.zeros(1, 1), torch.zeros(2, 1), torch.zeros(1, dtype=torch.long),
                             **{k: v for k, v in options.items()
                                if k not in ("impl", "memory_budget")})

    def forward(self, hidden: Tensor, weight: Tensor, target: Tensor, *,
                bias: Tensor | None = None, process_group: Any = None
                ) -> Tensor | tuple[Tensor, Tensor]:
        return linear_cross_entropy(hidden, weight, target, bias=bias,
                                    process_group=process_group, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class LinearLoss(nn.Module):
    """Module form of :func:`losslab.linear_loss`: any per-row registered logit loss fused
    with the linear head.

    Construct with the loss name and linear_loss's options (``shift``, ``ignore_index``,
    ``reduction``, ``class_weight``, ``softcap``, ``chunk_size`` and the loss's
    hyperparameters), validated at construction; call with ``(hidden, weight, target)`` and,
    per call, ``bias=``, the teacher head (``teacher_hidden=``, ``teacher_weight=``,
    ``teacher_bias=``) and the loss's row-aligned extra inputs. ``class_weight`` is a buffer,
    so ``.to(device)`` moves it.

    Example:
        >>> import torch, losslab
        >>> loss = losslab.nn.LinearLoss("gce", q=0.5)
        >>> h, W = torch.randn(4, 8), torch.randn(16, 8)
        >>> loss(h, W, torch.randint(0, 16, (4,))).shape
        torch.Size([])
    """

    class_weight: Tensor | None

    def __init__(self, loss: str = "gce", **options: Any) -> None:
        super().__init__()
        check_options("LinearLoss", loss, options)
        self.loss = loss
        self.register_buffer("class_weight", options.pop("class_weight", None))
        self.options = options

    def forward(self, hidden: Tensor, weight: Tensor, target: Tensor, *,
                bias: Tensor | None = None, teacher_hidden: Tensor | None = None,
                teacher_weight: Tensor | None = None, teacher_bias: Tensor | None = None,
                **extra_inputs: Any) -> Tensor:
        return linear_loss(hidden, weight, target, self.loss, bias=bias,
                           class_weight=self.class_weight, teacher_hidden=teacher_hidden,
                           teacher_weight=teacher_weight, teacher_bias=teacher_bias,
                           **self.options, **extra_inputs)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.loss), *(f"{k}={v!r}" for k, v in self.options.items())])
