"""SAM / GSAM on a quadratic where every quantity has a closed form; gradient-norm penalties
(spec B§20) against analytic gradients and the worked example; the SAR/RSGS entropy filter."""

import math

import pytest
import torch
from torch import nn

from losslab.optim import (
    GSAM,
    SAM,
    IgniteConstraint,
    entropy_filter_mask,
    filtered_entropy,
    gradient_norm_penalty,
    surrogate_sharpness,
)

A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
W0 = torch.tensor([1.0, -2.0], dtype=torch.float64)


def _quadratic_setup(opt_cls, **kw):
    w = nn.Parameter(W0.clone())
    opt = opt_cls(torch.optim.SGD([w], lr=0.1), **kw)

    def closure():
        loss = 0.5 * w @ A @ w
        loss.backward()
        return loss

    return w, opt, closure


def _closed_form(rho, alpha):
    g = A @ W0
    e = rho * g / g.norm()
    gp = A @ (W0 + e)
    g_perp = g - (g @ gp) / (gp @ gp) * gp
    d = gp - alpha * g_perp
    gap = 0.5 * (W0 + e) @ A @ (W0 + e) - 0.5 * W0 @ A @ W0
    return W0 - 0.1 * d, gap


def test_sam_step_matches_closed_form():
    w, opt, closure = _quadratic_setup(SAM, rho=0.2)
    loss = opt.step(closure)
    expected, gap = _closed_form(0.2, 0.0)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-12)
    assert loss.item() == pytest.approx(0.5 * float(W0 @ A @ W0))
    assert opt.history[-1].surrogate_gap == pytest.approx(gap.item(), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_gsam_step_matches_closed_form(alpha):
    w, opt, closure = _quadratic_setup(GSAM, rho=0.2, alpha=alpha)
    opt.step(closure)
    expected, _ = _closed_form(0.2, alpha)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-12)


def test_gsam_orthogonal_part_is_orthogonal_to_perturbed_gradient():
    # d - g_p = -alpha g_perp must be orthogonal to g_p: the perturbed loss's first-order
    # decrease is SAM's, GSAM only adds a gap-reducing component
    g = A @ W0
    gp = A @ (W0 + 0.2 * g / g.norm())
    g_perp = g - (g @ gp) / (gp @ gp) * gp
    assert abs(float(g_perp @ gp)) < 1e-12


def test_sam_trains_a_small_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(64, 4)
    y = (x @ torch.randn(4, 3)).argmax(1)  # a learnable labelling
    opt = GSAM(torch.optim.SGD(model.parameters(), lr=0.5), rho=0.05, alpha=0.1)

    def closure():
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure).item()
    for _ in range(60):
        last = opt.step(closure).item()
    assert last < 0.8 * first
    assert all(r.surrogate_gap >= -1e-6 for r in opt.history[-5:])


def test_gradient_norm_penalty_and_its_gradient():
    w = W0.clone().requires_grad_()
    pen = gradient_norm_penalty(0.5 * w @ A @ w, [w])
    g = A @ W0
    assert pen.item() == pytest.approx(g.norm().item(), rel=1e-12)
    (grad_pen,) = torch.autograd.grad(pen, w)
    torch.testing.assert_close(grad_pen, A @ g / g.norm(), rtol=1e-12, atol=1e-12)


def test_surrogate_sharpness_spec_example_and_gradients():
    model = nn.Linear(2, 1).double()
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
    mon = surrogate_sharpness(model, x, rho=0.05, reduction="mean_of_norms")
    assert mon.item() == pytest.approx(0.0965926, abs=1e-7)
    assert surrogate_sharpness(model, x, rho=1.0).item() == pytest.approx(math.sqrt(3.5))
    # nonlinear surrogate: the penalty's gradient equals a central finite difference
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    for reduction in ("norm_of_mean", "mean_of_norms"):
        val = surrogate_sharpness(net, x, rho=1.0, reduction=reduction)
        (gw,) = torch.autograd.grad(val, net[0].weight)
        with torch.no_grad():
            net[0].weight[1, 0] += 1e-6
            up = surrogate_sharpness(net, x, rho=1.0, reduction=reduction).item()
            net[0].weight[1, 0] -= 2e-6
            down = surrogate_sharpness(net, x, rho=1.0, reduction=reduction).item()
            net[0].weight[1, 0] += 1e-6
        assert gw[1, 0].item() == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9)


def test_ignite_dual_ascent():
    model = nn.Linear(2, 1).double()
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
    con = IgniteConstraint(rho=0.05, epsilon=0.05, dual_lr=2.0, reduction="mean_of_norms")
    fit = torch.tensor(1.0, dtype=torch.float64)
    assert con.objective(fit, model, x).item() == 1.0  # λ0 = 0
    assert con.dual_step() == pytest.approx(2.0 * (0.0965926 - 0.05), abs=1e-6)
    total = con.objective(fit, model, x)
    assert total.item() == pytest.approx(1.0 + con.multiplier * (0.0965926 - 0.05), abs=1e-7)
    con.epsilon = 1.0  # constraint satisfied: the multiplier decays to 0 and stays there
    con.objective(fit, model, x)
    assert con.dual_step() == 0.0


def test_entropy_filter():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [10.0, 9.0, -5.0]])
    mask = entropy_filter_mask(logits)
    assert mask.tolist() == [True, False, False]  # [10, 9, -5] has entropy 0.58 > 0.44
    p = torch.softmax(logits[0], 0)
    assert filtered_entropy(logits).item() == pytest.approx(float(-(p * p.log()).sum()))
    z = torch.zeros(2, 3, requires_grad=True)
    out = filtered_entropy(z)
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(z.grad) == 0
    with pytest.raises(ValueError, match=r"^filtered_entropy: margin must lie in"):
        filtered_entropy(logits, margin=0)
    with pytest.raises(TypeError, match=r"^GSAM: optimizer must be"):
        GSAM(object())


@pytest.mark.parametrize(("cls", "kw", "expected"), [
    (SAM, {}, [0.685770, 0.898419]),
    (GSAM, {"alpha": 0.5}, [0.6853, 0.8998]),
])
def test_docstring_examples(cls, kw, expected):
    w = nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = cls(torch.optim.SGD([w], lr=0.1), rho=0.05, **kw)

    def closure():
        loss = 0.5 * (3 * w[0] ** 2 + w[1] ** 2)
        loss.backward()
        return loss

    opt.step(closure)
    tol = 1e-6 if cls is SAM else 5e-5
    torch.testing.assert_close(w.detach(), torch.tensor(expected, dtype=torch.float64),
                               rtol=0, atol=tol)
    assert opt.history[-1].surrogate_gap == pytest.approx(0.1616, abs=5e-5)
