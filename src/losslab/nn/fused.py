"""Module form of the fused linear cross-entropy (no registry entry: it consumes hidden
states and a weight, not logits)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..fused.api import linear_cross_entropy


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
        # Validate once at construction, on a 1-token problem, so bad options fail early.
        import torch

        linear_cross_entropy(torch.zeros(1, 1), torch.zeros(2, 1), torch.zeros(1, dtype=torch.long),
                             **{k: v for k, v in options.items() if k != "impl"})

    def forward(self, hidden: Tensor, weight: Tensor, target: Tensor, *,
                bias: Tensor | None = None, process_group: Any = None
                ) -> Tensor | tuple[Tensor, Tensor]:
        return linear_cross_entropy(hidden, weight, target, bias=bias,
                                    process_group=process_group, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())
