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
