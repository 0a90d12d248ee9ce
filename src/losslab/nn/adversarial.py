"""Module and registry entry for the smooth adversarial comp-sum loss (kind ``"model"``: it
takes the model and its inputs, not logits)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._core.registry import Paper, register, signature_defaults
from .._core.validation import check_ignore_index, check_reduction
from ..functional import adversarial as F


class SmoothAdversarialCompSum(nn.Module):
    """Module form of :func:`losslab.functional.smooth_adversarial_comp_sum`.

    Construct with its hyperparameters (and ``weight``, ``ignore_index``, ``reduction``); call
    with ``(model, inputs, target)``.
    """

    weight: Tensor | None

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        **hyperparameters: Any,
    ) -> None:
        super().__init__()
        defaults = signature_defaults(F.smooth_adversarial_comp_sum)
        unknown = sorted(set(hyperparameters) - set(defaults))
        if unknown:
            raise TypeError(
                f"SmoothAdversarialCompSum: unexpected hyperparameter "
                f"{', '.join(map(repr, unknown))}; it accepts {', '.join(defaults)}"
            )
        self.hyperparameters = {**defaults, **hyperparameters}
        checked = {k: v for k, v in self.hyperparameters.items() if k != "generator"}
        F._check_smooth_adversarial_comp_sum(**checked)
        self.ignore_index = check_ignore_index("SmoothAdversarialCompSum", ignore_index)
        self.reduction = check_reduction("SmoothAdversarialCompSum", reduction)
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def forward(self, model: nn.Module, inputs: Tensor, target: Tensor) -> Tensor:
        return F.smooth_adversarial_comp_sum(
            model,
            inputs,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            **self.hyperparameters,
        )


register(
    "adv-comp-sum",
    family="adversarial",
    paper=Paper(
        "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
        2023,
        authors="Mao, Mohri, Zhong",
        arxiv="2304.07288",
    ),
    function=F.smooth_adversarial_comp_sum,
    module=SmoothAdversarialCompSum,
    kind="model",
    invalid_hyperparameters=(
        {"nu": -1.0},
        {"epsilon": -0.1},
        {"steps": -1},
        {"norm": "l1"},
        {"smooth_term": "js"},
        {"rho": 0.0},
    ),
)
