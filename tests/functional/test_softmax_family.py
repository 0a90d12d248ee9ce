"""comp_sum and spherical_z_loss: worked values of spec A§1 and A§4.1, identities, gradients."""

import math

import numpy as np
import pytest
import torch

import losslab
import losslab.functional as LF

E = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([0])

# spec A§1.1 table and A§1.2 gradients
COMP_SUM_TABLE = [(0.0, 0.503215), (0.5, 0.452113), (1.0, 0.407606), (1.5, 0.368754),
                  (1.7, 0.354614), (2.0, 0.334759), (3.0, 0.278727)]
COMP_SUM_GRADS = {
    0.0: (-0.503215, 0.367879, 0.135335),
    1.0: (-0.334759, 0.244728, 0.090031),
    2.0: (-0.222695, 0.162803, 0.059892),
}


def _batch(n=9, c=5, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    t = torch.randint(0, c, (n,), generator=g)
    return x, t


@pytest.mark.parametrize("tau,value", COMP_SUM_TABLE)
def test_comp_sum_worked_values(tau, value):
    assert LF.comp_sum(E, Y, tau=tau).item() == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("tau", sorted(COMP_SUM_GRADS))
def test_comp_sum_worked_gradients(tau):
    z = E.clone().requires_grad_()
    LF.comp_sum(z, Y, tau=tau).backward()
    expected = torch.tensor([COMP_SUM_GRADS[tau]], dtype=torch.float64)
    torch.testing.assert_close(z.grad, expected, atol=1e-6, rtol=0)


def test_comp_sum_gradient_is_rescaled_ce_gradient():
    # ∇ℓ_τ = p_y^{τ-1}·(p - e_y) for every τ (spec A§1.2)
    x, t = _batch()
    p = torch.softmax(x, 1)
    p_y = p.gather(1, t[:, None])
    for tau in [0.0, 0.3, 1.0, 1.4, 2.0, 3.5]:
        z = x.clone().requires_grad_()
        LF.comp_sum(z, t, tau=tau, reduction="sum").backward()
        expected = p_y ** (tau - 1) * (p - torch.nn.functional.one_hot(t, 5))
        torch.testing.assert_close(z.grad, expected)


def test_comp_sum_matches_phi_tau_of_u_directly():
    # The definition Φ^τ(u), u = Σ_{k≠y} exp(z_k - z_y), evaluated naively in numpy.
    x, t = _batch(seed=3, scale=1.5)
    xs, ts = x.numpy(), t.numpy()
    for tau in [0.0, 0.5, 1.0, 1.25, 2.0, 2.5]:
        ref = []
        for row, y in zip(xs, ts, strict=True):
            u = np.exp(row - row[y]).sum() - 1.0
            ref.append(np.log1p(u) if tau == 1 else ((1 + u) ** (1 - tau) - 1) / (1 - tau))
        ours = LF.comp_sum(x, t, tau=tau, reduction="none").numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_comp_sum_identities():
    x, t = _batch()
    torch.testing.assert_close(LF.comp_sum(x, t, tau=1.0), LF.cross_entropy(x, t))
    # Just outside the CE branch (|τ-1| ≥ 1e-6) the value follows the Taylor expansion
    # -log p - s·(log p)²/2 in s = τ-1, so there is no jump at the switch.
    log_p_y = -LF.cross_entropy(x, t, reduction="none")
    for s in [2e-6, -2e-6, 1e-5]:
        torch.testing.assert_close(LF.comp_sum(x, t, tau=1.0 + s, reduction="none"),
                                   -log_p_y - s * log_p_y**2 / 2, atol=1e-9, rtol=1e-7)
    for q in [0.1, 0.5, 0.7, 0.99]:
        torch.testing.assert_close(LF.comp_sum(x, t, tau=1.0 + q),
                                   LF.generalized_cross_entropy(x, t, q=q))
    p_y = torch.softmax(x, 1).gather(1, t[:, None]).squeeze(1)
    torch.testing.assert_close(LF.comp_sum(x, t, tau=2.0, reduction="none"), 1 - p_y)
    torch.testing.assert_close(LF.comp_sum(x, t, tau=0.0, reduction="none"), 1 / p_y - 1)


def test_comp_sum_shift_invariant_and_registry():
    x, t = _batch()
    torch.testing.assert_close(LF.comp_sum(x + 7.5, t, tau=0.5), LF.comp_sum(x, t, tau=0.5))
    mod = losslab.get_loss("comp-sum", tau=1.5)
    torch.testing.assert_close(mod(x, t), LF.comp_sum(x, t, tau=1.5))
    with pytest.raises(ValueError, match="comp_sum: tau"):
        LF.comp_sum(x, t, tau=-0.1)
    with pytest.raises(ValueError, match="comp_sum: tau"):
        losslab.get_loss("comp-sum", tau=-1.0)


def test_comp_sum_large_tau_is_bounded_and_small_tau_overflows_honestly():
    x = torch.tensor([[1e4, -1e4, 0.0]]).requires_grad_()
    t = torch.tensor([1])  # p_y = e^{-2e4}
    out = LF.comp_sum(x, t, tau=1.5)
    assert out.item() == pytest.approx(2.0)  # 1/(τ-1)
    out.backward()
    assert torch.isfinite(x.grad).all()
    assert math.isinf(LF.comp_sum(x.detach(), t, tau=0.5).item())  # true value ~ e^{1e4}


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.7, 3.0])
def test_comp_sum_gradcheck(tau):
    x, t = _batch(n=4, c=3, scale=1.0, seed=5)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: LF.comp_sum(z, t, tau=tau, reduction="none"), (x,))


