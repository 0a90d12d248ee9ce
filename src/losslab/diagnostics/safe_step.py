r"""Safe step radius of softmax cross-entropy ("Ghosts of Softmax", Sao 2026, arXiv 2603.13552).

Along a unit direction v in parameter space the logits move, to first order, as
:math:`z_k(\theta + t v) \approx z_k + a_k t` with :math:`a = J_\theta z \, v` (one
Jacobian-vector product). Cross-entropy along that line is
:math:`\mathrm{LSE}(z + a t) - z_y - a_y t`, whose Taylor series in t stops converging at the
nearest complex zero of :math:`F(t) = \sum_k e^{z_k + a_k t}` — a "ghost of softmax".

* Multiclass lower bound per sample: :math:`\rho_i = \pi / \Delta_i`, with the spread
  :math:`\Delta_i = \max_k a_{ik} - \min_k a_{ik}`.
* The batch radius is the smallest per-sample radius, :math:`\rho = \pi / \max_i \Delta_i`
  (the nearest singularity of the summed loss), as in the official code.
* Binary, exact: with gap :math:`\delta = z_1 - z_2` and :math:`\Delta_a = |a_1 - a_2|` the
  zeros are :math:`t = (-\delta + i\pi(2m+1))/(a_1-a_2)`, so
  :math:`\rho^\star = \sqrt{\delta^2 + \pi^2}/\Delta_a \ge \pi/\Delta_a`.

A step of length τ along v is "safe" when the normalised step r = τ/ρ is below 1; the paper
reports no loss collapse for r < 1 and collapse for r ≥ 1 (see
:class:`losslab.optim.SafeStep`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp

_KINDS = ("bound", "binary_exact")


def _named_trainable(model: nn.Module) -> dict[str, Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _direction_tensors(
    fn: str, params: Mapping[str, Tensor], direction: object
) -> tuple[Tensor, ...]:
    """Accept a dict name→tensor, a sequence ordered like the trainable parameters, or one flat
    vector; return tensors shaped like the parameters."""
    shapes = [p.shape for p in params.values()]
    if isinstance(direction, Tensor) and direction.dim() == 1 and (
        len(shapes) != 1 or direction.shape != shapes[0]
    ):
        total = sum(p.numel() for p in params.values())
        if direction.numel() != total:
            raise ValueError(
                f"{fn}: a flat direction must have {total} entries (the model's trainable "
                f"parameters), got {direction.numel()}"
            )
        pieces = torch.split(direction, [math.prod(s) for s in shapes])
        return tuple(t.view(s) for t, s in zip(pieces, shapes, strict=True))
    if isinstance(direction, Tensor):
        direction = [direction]
    if isinstance(direction, Mapping):
        missing = [n for n in params if n not in direction]
        if missing:
            raise ValueError(f"{fn}: direction lacks entries for parameters {missing[:5]}")
        direction = [direction[n] for n in params]
    if not isinstance(direction, Sequence) or not all(isinstance(d, Tensor) for d in direction):
        raise TypeError(
            f"{fn}: direction must be a dict of tensors, a sequence of tensors or a flat tensor, "
            f"got {type(direction).__name__}"
        )
    if len(direction) != len(shapes):
        raise ValueError(
            f"{fn}: direction has {len(direction)} tensors but the model has {len(shapes)} "
            f"trainable parameters"
        )
    for d, (name, p) in zip(direction, params.items(), strict=True):
        if d.shape != p.shape:
            raise ValueError(
                f"{fn}: direction for {name} has shape {tuple(d.shape)}, expected {tuple(p.shape)}"
            )
    return tuple(direction)


def _check_finite_direction(fn: str, tangents: tuple[Tensor, ...], names: list[str]) -> None:
    for name, t in zip(names, tangents, strict=True):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{fn}: direction for {name} has NaN or inf entries; the radius "
                             f"needs a finite update direction")


def _directional(
    fn: str,
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    direction: object,
    params: Mapping[str, Tensor] | None,
    normalize: bool,
) -> tuple[Tensor, Tensor]:
    """Shared body of :func:`directional_logit_derivatives`; ``fn`` names the public caller in
    error messages."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: model must be a torch.nn.Module, got {type(model).__name__}")
    base = _named_trainable(model) if params is None else dict(params)
    if not base:
        raise ValueError(f"{fn}: model has no trainable parameters")
    tangents = _direction_tensors(fn, base, direction)
    primals = tuple(p.detach() for p in base.values())
    tangents = tuple(t.detach().to(p.dtype) for t, p in zip(tangents, primals, strict=True))
    names = list(base)
    _check_finite_direction(fn, tangents, names)
    if normalize:
        norm = torch.sqrt(sum((t.double().square().sum() for t in tangents),
                              torch.zeros((), dtype=torch.float64)))
        if float(norm) == 0.0:
            raise ValueError(f"{fn}: direction is zero; a unit direction needs a non-zero vector")
        if not math.isfinite(float(norm)):
            raise ValueError(f"{fn}: direction's norm overflows to inf; rescale it")
        tangents = tuple(t / norm.to(t.dtype) for t in tangents)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def logits_of(*ps: Tensor) -> Tensor:
        out = functional_call(model, {**dict(zip(names, ps, strict=True)), **buffers}, args)
        if not isinstance(out, Tensor):
            raise TypeError(f"{fn}: model must return a logits tensor, got {type(out).__name__}")
        return out

    logits, a = jvp(logits_of, primals, tangents)[:2]
    return logits.detach(), a.detach()


