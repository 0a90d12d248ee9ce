"""Fuzzed contracts: hypothesis draws the inputs of every registered loss and checks the
invariants of ``docs/conventions.md`` on each draw.

Logit losses (kind "logits"): layouts (N, C) and (N, C, d1[, d2]); float32 / float64 /
bfloat16 / float16 logits (half kinds are computed in float32 and give a float32 loss); logit
scales from 1e-3 to 1e4; ignore patterns (none, some, all ignored) with ``ignore_index`` -100,
-1 or a class index; optional class weights; every reduction. Checked on each draw:

* the loss and its gradient are finite on finite input, ignored positions get zero gradient;
* ``none`` keeps the target's shape, holds 0 at ignored positions and sums to ``sum``;
* ``mean`` equals ``Σ w_y ℓ / Σ w_y`` over kept positions (weights 1 without ``weight``);
* every position ignored: ``mean`` and ``sum`` are 0.0 with zero gradient.

Batch-level losses (``batch_level=True``) couple rows, so the per-row identities are skipped;
finiteness, zeros at ignored positions and the all-ignored rule still apply.

Bad input (wrong target shape, class out of range, wrong target / input dtype, wrong weight
shape, a negative or NaN weight, a 0-dim input, unknown reduction) must raise ``ValueError`` / ``TypeError`` naming the function, never
``IndexError`` / ``RuntimeError``.

Value losses (kind "value") get the same draws with real targets and NaN for missing ones
(``mean`` divides by the number of kept rows, bin weights included); embedding losses get a
finite-loss / finite-gradient / ``none``-sums-to-``sum`` fuzz. The budget is bounded and
derandomized (``derandomize=True``) so CI runs the same examples every time.
"""

from __future__ import annotations

import inspect
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losslab

from .extras import make_extras

LOGITS = losslab.list_losses(kind="logits")
VALUES = losslab.list_losses(kind="value")
EMBEDDINGS = losslab.list_losses(kind="embeddings")