# --- spherical Z-loss ------------------------------------------------------------------------

@pytest.mark.parametrize("a,b,value", [(1.0, 1.0, 0.587075), (1.0, 0.0, 0.257609),
                                       (0.1, 10.0, 12.252277), (5.0, 2.0, 0.779358)])
def test_z_loss_worked_values(a, b, value):
    assert LF.spherical_z_loss(E, Y, a=a, b=b).item() == pytest.approx(value, abs=1e-6)


def _z_loss_reference(x, t, a, b):
    out = []
    for row, y in zip(x.numpy(), t.numpy(), strict=True):
        mu = row.mean()
        sigma = np.sqrt((row**2).mean() - mu**2)  # population std, as in the paper
        out.append(np.logaddexp(0.0, a * (b - (row[y] - mu) / sigma)) / a)
    return np.array(out)


def test_z_loss_matches_reference_and_analytic_gradient():
    x, t = _batch(seed=2)
    a, b = 2.0, 1.5
    np.testing.assert_allclose(LF.spherical_z_loss(x, t, a=a, b=b, reduction="none").numpy(),
                               _z_loss_reference(x, t, a, b), rtol=1e-9)
    # spec A§4.1: ∂L/∂z_k = -sigmoid(a(b - ẑ_y))·[(δ_ky - 1/K)/σ - ẑ_y ẑ_k/(Kσ)]
    z = x.clone().requires_grad_()
    LF.spherical_z_loss(z, t, a=a, b=b, reduction="sum").backward()
    k = x.shape[1]
    mu = x.mean(1, keepdim=True)
    sigma = ((x - mu) ** 2).mean(1, keepdim=True).sqrt()
    zh = (x - mu) / sigma
    zy = zh.gather(1, t[:, None])
    dzy = (torch.nn.functional.one_hot(t, k) - 1 / k) / sigma - zy * zh / (k * sigma)
    expected = -torch.sigmoid(a * (b - zy)) * dzy
    torch.testing.assert_close(z.grad, expected, atol=1e-9, rtol=1e-6)


def test_z_loss_shift_and_scale_invariance():
    x, t = _batch(seed=4)
    ref = LF.spherical_z_loss(x, t, reduction="none", a=1.0, b=2.0)
    for shift, scale in [(0.0, 10.0), (-4.0, 1.0), (3.0, 0.25), (100.0, 1000.0)]:
        got = LF.spherical_z_loss(x * scale + shift, t, reduction="none", a=1.0, b=2.0)
        torch.testing.assert_close(got, ref)


def test_z_loss_equal_logits_finite_and_distinct_from_ce_z_loss():
    x = torch.zeros(3, 4, requires_grad=True)
    t = torch.tensor([0, 1, 3])
    out = LF.spherical_z_loss(x, t)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
    assert out.item() == pytest.approx(math.log1p(math.e), abs=1e-6)  # ẑ_y = 0, a=b=1
    # cross_entropy's z_loss coefficient is the PaLM penalty, a different thing
    xe, te = _batch()
    assert not torch.allclose(LF.cross_entropy(xe, te, z_loss=1.0), LF.spherical_z_loss(xe, te))


def test_z_loss_validation_and_registry():
    x, t = _batch()
    with pytest.raises(ValueError, match="spherical_z_loss: a"):
        LF.spherical_z_loss(x, t, a=0.0)
    info = {i.name: i for i in losslab.list_losses()}["z-loss"]
    assert info.defaults == {"a": 1.0, "b": 1.0}
    assert "placeholder" in info.summary
    torch.testing.assert_close(losslab.get_loss("z-loss", a=3.0)(x, t),
                               LF.spherical_z_loss(x, t, a=3.0))