def directional_logit_derivatives(
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    direction: object,
    *,
    params: Mapping[str, Tensor] | None = None,
    normalize: bool = True,
) -> tuple[Tensor, Tensor]:
    """Return ``(logits, a)`` with ``a = d logits(θ + t v)/dt`` at t = 0, from one
    ``torch.func.jvp``. ``v`` is ``direction`` scaled to unit norm (``normalize=True``).

    ``params`` overrides the model's trainable parameters (the optimiser wrapper evaluates at
    the pre-step point). Buffers are cloned, so batch-norm running statistics are not updated.
    The model runs in its current mode: put it in eval mode if dropout noise should not enter
    the derivative.
    """
    return _directional("directional_logit_derivatives", model, inputs, direction, params,
                        normalize)


def logit_spread(a: Tensor, *, class_dim: int = -1) -> Tensor:
    """Per-sample spread ``max_k a_k − min_k a_k`` over the class dimension (all other
    dimensions are samples, e.g. (batch, time) for a language model)."""
    return a.amax(dim=class_dim) - a.amin(dim=class_dim)


def binary_exact_radius(logit_gap: Tensor, slope_gap: Tensor, *, eps: float = 1e-12) -> Tensor:
    r"""Exact radius :math:`\sqrt{\delta^2 + \pi^2}/|\Delta_a|` of the binary case, elementwise.

    Example: δ = 2, Δ_a = 1 → sqrt(4 + π²) = 3.724192 (the bound alone gives π).
    """
    return torch.sqrt(logit_gap.square() + math.pi**2) / slope_gap.abs().clamp_min(eps)


