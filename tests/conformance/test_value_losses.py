"""Conformance for registered losses of kind "value": logits over m bins (N, m[, d1, ...]) and
real-valued targets (N[, d1, ...]), NaN marking missing targets (the analogue of
ignore_index). Mirrors test_logit_losses.py check by check."""

from __future__ import annotations

import pytest
import torch

import losslab

INFOS = losslab.list_losses(kind="value")
IDS = [i.name for i in INFOS]
M = 6
SUPPORT = {"v_min": -2.0, "v_max": 3.0, "num_bins": M}


def batch(n: int = 12, *, dtype=torch.float64, seed: int = 0, scale: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, M, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.rand(n, generator=g, dtype=torch.float64) * 6.0 - 2.5  # some outside the support
    return x, y


def call(info, x, y, **kw):
    return info.function(x, y, **{**SUPPORT, **kw})


def test_some_value_losses_are_registered():
    assert {"hl-gauss", "two-hot"} <= set(IDS)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_record_and_module(info):
    assert info.family and info.paper.title and info.summary and info.invalid_hyperparameters
    x, y = batch()
    torch.testing.assert_close(losslab.get_loss(info.name, **SUPPORT)(x, y), call(info, x, y))


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_reductions_and_bin_weights(info):
    x, y = batch()
    none = call(info, x, y, reduction="none")
    assert none.shape == y.shape
    torch.testing.assert_close(call(info, x, y, reduction="sum"), none.sum())
    torch.testing.assert_close(call(info, x, y), none.mean())
    torch.testing.assert_close(
        call(info, x, y, weight=torch.ones(M, dtype=torch.float64)), call(info, x, y)
    )


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_missing_targets_equal_dropping_rows(info, reduction):
    x, y = batch(n=10)
    missing = torch.tensor([1, 4, 7])
    keep = torch.ones(10, dtype=torch.bool)
    keep[missing] = False
    y_nan = y.clone()
    y_nan[missing] = float("nan")
    x1 = x.clone().requires_grad_()
    full = call(info, x1, y_nan, reduction=reduction)
    torch.testing.assert_close(full, call(info, x[keep], y[keep], reduction=reduction))
    full.backward()
    assert torch.all(x1.grad[missing] == 0)
    none = call(info, x, y_nan, reduction="none")
    assert torch.all(none[missing] == 0)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("case", ["empty", "all_missing"])
def test_empty_and_all_missing_give_zero_with_zero_gradient(info, case):
    n = 0 if case == "empty" else 4
    x = torch.randn(n, M, dtype=torch.float64, requires_grad=True)
    y = torch.full((n,), float("nan"), dtype=torch.float64)
    for reduction in ["mean", "sum"]:
        loss = call(info, x, y, reduction=reduction)
        assert loss.shape == () and loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
        assert grad is None or torch.all(grad == 0)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_spatial_layout_equals_flattened(info, reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, M, 4, 2, generator=g, dtype=torch.float64)
    y = torch.rand(3, 4, 2, generator=g, dtype=torch.float64)
    spatial = call(info, x, y, reduction=reduction)
    flat = call(info, x.movedim(1, -1).reshape(-1, M), y.reshape(-1), reduction=reduction)
    if reduction == "none":
        assert spatial.shape == y.shape
        flat = flat.reshape(y.shape)
    torch.testing.assert_close(spatial, flat)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_gradcheck_and_random_upstream(info):
    x, y = batch(n=4, scale=1.0)
    x.requires_grad_()
    for reduction in ["mean", "none"]:
        assert torch.autograd.gradcheck(
            lambda inp, r=reduction: call(info, inp, y, reduction=r), (x,)
        )
    up = torch.rand(4, dtype=torch.float64) * 4 - 1
    x1 = x.detach().clone().requires_grad_()
    (call(info, x1, y, reduction="none") * up).sum().backward()
    for i in range(4):
        xi = x.detach()[i : i + 1].clone().requires_grad_()
        (gi,) = torch.autograd.grad(call(info, xi, y[i : i + 1], reduction="sum"), xi)
        torch.testing.assert_close(x1.grad[i], up[i] * gi[0])


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_extreme_logits_and_half_precision(info, dtype):
    x, y = batch(n=8)
    xe = (torch.sign(x) * 1e4).to(dtype).requires_grad_() if dtype != torch.float16 else None
    if xe is not None:
        loss = call(info, xe, y.to(dtype))
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(xe.grad.float()).all()
    xh = x.float().to(dtype)
    torch.testing.assert_close(call(info, xh, y.float()), call(info, xh.float(), y.float()))


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_bad_input_raises_clear_errors(info):
    fn = info.function.__name__
    x, y = batch()
    with pytest.raises(ValueError, match=f"{fn}: target must have shape"):
        call(info, x, y[:-1])
    with pytest.raises(ValueError, match=f"{fn}: input has 6 logits per position but num_bins=5"):
        call(info, x, y, num_bins=5)
    with pytest.raises(TypeError, match=f"{fn}: input must be a floating-point"):
        call(info, x.long(), y)
    with pytest.raises(ValueError, match=f"{fn}: weight must have shape"):
        call(info, x, y, weight=torch.ones(M + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=f"{fn}: reduction must be one of"):
        call(info, x, y, reduction="average")
    with pytest.raises(ValueError, match=f"{fn}: ignore_index does not apply"):
        call(info, x, y, ignore_index=-1)


@pytest.mark.parametrize(
    "info,bad",
    [(i, b) for i in INFOS for b in i.invalid_hyperparameters],
    ids=[
        f"{i.name}-{'-'.join(map(str, b.items()))}"
        for i in INFOS
        for b in i.invalid_hyperparameters
    ],
)
def test_invalid_hyperparameters_are_rejected(info, bad):
    x, y = batch()
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        info.function(x, y, **bad)
    with pytest.raises(ValueError, match=name):
        losslab.get_loss(info.name, **bad)
