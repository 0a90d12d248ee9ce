r"""Sharpness-aware optimisation: SAM, GSAM (surrogate gap), and the entropy filter that RSGS
puts on top.

Both wrappers take a closure that recomputes the loss and calls ``backward`` (the
wrapper zeroes gradients before each call), like ``torch.optim.LBFGS``::

    opt = GSAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05, alpha=0.1)
    def closure():
        loss = F.cross_entropy(model(x), y); loss.backward(); return loss
    opt.step(closure)

* SAM (Foret, Kleiner, Mobahi, Neyshabur, ICLR 2021, arXiv 2010.01412):
  g = ∇f(w), w_adv = w + ρ g/‖g‖, g_p = ∇f(w_adv); the base optimiser steps from w with g_p.
* GSAM (Zhuang et al., ICLR 2022, arXiv 2203.08065): surrogate gap h = f(w_adv) − f(w);
  g_⊥ = g − (gᵀg_p/‖g_p‖²) g_p; direction d = g_p − α g_⊥ (descends the perturbed loss and
  the gap together). α = 0 is SAM.
* RSGS (Yu, Lu, Zhang 2025, arXiv 2506.05736) = GSAM on the entropy of reliable samples,
  :func:`filtered_entropy` (SAR, Niu et al., ICLR 2023, arXiv 2302.12400: keep samples with
  entropy below E₀ = 0.4·ln C). **Unverified:** RSGS has no public code; its own constants
  (ρ, α, E₀) are not confirmed, only the two published components are implemented exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._core.validation import check_number


@dataclass(frozen=True)
class SharpnessRecord:
    """One step: loss at w, loss at the perturbed point, and the surrogate gap between them."""

    loss: float
    perturbed_loss: float
    surrogate_gap: float


class GSAM:
    """Surrogate-gap guided sharpness-aware minimisation wrapping a base optimiser
    (``alpha=0`` gives SAM). ``history`` records the losses and surrogate gap of every step.

    Args:
        optimizer: the base optimiser (it takes the final step with the modified gradient).
        rho: perturbation radius (SAM default 0.05).
        alpha: weight of the orthogonal ascent component (GSAM; 0 for SAM).

    Example: f(w) = ½(3w₁² + w₂²) from w = (1, 1), SGD lr 0.1, ρ = 0.05, α = 0.5:
        g = (3, 1), w_adv = w + ρ g/‖g‖ = (1.047434, 1.015811), g_p = (3.142302, 1.015811);
        g_⊥ = g − (gᵀg_p/‖g_p‖²) g_p = (−0.008836, 0.027334), d = g_p − α g_⊥ = (3.146721, 1.002144),
        so w − 0.1·d = (0.685328, 0.899786):

        >>> w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        >>> opt = GSAM(torch.optim.SGD([w], lr=0.1), rho=0.05, alpha=0.5)
        >>> def closure():
        ...     loss = 0.5 * (3 * w[0] ** 2 + w[1] ** 2); loss.backward(); return loss
        >>> _ = opt.step(closure); w.data    # SAM (alpha=0) gives [0.6858, 0.8984]
        tensor([0.6853, 0.8998])
        >>> round(opt.history[-1].surrogate_gap, 4)   # f(w_adv) − f(w) = 2.1616 − 2
        0.1616
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, rho: float = 0.05,
                 alpha: float = 0.0) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{name}: optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.rho = check_number(name, "rho", rho, low=0.0, low_open=True)
        self.alpha = check_number(name, "alpha", alpha, low=0.0)
        self.history: list[SharpnessRecord] = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def _params(self) -> list[Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"] if p.requires_grad]

    def _grads(self, params: list[Tensor]) -> list[Tensor]:
        return [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                for p in params]

    def step(self, closure: Callable[[], Tensor]) -> Tensor:
        """Two forward/backward passes (at w and at w_adv), then the base optimiser's step.
        Returns the loss at w."""
        if closure is None or not callable(closure):
            raise TypeError(f"{type(self).__name__}.step: a closure that computes the loss and "
                            f"calls backward() is required")
        params = self._params()
        self.zero_grad()
        with torch.enable_grad():
            loss = closure()
        g = self._grads(params)
        g_norm = math.sqrt(sum(float(t.square().sum()) for t in g))
        scale = self.rho / max(g_norm, 1e-12)
        with torch.no_grad():
            eps = [t * scale for t in g]
            for p, e in zip(params, eps, strict=True):
                p.add_(e)
        self.zero_grad()
        with torch.enable_grad():
            perturbed = closure()
        g_p = self._grads(params)
        with torch.no_grad():
            for p, e in zip(params, eps, strict=True):
                p.sub_(e)
            direction = g_p
            if self.alpha > 0:
                dot = sum(float((a * b).sum()) for a, b in zip(g, g_p, strict=True))
                gp_sq = sum(float(t.square().sum()) for t in g_p)
                coef = dot / max(gp_sq, 1e-24)
                direction = [b - self.alpha * (a - coef * b) for a, b in zip(g, g_p, strict=True)]
            for p, d in zip(params, direction, strict=True):
                p.grad = d
        self.optimizer.step()
        f_w, f_adv = float(loss.detach()), float(perturbed.detach())
        self.history.append(SharpnessRecord(f_w, f_adv, f_adv - f_w))
        return loss


class SAM(GSAM):
    """Sharpness-aware minimisation (Foret et al., ICLR 2021): GSAM with ``alpha=0``.

    Example: f(w) = ½(3w₁² + w₂²) from w = (1, 1), SGD lr 0.1, ρ = 0.05: g = (3, 1),
        w_adv = (1.047434, 1.015811), g_p = ∇f(w_adv) = (3.142302, 1.015811), and the step
        from w gives w = (0.685770, 0.898419) (plain SGD: (0.7, 0.9)).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, rho: float = 0.05) -> None:
        super().__init__(optimizer, rho=rho, alpha=0.0)


def entropy_filter_mask(logits: Tensor, *, margin: float = 0.4) -> Tensor:
    """Boolean mask of reliable samples: prediction entropy below ``margin · ln C`` (SAR)."""
    c = logits.shape[-1]
    logp = torch.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return entropy < margin * math.log(c)


def filtered_entropy(logits: Tensor, *, margin: float = 0.4) -> Tensor:
    r"""Mean prediction entropy over samples whose entropy is below E₀ = margin·ln C, the
    source-free objective of SAR (Niu et al. 2023) and RSGS; 0 (with zero gradient) when no
    sample is kept.

    .. math:: \mathcal L = \frac{1}{|S|}\sum_{i\in S} -\sum_k p_{ik}\log p_{ik},\quad
              S = \{i : E(x_i) < E_0\}

    Example: logits [[4, 0, 0], [0, 0, 0]] (C = 3, E₀ = 0.4394): the uniform row (entropy
    ln 3) is dropped and the loss is the first row's entropy 0.1773.
    """
    check_number("filtered_entropy", "margin", margin, low=0.0, low_open=True)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError("filtered_entropy: logits must be a float tensor of shape (N, C)")
    logp = torch.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    keep = entropy.detach() < margin * math.log(logits.shape[-1])
    if not bool(keep.any()):
        return (entropy * 0.0).sum()
    return entropy[keep].mean()
