"""Conformance for registered losses of kind "model": called as ``fn(model, inputs, target)``
(they run the model themselves, e.g. to search adversarial inputs). Mirrors the logit suite:
reductions, class weights, ignore_index = dropping rows, empty batches, gradients, extreme
scales, bad input, invalid hyperparameters. A fresh seeded generator per call keeps the
random PGD start identical across calls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import losslab

INFOS = losslab.list_losses(kind="model")
IDS = [i.name for i in INFOS]
C, D = 5, 4
FAST = {"steps": 2, "epsilon": 0.1, "step_size": 0.05, "clip": None}


def model(seed: int = 0, dtype=torch.float64, scale: float = 1.0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, C)).to(dtype)
    with torch.no_grad():
        m[2].weight.mul_(scale)
    return m


def batch(n: int = 10, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g, dtype=dtype), torch.randint(0, C, (n,), generator=g)


def call(info, m, x, t, **kw):
    return info.function(m, x, t, generator=torch.Generator().manual_seed(1), **{**FAST, **kw})


def test_some_model_losses_are_registered():
    assert "adv-comp-sum" in IDS


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_record_and_module(info):
    assert info.family and info.paper.title and info.summary and info.invalid_hyperparameters
    m, (x, t) = model(), batch()
    module = losslab.get_loss(info.name, generator=torch.Generator().manual_seed(1), **FAST)
    torch.testing.assert_close(module(m, x, t), call(info, m, x, t))


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_reductions_and_class_weights(info):
    m, (x, t) = model(), batch()
    none = call(info, m, x, t, reduction="none")
    assert none.shape == t.shape
    torch.testing.assert_close(call(info, m, x, t, reduction="sum"), none.sum())
    torch.testing.assert_close(call(info, m, x, t), none.mean())
    w = torch.rand(C, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.2
    none_w = call(info, m, x, t, weight=w, reduction="none")
    torch.testing.assert_close(none_w, none * w[t])
    torch.testing.assert_close(call(info, m, x, t, weight=w), none_w.sum() / w[t].sum())


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ignore_index_equals_dropping_rows(info, reduction):
    m, (x, t) = model(), batch()
    ignored = torch.tensor([1, 4, 7])
    keep = torch.ones(10, dtype=torch.bool)
    keep[ignored] = False
    t_ign = t.clone()
    t_ign[ignored] = -100
    x1 = x.clone().requires_grad_()
    full = call(info, m, x1, t_ign, reduction=reduction)
    torch.testing.assert_close(full, call(info, m, x[keep], t[keep], reduction=reduction))
    full.backward()
    assert torch.all(x1.grad[ignored] == 0)
    assert torch.all(call(info, m, x, t_ign, reduction="none")[ignored] == 0)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("case", ["empty", "all_ignored"])
def test_empty_and_all_ignored_give_zero_with_zero_gradient(info, case):
    m = model()
    n = 0 if case == "empty" else 4
    x = torch.randn(n, D, dtype=torch.float64)
    t = torch.full((n,), -100)
    for reduction in ["mean", "sum"]:
        loss = call(info, m, x, t, reduction=reduction)
        assert loss.shape == () and loss.item() == 0.0
        grads = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True)
        assert all(g is None or torch.all(g == 0) for g in grads)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_gradcheck_inputs_and_parameters_float64(info):
    m, (x, t) = model(), batch(n=4)
    x.requires_grad_()
    for reduction in ["mean", "none"]:
        assert torch.autograd.gradcheck(
            lambda inp, r=reduction: call(info, m, inp, t, reduction=r), (x,), atol=1e-5
        )
    params = dict(m.named_parameters())

    def of_bias(b):
        # A plain callable model whose last bias is the gradcheck variable.
        f = lambda inp: torch.func.functional_call(m, {**params, "2.bias": b}, (inp,))  # noqa: E731
        return call(info, f, x.detach(), t)

    assert torch.autograd.gradcheck(of_bias, (m[2].bias.detach().clone().requires_grad_(),))


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_finite_at_extreme_logits_in_float32(info):
    m, (x, t) = model(dtype=torch.float32, scale=1e4), batch(dtype=torch.float32)
    loss = call(info, m, x, t)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_restores_training_mode(info):
    m, (x, t) = model(), batch()
    m.train()
    call(info, m, x, t)
    assert m.training
    m.eval()
    call(info, m, x, t)
    assert not m.training


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_bad_input_raises_clear_errors(info):
    fn = info.function.__name__
    m, (x, t) = model(), batch()
    with pytest.raises(ValueError, match=f"{fn}: target must have shape"):
        call(info, m, x, t[:-1])
    bad = t.clone()
    bad[0] = C
    with pytest.raises(ValueError, match=rf"{fn}: target has class {C} but input has only {C}"):
        call(info, m, x, bad)
    with pytest.raises(TypeError, match=f"{fn}: inputs must be a floating-point"):
        call(info, m, x.long(), t)
    with pytest.raises(ValueError, match=f"{fn}: reduction must be one of"):
        call(info, m, x, t, reduction="average")
    with pytest.raises(ValueError, match=f"{fn}: weight must have shape"):
        call(info, m, x, t, weight=torch.ones(C + 1, dtype=torch.float64))


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
    m, (x, t) = model(), batch()
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        info.function(m, x, t, **bad)
    with pytest.raises(ValueError, match=name):
        losslab.get_loss(info.name, **bad)
