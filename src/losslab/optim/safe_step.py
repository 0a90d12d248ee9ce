r"""Safe-step controller: cap every optimiser step at a fraction of the softmax radius.

Wraps any ``torch.optim.Optimizer``. Each ``step`` lets the inner optimiser take its step
θ → θ + u, reads the update u it actually made (so momentum, weight decay and Adam's
preconditioning are all included), computes the radius ρ of cross-entropy along
v = u/‖u‖ at the *pre-step* point with one JVP on the supplied batch
(:func:`losslab.diagnostics.safe_step_radius`), and rescales the step:

* ``mode="cap"`` (ρ-capped, the paper's default): τ = min(‖u‖, r_target·ρ);
* ``mode="set"`` (ρ-set, no learning-rate schedule): τ = r_target·ρ every step.

The inner optimiser's state (momentum, Adam moments) is left as the inner optimiser wrote it:
as in the paper's controller only the effective learning rate η_eff = τ/‖u_dir‖ changes.

A non-finite update (NaN/inf gradients) or a non-finite radius (NaN inputs or logits) is never
applied: the parameters are restored to their pre-step values and ``step`` raises
``ValueError``. The inner optimiser's state has already absorbed the bad gradient then, so
reload a checkpoint (or rebuild the optimiser) before continuing.

Worked example: an update of length τ = 2 along (1, 0, −1) on a linear model
whose radius along it is ρ = π/2 has r = τ/ρ = 1.273; the ρ-capped controller (r_target = 1)
shrinks it to τ = π/2 = 1.5708.

Reference: Sao, "Ghosts of Softmax", arXiv 2603.13552 (2026), §controller; official code
piyush314/ghosts-of-softmax (``train_step_rho``, the exact actual-step Adam controller).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._core.validation import check_choice, check_number
from ..diagnostics.safe_step import safe_step_radius


@dataclass(frozen=True)
class SafeStepRecord:
    """What one controlled step did: the radius ρ, the proposed step length ‖u‖, the
    normalised proposed step r = ‖u‖/ρ, and the factor applied to the step (≤ 1 when capping)."""

    rho: float
    proposed: float
    ratio: float
    scale: float


class SafeStep:
    """Optimiser wrapper enforcing τ ≤ r_target·ρ along the optimiser's own update direction.

    Args:
        optimizer: the inner optimiser (SGD, Adam, ...) over ``model``'s parameters.
        model: the network whose logits define ρ.
        r_target: allowed normalised step τ/ρ (paper default 1).
        mode: ``"cap"`` or ``"set"`` (see module docstring).
        kind: radius passed to :func:`~losslab.diagnostics.safe_step_radius`: ``"bound"``
            (π/spread, any number of classes) or ``"binary_exact"`` (1 or 2 logits).
        class_dim: class dimension of the model's output.

    Usage::

        opt = SafeStep(torch.optim.SGD(model.parameters(), lr=0.1), model)
        loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward()
        opt.step(inputs=x)          # opt.history[-1] holds rho, ratio, scale
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        *,
        r_target: float = 1.0,
        mode: str = "cap",
        kind: str = "bound",
        class_dim: int = -1,
    ) -> None:
        fn = "SafeStep"
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{fn}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(model, nn.Module):
            raise TypeError(f"{fn}: model must be a torch.nn.Module, got {type(model).__name__}")
        self.optimizer = optimizer
        self.model = model
        self.r_target = check_number(fn, "r_target", r_target, low=0.0, low_open=True)
        self.mode = check_choice(fn, "mode", mode, ("cap", "set"))
        self.kind = check_choice(fn, "kind", kind, ("bound", "binary_exact"))
        self.class_dim = class_dim
        self.history: list[SafeStepRecord] = []
        self._params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        opt_ids = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not opt_ids <= {id(p) for p in self._params.values()}:
            raise ValueError(f"{fn}: optimizer holds parameters that are not model's trainable "
                             f"parameters; the radius would ignore part of the step")

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    @torch.no_grad()
    def step(
        self,
        closure: Callable[[], float] | None = None,
        *,
        inputs: Tensor | tuple[Tensor, ...],
    ) -> float | None:
        """Take the inner optimiser's step, then shrink (or set) it to r_target·ρ.

        ``inputs`` is the batch whose logits the step must not overshoot (the current batch
        in the paper's tutorial; a larger probe set is safer). Returns the closure's loss.

        Raises ``ValueError`` (after restoring the pre-step parameters) when the update or the
        radius is not finite."""
        before = {n: p.detach().clone() for n, p in self._params.items()}
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        update = {n: p.detach() - before[n] for n, p in self._params.items()}
        bad = [n for n, u in update.items() if not bool(torch.isfinite(u).all())]
        if bad:
            self._restore(before)
            raise ValueError(
                f"SafeStep.step: the inner optimizer's update is not finite (NaN/inf) for "
                f"{bad[:5]}; the step was undone (parameters restored), but the inner "
                f"optimizer's state already holds the bad gradient"
            )
        proposed = math.sqrt(sum(float(u.double().square().sum()) for u in update.values()))
        if proposed == 0.0:
            self.history.append(SafeStepRecord(math.inf, 0.0, 0.0, 1.0))
            return loss
        try:
            with torch.enable_grad():
                rho = float(safe_step_radius(self.model, inputs, update, params=before,
                                             kind=self.kind, class_dim=self.class_dim))
        except (ValueError, TypeError) as err:
            self._restore(before)
            raise type(err)(f"SafeStep.step: step undone (parameters restored): {err}") from err
        allowed = self.r_target * rho
        if self.mode == "cap":
            scale = min(1.0, allowed / proposed)
        else:
            scale = allowed / proposed if math.isfinite(allowed) else 1.0
        if scale != 1.0:
            for n, p in self._params.items():
                p.copy_(before[n] + update[n] * scale)
        self.history.append(SafeStepRecord(rho, proposed, proposed / rho, scale))
        return loss

    def _restore(self, before: dict[str, Tensor]) -> None:
        for n, p in self._params.items():
            p.copy_(before[n])
