r"""CoCo-MILP inter-variable contrastive loss (VCL) for MILP solution prediction.

For one MILP instance the network predicts :math:`\hat p_j = \sigma(g_j)` for the binary
variables; a pool of feasible solutions :math:`x^{(q)}\in\{0,1\}^{|B|}` with objective values
:math:`c_q` is weighted by :math:`w_q = \mathrm{softmax}_q(-c_q/T_E)`. With
:math:`u_j = \mathrm{logit}(\mathrm{clamp}(\hat p_j, 10^{-8}, 1-10^{-8}))/\tau`:

.. math::

    L_{con} = \sum_q w_q\Big[-\log\frac{\sum_{j: x^{(q)}_j=1} e^{u_j}}{\sum_j e^{u_j}}\Big],\qquad
    L_{rank} = \sum_q w_q\,\operatorname{mean}_{i: x_i=1,\,k: x_k=0}[m - (\hat p_i - \hat p_k)]_+

and :math:`L_{VCL} = L_{con} + \alpha L_{rank}` (τ = 0.1, m = 0.9, α = 0.01, the official
code's values; T_E is task specific: 100 for SC/WA, 10 for IP, −10000 for CA). A solution
with no variable at 1 is skipped, and for the rank term also one with every variable at 1.
Sum the loss over the instances of a mini-batch.

Example (p̂ = [0.9, 0.2, 0.6, 0.1], one solution [1, 0, 1, 0], τ = 1):
    >>> import torch
    >>> p = torch.tensor([0.9, 0.2, 0.6, 0.1]); x = torch.tensor([[1, 0, 1, 0]])
    >>> round(vcl_contrastive_term(p, x, temperature=1.0).item(), 6)
    0.033813

Reference: Pu et al., *CoCo-MILP: Inter-Variable Contrastive and Intra-Constraint Competitive
MILP Solution Prediction*, AAAI 2026 (arXiv 2511.09209).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._core.validation import check_number, check_tensor


def _inputs(fn: str, probabilities: Tensor, solutions: Tensor, objective_values: Tensor | None,
            energy_scale: float) -> tuple[Tensor, Tensor, Tensor]:
    p = check_tensor(fn, "probabilities", probabilities)
    if p.dim() != 1 or not p.is_floating_point():
        raise ValueError(
            f"{fn}: probabilities must be a 1-D float tensor (V,), got {tuple(p.shape)} {p.dtype}"
        )
    if bool(((p < 0) | (p > 1)).any()) or not bool(torch.isfinite(p).all()):
        raise ValueError(f"{fn}: probabilities must lie in [0, 1] (apply a sigmoid to logits first)")
    x = check_tensor(fn, "solutions", solutions)
    if x.dim() != 2 or x.shape[1] != p.shape[0]:
        raise ValueError(
            f"{fn}: solutions must have shape (Q, {p.shape[0]}), one 0/1 row per solution, "
            f"got {tuple(x.shape)}"
        )
    if bool(((x != 0) & (x != 1)).any()):
        raise ValueError(f"{fn}: solutions must hold only 0 and 1")
    check_number(fn, "energy_scale", energy_scale)
    if energy_scale == 0:
        raise ValueError(f"{fn}: energy_scale must be non-zero, got 0")
    if objective_values is None:
        w = p.new_full((x.shape[0],), 1.0 / x.shape[0])
    else:
        c = check_tensor(fn, "objective_values", objective_values)
        if c.shape != (x.shape[0],):
            raise ValueError(f"{fn}: objective_values must have shape ({x.shape[0]},), got {tuple(c.shape)}")
        w = torch.softmax(-c.to(p.dtype) / energy_scale, dim=0)
    return p, x.to(torch.bool), w


def vcl_contrastive_term(
    probabilities: Tensor,
    solutions: Tensor,
    *,
    objective_values: Tensor | None = None,
    energy_scale: float = 100.0,
    temperature: float = 0.1,
) -> Tensor:
    """Multi-positive contrastive term ``L_con`` (variables at 1 are positives).

    Args:
        probabilities: (V,) predicted p̂ in [0, 1]; solutions: (Q, V) 0/1.
        objective_values: (Q,) c_q (``None``: equal weights); energy_scale: T_E.
        temperature: τ > 0.
    """
    fn = "vcl_contrastive_term"
    check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    p, x, w = _inputs(fn, probabilities, solutions, objective_values, energy_scale)
    u = torch.logit(p.clamp(1e-8, 1 - 1e-8)) / temperature
    has_pos = x.any(1)
    pos_lse = torch.logsumexp(torch.where(x | ~has_pos.unsqueeze(1), u, float("-inf")), dim=1)
    per_solution = torch.logsumexp(u, dim=0) - pos_lse
    return (w * torch.where(has_pos, per_solution, 0.0)).sum()


def vcl_rank_term(
    probabilities: Tensor,
    solutions: Tensor,
    *,
    objective_values: Tensor | None = None,
    energy_scale: float = 100.0,
    margin: float = 0.9,
) -> Tensor:
    """Pairwise margin term ``L_rank``: mean hinge ``[m - (p̂_i - p̂_k)]_+`` over (1, 0) pairs."""
    fn = "vcl_rank_term"
    check_number(fn, "margin", margin)
    p, x, w = _inputs(fn, probabilities, solutions, objective_values, energy_scale)
    hinge = torch.relu(margin - (p.unsqueeze(1) - p.unsqueeze(0)))  # [i, k]
    pair = x.unsqueeze(2) & ~x.unsqueeze(1)  # (Q, i, k): i at 1, k at 0
    count = pair.sum((1, 2))
    total = (hinge.unsqueeze(0) * pair).sum((1, 2))
    per_solution = torch.where(count > 0, total / count.clamp_min(1), 0.0)
    return (w * per_solution).sum()


def vcl_loss(
    probabilities: Tensor,
    solutions: Tensor,
    *,
    objective_values: Tensor | None = None,
    energy_scale: float = 100.0,
    temperature: float = 0.1,
    margin: float = 0.9,
    alpha: float = 0.01,
) -> Tensor:
    """``L_con + α·L_rank`` for one instance (see the module docstring).

    Args:
        probabilities: (|B|,) predicted p̂; solutions: (Q, |B|) 0/1 feasible solutions.
        objective_values: (Q,) objective values c_q (``None``: equal weights).
        energy_scale: T_E; temperature: τ; margin: m; alpha: α.

    Example (p̂ = [0.9, 0.2, 0.6, 0.1], one solution [1, 0, 1, 0], τ = 0.1;
    L_con ≈ 0, L_rank = mean of [0.9 - (p_i - p_k)]_+ = 0.3):
        >>> import torch
        >>> p = torch.tensor([0.9, 0.2, 0.6, 0.1], dtype=torch.float64)
        >>> round(vcl_loss(p, torch.tensor([[1, 0, 1, 0]])).item(), 6)
        0.003
    """
    check_number("vcl_loss", "alpha", alpha, low=0.0)
    contrastive = vcl_contrastive_term(
        probabilities, solutions, objective_values=objective_values, energy_scale=energy_scale,
        temperature=temperature,
    )
    rank = vcl_rank_term(
        probabilities, solutions, objective_values=objective_values, energy_scale=energy_scale,
        margin=margin,
    )
    return contrastive + alpha * rank


__all__ = ["vcl_loss"]