def safe_step_radius(
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    direction: object,
    *,
    kind: str = "bound",
    class_dim: int = -1,
    eps: float = 1e-12,
    params: Mapping[str, Tensor] | None = None,
) -> Tensor:
    r"""Radius ρ of the softmax cross-entropy Taylor series along ``direction`` (one JVP).

    .. math:: \rho = \frac{\pi}{\max_i\,(\max_k a_{ik} - \min_k a_{ik})},\qquad
              a = J_\theta z(\theta)\,\frac{u}{\lVert u\rVert}

    ``kind="binary_exact"`` (two logits, or one logit ``z`` read as logits ``(0, z)``) gives
    :math:`\min_i \sqrt{\delta_i^2+\pi^2}/\Delta_{a,i}` instead. A single-logit model is read
    as logits ``(0, z)`` by the bound too (spread :math:`|a_i|`).

    Args:
        model: returns logits with classes on ``class_dim``; (N, C) or (B, T, V).
        inputs: a tensor or a tuple of positional model inputs (the batch to protect).
        direction: the update direction u — dict name→tensor, a sequence ordered like the
            trainable parameters, or a flat vector; only its direction matters.

    Returns:
        0-dim tensor ρ in parameter-space units (``inf`` when no logit moves).

    Raises:
        ValueError: when the direction or the directional derivatives hold NaN/inf (a NaN
            spread would otherwise read as "no logit moves" and give ρ = inf).

    Example: a linear model z = W x with x = (1,) and direction (1, 0, −1) on W (norm √2)
        has a = (1, 0, −1)/√2, spread √2 and ρ = π/√2 = 2.221441; with x = (√2,) the
        spread is 2 and ρ = π/2 = 1.570796 (the a = (1, 0, −1) case).

    Reference: Sao, "Ghosts of Softmax: Complex Singularities That Limit Safe Step Sizes in
    Cross-Entropy", arXiv 2603.13552 (2026); official code piyush314/ghosts-of-softmax.
    """
    fn = "safe_step_radius"
    if kind not in _KINDS:
        raise ValueError(f"{fn}: kind must be one of {_KINDS}, got {kind!r}")
    logits, a = _directional(fn, model, inputs, direction, params, True)
    if not bool(torch.isfinite(a).all()):
        # NaN compares false against eps, which would silently report an infinite radius.
        raise ValueError(
            f"{fn}: the directional logit derivatives are not finite (NaN or inf); check inputs "
            f"and the model's parameters for NaN/inf"
        )
    if kind == "bound":
        if a.shape[class_dim] == 1:
            # one logit z is binary with logits (0, z): the spread is |a|, not max − min = 0
            spread = a.abs().squeeze(class_dim)
        else:
            spread = logit_spread(a, class_dim=class_dim)
        worst = float(spread.max()) if spread.numel() else 0.0
        return torch.tensor(math.pi / worst if worst > eps else math.inf, dtype=torch.float64)
    z = logits.movedim(class_dim, -1)
    s = a.movedim(class_dim, -1)
    if z.shape[-1] == 1:
        z, s = z[..., 0], s[..., 0]
        gap, slope = -z, -s  # logits (0, z): δ = 0 − z
    elif z.shape[-1] == 2:
        gap, slope = z[..., 0] - z[..., 1], s[..., 0] - s[..., 1]
    else:
        raise ValueError(
            f"{fn}: kind='binary_exact' needs 1 or 2 logits on class_dim, got {z.shape[-1]}"
        )
    radius = binary_exact_radius(gap.double(), slope.double(), eps=eps)
    return radius.min() if radius.numel() else torch.tensor(math.inf, dtype=torch.float64)


def output_logit_radius(logits: Tensor, *, gap: str = "spread", class_dim: int = -1) -> Tensor:
    r"""The cheap heuristic of the official code's ``RhoScaledAdam`` — **not** the JVP bound:
    :math:`\rho_{out} = \pi / \overline{\Delta_{out}}` with Δ_out the spread (max − min) or the
    top-2 gap of each sample's *output logits*, averaged over the batch. The official code
    scales Adam's learning rate by ``clamp(rho_out, 0.01, 1.0)``.

    Example: logits [[2, 1, 0]] → spread 2, ρ_out = π/2; gap="top2" → 1, ρ_out = π.
    """
    fn = "output_logit_radius"
    if gap not in ("spread", "top2"):
        raise ValueError(f"{fn}: gap must be 'spread' or 'top2', got {gap!r}")
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() == 0:
        raise TypeError(f"{fn}: logits must be a floating-point tensor with a class dimension, "
                        f"got {logits.dtype if isinstance(logits, Tensor) else type(logits)}")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{fn}: logits must be finite, got NaN or inf entries")
    z = logits.detach().movedim(class_dim, -1).double()
    if gap == "top2" and z.shape[-1] < 2:
        raise ValueError(f"{fn}: gap='top2' needs at least 2 classes on class_dim, got "
                         f"{z.shape[-1]}")
    if gap == "spread":
        delta = z.amax(-1) - z.amin(-1)
    else:
        top = z.topk(2, dim=-1).values
        delta = top[..., 0] - top[..., 1]
    mean = float(delta.mean()) if delta.numel() else 0.0
    return torch.tensor(math.pi / mean if mean > 1e-12 else math.inf, dtype=torch.float64)


__all__ = [
    "binary_exact_radius",
    "directional_logit_derivatives",
    "logit_spread",
    "output_logit_radius",
    "safe_step_radius",
]
