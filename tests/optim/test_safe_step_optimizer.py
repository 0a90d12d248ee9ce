"""SafeStep wrapper: caps the optimiser's own step at r_target·ρ, leaves small steps alone."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losslab.diagnostics import safe_step_radius
from losslab.optim import SafeStep


def _setup(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(16, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    return model, x, y


def _one_step(model, opt, x, y):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    before = [p.detach().clone() for p in model.parameters()]
    if isinstance(opt, SafeStep):
        opt.step(inputs=x)
    else:
        opt.step()
    return before, [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]


@pytest.mark.parametrize("inner", ["sgd", "adam"])
def test_large_step_is_capped_to_r_rho_along_its_own_direction(inner):
    model, x, y = _setup()
    reference, _, _ = _setup()
    reference.load_state_dict(model.state_dict())
    make = {"sgd": lambda ps: torch.optim.SGD(ps, lr=50.0, momentum=0.9, weight_decay=1e-3),
            "adam": lambda ps: torch.optim.Adam(ps, lr=1.0)}[inner]
    ref_opt = make(reference.parameters())
    opt = SafeStep(make(model.parameters()), model, r_target=0.5)
    before, step = _one_step(model, opt, x, y)
    _, ref_step = _one_step(reference, ref_opt, x, y)
    flat = torch.cat([s.flatten() for s in step])
    ref_flat = torch.cat([s.flatten() for s in ref_step])
    # same direction as the plain optimiser's step ...
    cos = torch.dot(flat, ref_flat) / (flat.norm() * ref_flat.norm())
    assert cos.item() == pytest.approx(1.0, abs=1e-12)
    # ... with length r·ρ, ρ computed independently at the pre-step point
    with torch.no_grad():
        for p, b in zip(model.parameters(), before, strict=True):
            p.copy_(b)
    rho = safe_step_radius(model, x, ref_step).item()
    assert flat.norm().item() == pytest.approx(0.5 * rho, rel=1e-9)
    rec = opt.history[-1]
    assert rec.rho == pytest.approx(rho, rel=1e-12) and rec.scale < 1
    assert rec.ratio == pytest.approx(ref_flat.norm().item() / rho, rel=1e-9)


def test_small_step_is_unchanged_and_set_mode_rescales():
    model, x, y = _setup(1)
    reference, _, _ = _setup(1)
    reference.load_state_dict(model.state_dict())
    opt = SafeStep(torch.optim.SGD(model.parameters(), lr=1e-4), model)
    _, step = _one_step(model, opt, x, y)
    _, ref_step = _one_step(reference, torch.optim.SGD(reference.parameters(), lr=1e-4), x, y)
    for s, r in zip(step, ref_step, strict=True):
        torch.testing.assert_close(s, r, rtol=0, atol=0)
    assert opt.history[-1].scale == 1.0

    model, x, y = _setup(2)
    opt = SafeStep(torch.optim.SGD(model.parameters(), lr=1e-4), model, mode="set")
    _, step = _one_step(model, opt, x, y)
    length = math.sqrt(sum(float(s.square().sum()) for s in step))
    assert length == pytest.approx(opt.history[-1].rho, rel=1e-9)
    assert opt.history[-1].scale > 1


def test_closure_and_errors():
    model, x, y = _setup(3)
    opt = SafeStep(torch.optim.SGD(model.parameters(), lr=0.1), model)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    assert opt.step(closure, inputs=x) is not None
    with pytest.raises(ValueError, match=r"^SafeStep: r_target must lie in"):
        SafeStep(torch.optim.SGD(model.parameters(), lr=0.1), model, r_target=0)
    with pytest.raises(ValueError, match=r"^SafeStep: optimizer holds parameters"):
        SafeStep(torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1), model)


def _linear_at_zero():
    model = nn.Linear(1, 3, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    return model


def test_spec_controller_example_caps_tau_2_to_half_pi():
    # update u = 2·(1, 0, -1)/sqrt 2 (tau = 2); with x = (sqrt 2,) the radius along it is
    # pi/2, so r = 2/(pi/2) = 1.273 and the capped step has length pi/2 = 1.5708
    model = _linear_at_zero()
    opt = SafeStep(torch.optim.SGD(model.parameters(), lr=1.0), model)
    model.weight.grad = -math.sqrt(2.0) * torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)
    opt.step(inputs=torch.tensor([[math.sqrt(2.0)]], dtype=torch.float64))
    rec = opt.history[-1]
    assert rec.proposed == pytest.approx(2.0, rel=1e-12)
    assert rec.rho == pytest.approx(1.570796, abs=1e-6)
    assert rec.ratio == pytest.approx(1.273, abs=5e-4)
    assert model.weight.detach().norm().item() == pytest.approx(1.5708, abs=5e-5)
    expected = (math.pi / 2) * torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)
    torch.testing.assert_close(model.weight.detach(), expected / math.sqrt(2.0))


def test_non_finite_update_or_inputs_restore_weights_and_raise():
    model = _linear_at_zero()
    with torch.no_grad():
        model.weight.fill_(0.5)
    opt = SafeStep(torch.optim.SGD(model.parameters(), lr=1.0), model)
    before = model.weight.detach().clone()
    model.weight.grad = torch.tensor([[float("nan")], [0.0], [1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^SafeStep.step: the inner optimizer's update is not"):
        opt.step(inputs=torch.ones(1, 1, dtype=torch.float64))
    torch.testing.assert_close(model.weight.detach(), before, rtol=0, atol=0)
    model.weight.grad = torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^SafeStep.step: step undone .*safe_step_radius: the"):
        opt.step(inputs=torch.tensor([[float("nan")]], dtype=torch.float64))
    torch.testing.assert_close(model.weight.detach(), before, rtol=0, atol=0)


def test_single_logit_model_is_capped_and_kind_is_passed():
    torch.manual_seed(0)
    x = torch.randn(8, 3, dtype=torch.float64)
    for kind in ("bound", "binary_exact"):
        model = nn.Linear(3, 1).double()
        opt = SafeStep(torch.optim.SGD(model.parameters(), lr=1e3), model, kind=kind)
        model.weight.grad = torch.ones_like(model.weight)
        model.bias.grad = torch.ones_like(model.bias)
        before = [p.detach().clone() for p in model.parameters()]
        step = [-1e3 * torch.ones_like(p) for p in model.parameters()]
        opt.step(inputs=x)
        rho = safe_step_radius(model, x, step, params=dict(zip(["weight", "bias"], before,
                                                               strict=True)), kind=kind)
        rec = opt.history[-1]
        assert math.isfinite(rec.rho) and rec.rho == pytest.approx(rho.item(), rel=1e-12)
        assert rec.scale < 1
    with pytest.raises(ValueError, match=r"^SafeStep: kind must be one of"):
        SafeStep(torch.optim.SGD(model.parameters(), lr=0.1), model, kind="exact")
