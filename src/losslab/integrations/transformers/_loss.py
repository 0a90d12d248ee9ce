"""Which loss a patched model or a trainer computes, validated once, and its fused call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor

from ..._core.registry import loss_info
from ...fused import linear_cross_entropy

#: ``linear_cross_entropy`` options a user may give with ``loss="ce"``.
CE_OPTIONS = ("label_smoothing", "z_loss", "impl", "chunk_size", "memory_budget", "filter_eps")


@dataclass(frozen=True)
class LossSpec:
    """A registered loss name and its hyperparameters, checked at construction."""

    fn: str
    name: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"{self.fn}: loss must be a registered loss name (str), "
                            f"got {type(self.name).__name__}")
        if self.name == "ce":
            unknown = sorted(set(self.hyperparameters) - set(CE_OPTIONS))
            if unknown:
                raise TypeError(
                    f"{self.fn}: loss 'ce' has no option {', '.join(map(repr, unknown))} here; "
                    f"it accepts {', '.join(CE_OPTIONS)} (the model's own soft cap is applied "
                    "automatically)"
                )
        else:
            loss_info(self.name)  # unknown names raise with the list of registered losses
        if "weight" in self.hyperparameters or "ignore_index" in self.hyperparameters or (
                "reduction" in self.hyperparameters):
            raise TypeError(
                f"{self.fn}: weight, ignore_index and reduction are set by the integration "
                "(reduction follows transformers' num_items_in_batch), not as hyperparameters"
            )

    @property
    def needs_teacher(self) -> bool:
        return self.name != "ce" and "teacher_logits" in loss_info(self.name).extra_inputs

    def check_on_a_tiny_problem(self, teacher: bool = False) -> None:
        """Run the loss once on a 2-token, 2-class problem so bad names, hyperparameters
        and losses the fused path cannot compute fail when the user configures them."""
        h = torch.zeros(2, 1)
        w = torch.zeros(2, 1)
        y = torch.zeros(2, dtype=torch.long)
        extra = dict(teacher_hidden=h, teacher_weight=w) if teacher else {}
        with torch.no_grad():
            self(h, w, y, bias=None, shift=False, ignore_index=-100, reduction="mean",
                 softcap=None, **extra)

    def __call__(self, hidden: Tensor, weight: Tensor, target: Tensor, *, bias: Tensor | None,
                 shift: bool, ignore_index: int, reduction: str, softcap: float | None,
                 teacher_hidden: Tensor | None = None, teacher_weight: Tensor | None = None,
                 teacher_bias: Tensor | None = None) -> Tensor:
        if self.name == "ce":
            out = linear_cross_entropy(hidden, weight, target, bias=bias, shift=shift,
                                       ignore_index=ignore_index, reduction=reduction,
                                       softcap=softcap, **self.hyperparameters)
            return cast(Tensor, out)  # return_lse is never set here
        from ...fused import linear_loss

        return linear_loss(hidden, weight, target, self.name, bias=bias, shift=shift,
                           ignore_index=ignore_index, reduction=reduction, softcap=softcap,
                           teacher_hidden=teacher_hidden, teacher_weight=teacher_weight,
                           teacher_bias=teacher_bias, **self.hyperparameters)


def normalise(total: Tensor, num_items_in_batch: object) -> Tensor:
    """Σ loss / num_items_in_batch, as transformers normalises across accumulated batches."""
    if isinstance(num_items_in_batch, Tensor):
        return total / num_items_in_batch.to(total.device)
    if isinstance(num_items_in_batch, (int, float)) and not isinstance(num_items_in_batch, bool):
        return total / num_items_in_batch
    raise TypeError(
        f"num_items_in_batch must be a tensor or a number, got {type(num_items_in_batch).__name__}"
    )


def check_labels(fn: str, labels: Tensor, vocab: int, ignore_index: int) -> None:
    """Labels outside [0, V) (other than ignore_index) get one clear error."""
    kept = labels[labels != ignore_index]
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= vocab):
        bad = int(kept.max()) if int(kept.max()) >= vocab else int(kept.min())
        raise ValueError(
            f"{fn}: labels hold token {bad} but the output layer has V={vocab} rows; labels "
            f"must lie in [0, {vocab - 1}] or equal ignore_index={ignore_index}"
        )