# LOSSLAB_FUZZ_EXAMPLES raises the budget for a local bug hunt; CI runs the default.
_BUDGET = int(os.environ.get("LOSSLAB_FUZZ_EXAMPLES", "14"))
FUZZ = settings(
    max_examples=_BUDGET,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_BAD = settings(FUZZ, max_examples=max(10, _BUDGET * 5 // 7))

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
SCALES = [1e-3, 1.0, 5.0, 30.0, 1e3, 1e4]
LOW = (torch.bfloat16, torch.float16)


def _refuses_weight(info) -> bool:
    """Some losses refuse class weights with a documented ``ValueError`` (e.g. CBC is indexed by
    the teacher's pseudo-labels); the fuzz draws no weights for them."""
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    try:
        info.function(x, t, weight=torch.ones(3), **make_extras(info.extra_inputs, x, t))
    except ValueError as err:
        assert "weight is not supported" in str(err), err
        return True
    return False


NO_WEIGHT = {i.name for i in LOGITS if _refuses_weight(i)}


def _ids(infos):
    return [i.name for i in infos]


def _out_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in LOW else dtype


def _tol(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-9, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 1e-5}


def _close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, scale: torch.Tensor, msg: str):
    """``actual ≈ expected`` relative to ``scale`` (the sum of |terms| the two were reduced from)."""
    tol = _tol(dtype)
    err = (actual.double() - expected.double()).abs().item()
    bound = tol["atol"] + tol["rtol"] * (scale.double().item() + expected.double().abs().item())
    assert err <= bound, f"{msg}: {actual.item()!r} vs {expected.item()!r} (|diff| {err:.3g} > {bound:.3g})"


# --------------------------------------------------------------------------- drawing


@st.composite
def logit_case(draw, c_max: int = 6):
    n = draw(st.integers(1, 6))
    c = draw(st.integers(2, c_max))
    # None: unbatched logits (C,) with a 0-dim target, as F.cross_entropy allows.
    spatial = draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)))
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from(SCALES))
    pattern = draw(st.sampled_from(["none", "some", "all"]))
    ignore_index = draw(st.sampled_from([-100, -1, 0]))
    weighted = draw(st.sampled_from([None, torch.float32, torch.float64, torch.bfloat16]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return n, c, spatial, dtype, scale, pattern, ignore_index, weighted, reduction, seed


def make_logit_batch(n, c, spatial, dtype, scale, pattern, ignore_index, seed):
    g = torch.Generator().manual_seed(seed)
    x_shape, t_shape = ((c,), ()) if spatial is None else ((n, c, *spatial), (n, *spatial))
    x = (torch.randn(x_shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    t = torch.randint(0, c, t_shape, generator=g)
    if pattern == "none":
        ignored = torch.zeros(t.shape, dtype=torch.bool)
    elif pattern == "all":
        ignored = torch.ones(t.shape, dtype=torch.bool)
    else:
        ignored = torch.rand(t.shape, generator=g) < 0.4
        if t.numel() > 1:  # at least one kept and (where there is room) one ignored position
            ignored.view(-1)[0] = True
            ignored.view(-1)[-1] = False
        else:
            ignored.fill_(seed % 2 == 0)
    # A kept position whose class equals a class-index ignore_index would be ignored too.
    t = torch.where(t == ignore_index, (t + 1) % c, t)
    t = torch.where(ignored, torch.full_like(t, ignore_index), t)
    return x, t, ignored


def per_position(grad: torch.Tensor) -> torch.Tensor:
    """(N, C, d1, ...) → (N, d1, ..., C) so that a target-shaped mask selects rows; the
    unbatched (C,) is its own single position."""
    return grad if grad.dim() == 1 else grad.movedim(1, -1)


def extras_for(info, x: torch.Tensor, t: torch.Tensor) -> dict:
    if x.dim() == 1:  # unbatched: the extras of a batch of one, row 0
        return {k: v[0] for k, v in make_extras(info.extra_inputs, x[None], t[None]).items()}
    return make_extras(info.extra_inputs, x, t)


# --------------------------------------------------------------------------- logit losses


@pytest.mark.parametrize("info", LOGITS, ids=_ids(LOGITS))
@FUZZ
@given(case=logit_case())
def test_logit_contracts(info, case):
    n, c, spatial, dtype, scale, pattern, ignore_index, weighted, reduction, seed = case
    x, t, ignored = make_logit_batch(n, c, spatial, dtype, scale, pattern, ignore_index, seed)
    kept = ~ignored
    weighted = None if info.name in NO_WEIGHT else weighted  # weighted: None or the weight dtype
    w = (
        torch.rand(c, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) + 0.25
    ).to(weighted) if weighted is not None else None
    extras = extras_for(info, x, t)
    kw = {"weight": w, "ignore_index": ignore_index, **extras}
    out = _out_dtype(dtype)
    where = f"{info.name} {tuple(x.shape)} {dtype} scale={scale} ignore={pattern}/{ignore_index} weight={weighted}"

    x1 = x.clone().requires_grad_()
    loss = info.function(x1, t, reduction=reduction, **kw)
    assert loss.dtype == out, f"{where}: {reduction} loss is {loss.dtype}, expected {out}"
    assert torch.isfinite(loss).all(), f"{where}: {reduction} loss not finite: {loss}"
    if reduction == "none":
        assert loss.shape == t.shape, f"{where}: none has shape {tuple(loss.shape)}"
        assert torch.all(loss[ignored] == 0), f"{where}: none is not 0 at ignored positions"
        upstream = torch.rand(t.shape, generator=torch.Generator().manual_seed(seed + 2), dtype=out)
        (grad,) = torch.autograd.grad((loss * upstream).sum(), x1, allow_unused=True)
    else:
        assert loss.shape == (), f"{where}: {reduction} is not a scalar"
        (grad,) = torch.autograd.grad(loss, x1, allow_unused=True)
    grad = torch.zeros_like(x) if grad is None else grad
    assert torch.isfinite(grad.float()).all(), f"{where}: {reduction} gradient not finite"
    assert torch.all(per_position(grad)[ignored] == 0), f"{where}: ignored positions get gradient"

    if pattern == "all" and reduction != "none":
        assert loss.item() == 0.0, f"{where}: all ignored gives {loss.item()}, expected 0.0"
        assert torch.all(grad == 0), f"{where}: all ignored gives a nonzero gradient"

    if info.batch_level:
        return
    none = loss if reduction == "none" else info.function(x, t, reduction="none", **kw)
    total = info.function(x, t, reduction="sum", **kw)
    mean = info.function(x, t, reduction="mean", **kw)
    magnitude = none.detach().abs().sum()
    _close(none.detach().sum(), total, dtype, magnitude, f"{where}: none.sum() vs sum")
    wy = torch.ones(t.shape, dtype=torch.float64) if w is None else w.double()[t.clamp(0, c - 1)]
    weight_sum = wy[kept].sum()
    if weight_sum == 0:
        assert mean.item() == 0.0, f"{where}: mean over no kept position is {mean.item()}"
    else:
        _close(mean, total.double() / weight_sum, dtype, magnitude / weight_sum, f"{where}: mean vs Σwℓ/Σw")


SOFT = [i for i in LOGITS if i.soft_targets]


@pytest.mark.parametrize("info", SOFT, ids=_ids(SOFT))
@FUZZ
@given(case=logit_case())
def test_probability_target_contracts(info, case):
    """Probability targets shaped like the input: no ignored rows, ``mean`` divides by the
    number of positions, ``none`` sums to ``sum``; finite on finite input."""
    n, c, spatial, dtype, scale, _, _, weighted, reduction, seed = case
    g = torch.Generator().manual_seed(seed)
    shape = (c,) if spatial is None else (n, c, *spatial)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    sharp = torch.randn(shape, generator=g, dtype=torch.float64) * (seed % 3) * 10
    p = torch.softmax(sharp, dim=0 if spatial is None else 1).to(_out_dtype(dtype))
    w = (torch.rand(c, generator=g, dtype=torch.float64) + 0.25).to(weighted) if weighted is not None else None
    where = f"{info.name} {tuple(x.shape)} {dtype} scale={scale} weight={weighted}"
    x1 = x.clone().requires_grad_()
    loss = info.function(x1, p, weight=w, reduction=reduction)
    assert loss.dtype == _out_dtype(dtype) and torch.isfinite(loss).all(), f"{where}: {loss}"
    (grad,) = torch.autograd.grad(loss.sum(), x1)
    assert torch.isfinite(grad.float()).all(), f"{where}: gradient not finite"
    none = info.function(x, p, weight=w, reduction="none")
    assert none.shape == (() if spatial is None else (n, *spatial)), f"{where}: none {tuple(none.shape)}"
    total = info.function(x, p, weight=w, reduction="sum")
    mean = info.function(x, p, weight=w, reduction="mean")
    _close(none.sum(), total, dtype, none.abs().sum(), f"{where}: none.sum() vs sum")
    positions = max(none.numel(), 1)
    _close(mean, total.double() / positions, dtype, none.abs().sum() / positions, f"{where}: mean vs sum / N")


def _bad_input(kind: str, x: torch.Tensor, t: torch.Tensor, c: int, data) -> dict:
    """Arguments for one bad call of ``kind``; returns a dict of (input, target, **kw)."""
    if kind == "target_shape":
        shape = list(t.shape)
        change = data.draw(st.sampled_from(["grow", "shrink", "extra_dim", "drop_dim"]))
        if change == "drop_dim" and len(shape) > 1:
            shape = shape[:-1]
        elif change == "extra_dim":
            shape = [*shape, data.draw(st.integers(2, 3))]
        else:
            i = data.draw(st.integers(0, len(shape) - 1))
            shape[i] = shape[i] + 1 if change == "grow" or shape[i] == 1 else shape[i] - 1
        bad = torch.randint(0, c, shape)
        assert tuple(bad.shape) != tuple(t.shape)
        return {"input": x, "target": bad}
    if kind == "class_out_of_range":
        bad = t.clone()
        value = data.draw(st.one_of(st.integers(c, c + 1000), st.integers(-99, -2)))
        bad.view(-1)[data.draw(st.integers(0, t.numel() - 1))] = value
        return {"input": x, "target": bad, "ignore_index": -100}
    if kind == "target_dtype":
        dtype = data.draw(st.sampled_from([torch.float32, torch.float64, torch.bool]))
        return {"input": x, "target": t.to(dtype)}
    if kind == "input_dtype":
        dtype = data.draw(st.sampled_from([torch.int64, torch.int32, torch.bool]))
        return {"input": x.to(dtype), "target": t}
    if kind == "weight_shape":
        size = data.draw(st.sampled_from([c - 1, c + 1, 2 * c]))
        return {"input": x, "target": t, "weight": torch.ones(size, dtype=x.dtype)}
    if kind == "weight_negative":
        w = torch.ones(c, dtype=x.dtype)
        w[data.draw(st.integers(0, c - 1))] = data.draw(st.sampled_from([-1.0, -1e-3, float("nan")]))
        return {"input": x, "target": t, "weight": w}
    if kind == "input_scalar":
        return {"input": x.reshape(-1)[0], "target": t.reshape(-1)[0]}
    assert kind == "reduction"
    return {"input": x, "target": t, "reduction": data.draw(st.sampled_from(["average", "MEAN", ""]))}


BAD_KINDS = [
    "target_shape", "class_out_of_range", "target_dtype", "input_dtype", "weight_shape",
    "weight_negative", "input_scalar", "reduction",
]


@pytest.mark.parametrize("info", LOGITS, ids=_ids(LOGITS))
@FUZZ_BAD
@given(data=st.data())
def test_logit_bad_input_raises_value_or_type_error(info, data):
    n = data.draw(st.integers(1, 5))
    c = data.draw(st.integers(2, 6))
    spatial = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(n, c, *spatial, generator=g, dtype=dtype)
    t = torch.randint(0, c, (n, *spatial), generator=g)
    kind = data.draw(st.sampled_from(BAD_KINDS))
    call = _bad_input(kind, x, t, c, data)
    extras = make_extras(info.extra_inputs, x, t)
    with pytest.raises((ValueError, TypeError)) as err:
        info.function(call.pop("input"), call.pop("target"), **call, **extras)
    assert str(err.value).startswith(f"{info.function.__name__}:"), f"{kind}: {err.value}"


# --------------------------------------------------------------------------- value losses


@pytest.mark.parametrize("info", VALUES, ids=_ids(VALUES))
@FUZZ
@given(case=logit_case(c_max=8))
def test_value_contracts(info, case):
    n, m, spatial, dtype, scale, pattern, _, weighted, reduction, seed = case
    spatial = spatial or ()
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, m, *spatial, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.rand((n, *spatial), generator=g, dtype=torch.float64) * 8 - 4  # some outside [-2, 3]
    missing = {
        "none": torch.zeros(y.shape, dtype=torch.bool),
        "all": torch.ones(y.shape, dtype=torch.bool),
        "some": torch.rand(y.shape, generator=g) < 0.4,
    }[pattern]
    y = torch.where(missing, torch.full_like(y, float("nan")), y).to(_out_dtype(dtype))
    out = _out_dtype(dtype)
    w = (torch.rand(m, generator=g, dtype=torch.float64) + 0.25).to(weighted) if weighted is not None else None
    kw = {"weight": w, "v_min": -2.0, "v_max": 3.0, "num_bins": m}
    where = f"{info.name} {tuple(x.shape)} {dtype} scale={scale} missing={pattern} w={weighted}"

    x1 = x.clone().requires_grad_()
    loss = info.function(x1, y, reduction=reduction, **kw)
    assert loss.dtype == out and torch.isfinite(loss).all(), f"{where}: {loss}"
    (grad,) = torch.autograd.grad(loss.sum(), x1, allow_unused=True)
    grad = torch.zeros_like(x) if grad is None else grad
    assert torch.isfinite(grad.float()).all(), f"{where}: gradient not finite"
    assert torch.all(per_position(grad)[missing] == 0), f"{where}: missing positions get gradient"
    if pattern == "all" and reduction != "none":
        assert loss.item() == 0.0 and torch.all(grad == 0), f"{where}: all missing gives {loss}"
    none = info.function(x, y, reduction="none", **kw)
    assert none.shape == y.shape and torch.all(none[missing] == 0), f"{where}: none"
    total = info.function(x, y, reduction="sum", **kw)
    mean = info.function(x, y, reduction="mean", **kw)
    magnitude = none.abs().sum()
    _close(none.sum(), total, dtype, magnitude, f"{where}: none.sum() vs sum")
    kept = int((~missing).sum())
    expected = total.double() / kept if kept else torch.zeros((), dtype=torch.float64)
    _close(mean, expected, dtype, magnitude / max(kept, 1), f"{where}: mean vs sum / kept")


# --------------------------------------------------------------------------- embedding losses


def _has_reduction(info) -> bool:
    return "reduction" in inspect.signature(info.function).parameters


@pytest.mark.parametrize("info", EMBEDDINGS, ids=_ids(EMBEDDINGS))
@FUZZ
@given(
    n=st.integers(2, 10),
    d=st.integers(2, 6),
    num_classes=st.integers(1, 4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    scale=st.sampled_from([1e-2, 1.0, 30.0, 1e3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_embedding_losses_finite_and_reductions_agree(info, n, d, num_classes, dtype, scale, seed):
    g = torch.Generator().manual_seed(seed)
    e = (torch.randn(n, d, generator=g, dtype=torch.float64) * scale).to(dtype)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    where = f"{info.name} {tuple(e.shape)} {dtype} scale={scale} classes={labels.tolist()}"
    e1 = e.clone().requires_grad_()
    try:
        loss = info.function(e1, labels)
    except ValueError as err:  # a batch the loss cannot use (one class, too few neighbours)
        assert str(err).startswith(f"{info.function.__name__}:"), err
        return
    assert loss.dtype == dtype and loss.shape == () and torch.isfinite(loss), f"{where}: {loss}"
    (grad,) = torch.autograd.grad(loss, e1, allow_unused=True)
    assert grad is None or torch.isfinite(grad).all(), f"{where}: gradient not finite"
    if _has_reduction(info) and not info.batch_level:
        none = info.function(e, labels, reduction="none")
        assert torch.isfinite(none).all(), f"{where}: none {none}"
        total = info.function(e, labels, reduction="sum")
        _close(none.sum(), total, dtype, none.abs().sum(), f"{where}: none.sum() vs sum")
