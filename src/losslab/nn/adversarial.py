"""Module and registry entry for the smooth adversarial comp-sum loss (kind ``"model"``: it
takes the model and its inputs, not logits)."""

from __future__ import annotations

from torch import Tensor, nn

from .._core.registry import Paper, register
from ..functional import adversarial as F
from ._factory import LossModule


class SmoothAdversarialCompSum(LossModule):
    """Module form of :func:`losslab.functional.smooth_adversarial_comp_sum`.

    Construct with its hyperparameters (and ``weight``, ``ignore_index``, ``reduction``); call
    with ``(model, inputs, target)``.
    """

    function = staticmethod(F.smooth_adversarial_comp_sum)
    check = staticmethod(F._check_smooth_adversarial_comp_sum)
    unchecked = ("generator",)  # a torch.Generator is state, not a checked hyperparameter

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
