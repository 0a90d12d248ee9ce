r"""Gradient-norm sharpness penalties: the generic penalty L + μ‖∇_θL‖ and IGNITE's
surrogate-sharpness constraint with a primal–dual multiplier.

IGNITE (Dao, Nguyen, Truong, Hoang, NeurIPS 2024, arXiv 2503.04242) trains an offline-
optimisation surrogate h(x; ω) subject to a bound on its *surrogate sharpness*, to first order
ρ‖∇_ω h̄(ω)‖ with h̄ the surrogate's mean prediction on the offline inputs:

.. math::

    \min_\omega L_{fit}(\omega)\ \text{s.t.}\ \rho\lVert\nabla_\omega \bar h\rVert\le\varepsilon

solved by primal–dual steps
ω ← ω − η∇_ω[L_fit + λ(ρ‖∇h̄‖ − ε)]
and λ ← max(0, λ + η_λ(ρ‖∇h̄‖ − ε)).

**Unverified**: the paper's exact equations and defaults were not read; whether
the norm is of the mean gradient (``"norm_of_mean"``) or the mean of per-sample gradient norms
(``"mean_of_norms"``) is not settled, so both are offered. Both need double backprop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from .._core.validation import check_choice, check_number


def gradient_norm_penalty(loss: Tensor, params: Sequence[Tensor]) -> Tensor:
    r"""‖∇_θ L‖₂ as a differentiable tensor (``create_graph=True``); add μ times it to the loss
    for the generic gradient-norm penalty. Example: L = ½‖Aw‖² style losses give ‖∇L‖ = ‖Aw‖."""
    grads = torch.autograd.grad(loss, list(params), create_graph=True)
    return torch.sqrt(sum((g.square().sum() for g in grads), torch.zeros((), dtype=loss.dtype,
                                                                        device=loss.device)))


def surrogate_sharpness(
    model: nn.Module, inputs: Tensor, *, rho: float = 0.05, reduction: str = "norm_of_mean"
) -> Tensor:
    r"""First-order surrogate sharpness ρ‖∇_ω h̄‖ of a model with one output per input.

    ``"norm_of_mean"``: ρ‖∇_ω mean_i h(x_i)‖; ``"mean_of_norms"``: ρ·mean_i ‖∇_ω h(x_i)‖ (per-
    sample gradients by ``torch.func.vmap``). Differentiable in the parameters.

    Example: h = wᵀx + b, X = [[1, 2], [0, 1]] → mean_of_norms with ρ = 1 is
    (√6 + √2)/2 = 1.9318517 and norm_of_mean is √3.5 = 1.8708287.
    """
    fn = "surrogate_sharpness"
    check_number(fn, "rho", rho, low=0.0)
    check_choice(fn, "reduction", reduction, ("norm_of_mean", "mean_of_norms"))
    params: dict[str, Tensor] = {
        n: p for n, p in model.named_parameters() if p.requires_grad
    }
    # the sharpness is itself a gradient: build it even when called under no_grad (evaluation)
    with torch.enable_grad():
        return _sharpness(fn, model, params, inputs, rho, reduction)


def _sharpness(fn: str, model: nn.Module, params: dict[str, Tensor], inputs: Tensor, rho: float,
               reduction: str) -> Tensor:
    if reduction == "norm_of_mean":
        out = model(inputs)
        if out.numel() != inputs.shape[0]:
            raise ValueError(f"{fn}: model must return one value per input (a surrogate), got "
                             f"shape {tuple(out.shape)} for {inputs.shape[0]} inputs")
        value: Tensor = rho * gradient_norm_penalty(out.mean(), list(params.values()))
        return value

    def single(ps: dict[str, Tensor], x: Tensor) -> Tensor:
        out: Tensor = functional_call(model, ps, (x.unsqueeze(0),)).sum()
        return out

    per_sample = vmap(grad(single), in_dims=(None, 0))(params, inputs)
    sq = sum(g.reshape(g.shape[0], -1).square().sum(1) for g in per_sample.values())
    result: Tensor = rho * torch.as_tensor(sq).sqrt().mean()
    return result


class IgniteConstraint:
    """IGNITE's Lagrangian: ``objective(fit_loss, model, inputs)`` returns
    L_fit + λ(ρ‖∇h̄‖ − ε) for the optimiser; call ``dual_step()`` after the optimiser's step
    to update λ ← max(0, λ + η_λ(ρ‖∇h̄‖ − ε)).

    Defaults (ρ = 0.05, ε = 0.01, η_λ = 0.01, λ₀ = 0) are ours; the paper ablates them.
    """

    def __init__(self, *, rho: float = 0.05, epsilon: float = 0.01, dual_lr: float = 0.01,
                 reduction: str = "norm_of_mean", multiplier: float = 0.0) -> None:
        fn = "IgniteConstraint"
        self.rho = check_number(fn, "rho", rho, low=0.0, low_open=True)
        self.epsilon = check_number(fn, "epsilon", epsilon, low=0.0)
        self.dual_lr = check_number(fn, "dual_lr", dual_lr, low=0.0)
        self.reduction = check_choice(fn, "reduction", reduction, ("norm_of_mean",
                                                                    "mean_of_norms"))
        self.multiplier = check_number(fn, "multiplier", multiplier, low=0.0)
        self.last_violation = 0.0

    def objective(self, fit_loss: Tensor, model: nn.Module, inputs: Tensor) -> Tensor:
        sharp = surrogate_sharpness(model, inputs, rho=self.rho, reduction=self.reduction)
        self.last_violation = float(sharp.detach()) - self.epsilon
        return fit_loss + self.multiplier * (sharp - self.epsilon)

    def dual_step(self) -> float:
        """Projected dual ascent on λ; returns the new multiplier."""
        self.multiplier = max(0.0, self.multiplier + self.dual_lr * self.last_violation)
        return self.multiplier