def test_z_loss_gradcheck():
    x, t = _batch(n=4, c=4, scale=1.0, seed=6)
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z: LF.spherical_z_loss(z, t, a=2.0, b=0.5, reduction="none"), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["comp-sum", "z-loss"])
def test_extreme_logits_finite(name, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(6, 5, generator=g).sign() * 1e4).to(dtype).requires_grad_()
    t = torch.randint(0, 5, (6,), generator=g)
    out = losslab.get_loss(name)(x, t)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()


def test_docstring_examples_run():
    import doctest

    import losslab.functional.logits.softmax as module

    assert doctest.testmod(module).failed == 0


# --- review fixes: scale range, equal logits, tensor hyperparameters -------------------------

@pytest.mark.parametrize("scale", [1e-7, 1.0, 1e4, 1e30])
def test_z_loss_float32_matches_float64_at_any_scale(scale):
    # Before: σ² overflowed at |z| ≳ 1.8e19 (loss → softplus(b)/a, zero gradient) and the
    # variance ε dominated below ~1e-5 (error 0.38 at 1e-6).
    x, t = _batch(n=32, c=7, scale=1.0, seed=11)
    x64 = (x * scale).requires_grad_()
    x32 = (x * scale).float().requires_grad_()
    l64 = LF.spherical_z_loss(x64, t, reduction="none", a=2.0, b=1.5)
    l32 = LF.spherical_z_loss(x32, t, reduction="none", a=2.0, b=1.5)
    np.testing.assert_allclose(l32.detach().double().numpy(), l64.detach().numpy(), rtol=1e-3)
    np.testing.assert_allclose(l64.detach().numpy(), _z_loss_reference(x, t, 2.0, 1.5),
                               rtol=1e-9)  # scale invariance, exact in float64
    l64.sum().backward()
    l32.sum().backward()
    # The gradient scales like 1/scale; compare it in unit-scale terms.
    torch.testing.assert_close(x32.grad.double() * scale, x64.grad * scale, rtol=1e-3,
                               atol=1e-5)
    assert x64.grad.abs().max().item() * scale > 0.01  # not the zero gradient of an overflow


def test_z_loss_reviewer_repro_huge_logits():
    z = torch.tensor([[1e30, -1e30, 0.0]])
    # same standardised logits as [1, -1, 0]: ẑ_0 = 1/sqrt(2/3)
    expected = math.log1p(math.exp(1.0 - 1.0 / math.sqrt(2.0 / 3.0)))
    assert LF.spherical_z_loss(z, Y).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("value", [0.0, -3.0, 1e30, 1e-30])
def test_z_loss_equal_logits_has_bounded_documented_gradient(value):
    # A zero-initialised head: ẑ_y := 0 and the gradient is that at σ = 1,
    # -sigmoid(a·b)·(e_y - 1/C) per row (it was -5.5e5 with the old variance ε).
    a, b = 2.0, 0.5
    x = torch.full((3, 4), value, requires_grad=True)
    t = torch.tensor([0, 1, 3])
    out = LF.spherical_z_loss(x, t, a=a, b=b, reduction="sum")
    out.backward()
    assert out.item() == pytest.approx(3 * math.log1p(math.exp(a * b)) / a, rel=1e-6)
    one_hot = torch.nn.functional.one_hot(t, 4).float()
    expected = -torch.sigmoid(torch.tensor(a * b)) * (one_hot - 0.25)
    torch.testing.assert_close(x.grad, expected)


HYPERPARAMETERS = [
    ("cross_entropy", "temperature", 2.0),
    ("cross_entropy", "z_loss", 0.1),
    ("cross_entropy", "label_smoothing", 0.2),
    ("cross_entropy", "softcap", 3.0),
    ("comp_sum", "tau", 0.5),
    ("spherical_z_loss", "a", 2.0),
    ("generalized_cross_entropy", "q", 0.5),
    ("focal_loss", "gamma", 1.5),
    ("ldr_kl", "lam", 2.0),
]


@pytest.mark.parametrize("fn,name,value", HYPERPARAMETERS)
def test_tensor_hyperparameter_is_a_plain_number(fn, name, value):
    # Hyperparameters are used as Python floats everywhere: a 1-element tensor either is
    # rejected (when it requires grad) or gives exactly the float's loss, with the logits'
    # dtype and no graph to it (a float64 (1,)-tensor used as-is would promote the loss).
    x, t = _batch(n=6)
    x = x.float()
    function = getattr(LF, fn)
    expected = function(x, t, **{name: value})
    h = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    try:
        got = function(x, t, **{name: h})
        assert not got.requires_grad, f"{fn}: the loss carries a gradient to {name}"
    except (TypeError, ValueError) as error:
        assert name in str(error)
    got = function(x, t, **{name: torch.tensor([value], dtype=torch.float64)})
    assert got.dtype == expected.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
