"""DCO, reward-shaped NTP and CA calibration: worked values of spec A§8, A§9, A§11, gradient
identities (DCO = F · CE gradient, NTP = stop-gradient estimator), exact CE reductions."""

import math

import pytest
import torch
import torch.nn.functional as TF

import losslab.functional as LF

E = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize(
    "y,n,loss,factor",
    [
        (0, 1, 0.407606, 1.0),
        (0, 4, 0.01263778, 0.101094),
        (0, 16, 2.487e-8, 7.908e-7),
        (2, 1, 2.407606, 1.0),
        (2, 4, 1.157272, 0.863231),
        (2, 16, 0.2497681, 0.449143),
    ],
)
def test_dco_worked_values(y, n, loss, factor):
    t = torch.tensor([y])
    assert LF.dco(E, t, n=n).item() == pytest.approx(loss, rel=1e-4)
    assert LF.dco_gradient_factor(E, t, n=n).item() == pytest.approx(factor, rel=1e-3)


def test_dco_n1_is_exactly_cross_entropy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=g) * 3
    t = torch.randint(0, 5, (7,), generator=g)
    torch.testing.assert_close(
        LF.dco(x, t, n=1, reduction="none"),
        TF.cross_entropy(x, t, reduction="none"),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("n", [2.0, 4.0, 16.0, 300.0])
def test_dco_gradient_is_factor_times_ce_gradient(n):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(9, 4, generator=g, dtype=torch.float64) * 3).requires_grad_()
    t = torch.randint(0, 4, (9,), generator=g)
    LF.dco(x, t, n=n, reduction="sum").backward()
    f = LF.dco_gradient_factor(x.detach(), t, n=n)
    expected = f.unsqueeze(1) * (torch.softmax(x.detach(), 1) - TF.one_hot(t, 4))
    torch.testing.assert_close(x.grad, expected)


def test_dco_factor_limits():
    t = torch.tensor([0])
    confident = torch.tensor([[30.0, 0.0]], dtype=torch.float64)
    hopeless = torch.tensor([[-30.0, 0.0]], dtype=torch.float64)
    assert LF.dco_gradient_factor(confident, t, n=8).item() < 1e-80
    assert LF.dco_gradient_factor(hopeless, t, n=8).item() == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("scale", [5.0, 25.0, 60.0, 200.0])
def test_dco_float32_agrees_with_float64_across_regimes(scale):
    # p_y from near 1 to ~e^-200: the complement, the log1p and the series branches.
    x = torch.tensor([[scale, 0.0, -1.0], [0.0, scale, 1.0]], dtype=torch.float64)
    t = torch.tensor([1, 1])
    exact = LF.dco(x, t, n=4.0, reduction="none")
    got = LF.dco(x.float(), t, n=4.0, reduction="none").double()
    torch.testing.assert_close(got, exact, rtol=1e-5, atol=1e-30)
    p = torch.softmax(x, 1)[0, 1]
    direct = -torch.log(-torch.expm1(4 * torch.log1p(-p)))  # float64 direct formula
    if torch.isfinite(direct):
        assert exact[0].item() == pytest.approx(direct.item(), rel=1e-9)


def _dco_two_class_reference(d, n):
    """-log(1 - (1 - p)^N) for logits (0, d), y = 1, in careful float64: log(1 - p) is
    -softplus(d) = -log1p(exp(d)) exactly, then Maechler's log1mexp."""
    a = -n * math.log1p(math.exp(d))
    return -(math.log(-math.expm1(a)) if a > -math.log(2) else math.log1p(-math.exp(a)))


@pytest.mark.parametrize("n", [1e12, 1e13, 1e14, 1e15])
@pytest.mark.parametrize("d", [-30.5, -31.0, -33.0, -35.0])
def test_dco_large_n(n, d):
    # N p is O(1) here although p < 1e-13: the series branch must not be used.
    x = torch.tensor([[0.0, d]], dtype=torch.float64, requires_grad=True)
    loss = LF.dco(x, torch.tensor([1]), n=n)
    assert loss.item() == pytest.approx(_dco_two_class_reference(d, n), rel=1e-12)
    loss.backward()
    p = torch.sigmoid(torch.tensor(d, dtype=torch.float64)).item()
    factor = LF.dco_gradient_factor(x.detach(), torch.tensor([1]), n=n).item()
    sp = math.log1p(math.exp(d))  # -log(1 - p)
    ref_factor = n * p * math.exp(-(n - 1) * sp) / -math.expm1(-n * sp)
    assert factor == pytest.approx(ref_factor, rel=1e-10)
    assert x.grad[0, 1].item() == pytest.approx(factor * (p - 1), rel=1e-10)


def test_ntp_reward_neutral_setting_is_exactly_ce():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 6, generator=g, dtype=torch.float64)
    t = torch.randint(0, 6, (8,), generator=g)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = LF.ntp_reward(x1, t, beta=0.0, reduction="none")
    ref = TF.cross_entropy(x2, t, reduction="none")
    assert torch.equal(ours, ref) or torch.allclose(ours, ref, rtol=0, atol=1e-15)
    up = torch.rand(8, dtype=torch.float64, generator=g)
    (ours * up).sum().backward()
    (ref * up).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-15)


def _stop_gradient_surrogate(x, t, beta, k, lam_top, lam_tail):
    """-sum_a sg[pi(a) r(a)] log pi(a) written literally, for the gradient comparison."""
    logp = torch.log_softmax(x, 1)
    pi = logp.detach().exp()
    r = torch.full_like(pi, lam_tail)
    top = x.detach().topk(k, 1).indices
    r.scatter_(1, top, lam_top)
    pi_y = pi.gather(1, t[:, None])
    r.scatter_(1, t[:, None], (pi_y**-beta) / pi_y)
    return -(pi * r * logp).sum()


@pytest.mark.parametrize("beta,k,top,tail", [(-0.25, 0, 0.0, 0.0), (0.5, 2, 0.1, -0.2)])
def test_ntp_reward_gradient_equals_the_stop_gradient_estimator(beta, k, top, tail):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = torch.randint(0, 5, (6,), generator=g)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    LF.ntp_reward(
        x1, t, beta=beta, top_k=k, top_reward=top, tail_reward=tail, reduction="sum"
    ).backward()
    _stop_gradient_surrogate(x2, t, beta, k, top, tail).backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_ntp_reward_beta_value_and_floor():
    t = torch.tensor([0])
    py = torch.softmax(E, 1)[0, 0].item()
    assert LF.ntp_reward(E, t).item() == pytest.approx((1 - py**0.25) / 0.25, rel=1e-12)
    # beta > 0: weight pi^-beta is unbounded; below the floor the target term continues
    # linearly in log p with slope floor^-beta.
    x = torch.tensor([[0.0, 40.0]], dtype=torch.float64, requires_grad=True)
    LF.ntp_reward(x, t, beta=0.25, prob_floor=1e-6).backward()
    slope = (1e-6) ** -0.25
    expected = slope * (torch.softmax(x.detach(), 1) - torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(x.grad, expected.double())


@pytest.mark.parametrize("beta", [-0.5, -0.25])
def test_ntp_reward_floor_unused_when_weight_is_bounded(beta):
    # beta < 0: weight pi^-beta <= 1 needs no floor; the gradient on z_y must be the
    # estimator's pi^-beta (pi - 1) even far below prob_floor (pi_y ~ e^-25).
    x = torch.tensor([[0.0, 25.0]], dtype=torch.float64, requires_grad=True)
    LF.ntp_reward(x, torch.tensor([0]), beta=beta, prob_floor=1e-6).backward()
    p = torch.softmax(x.detach(), 1)[0, 0]
    assert x.grad[0, 0].item() == pytest.approx((p**-beta * (p - 1)).item(), rel=1e-10)


def _ntp_population_optimum_entropy(beta):
    f = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = sum(f[c] * LF.ntp_reward(z, torch.tensor([c]), beta=beta) for c in range(3))
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    p = torch.softmax(z.detach(), 1)[0]
    # Closed form of the optimum: p ∝ f^(1/(1+beta)).
    ref = f ** (1 / (1 + beta))
    torch.testing.assert_close(p, ref / ref.sum(), rtol=1e-5, atol=1e-6)
    return -(p * p.log()).sum().item()


def test_ntp_reward_negative_beta_is_precision_lower_entropy():
    h0 = _ntp_population_optimum_entropy(0.0)
    assert _ntp_population_optimum_entropy(-0.25) < h0 - 0.05  # A§9: beta < 0 "precision"
    assert _ntp_population_optimum_entropy(0.25) > h0 + 0.05  # beta > 0 "diversity"


@pytest.mark.parametrize(
    "temperature,correct,expected",
    [
        (1.0, True, 0.112064),
        (1.0, False, 0.442546),
        (2.0, True, 0.243562),
        (2.0, False, 0.256522),
    ],
)
def test_ca_calib_worked_values(temperature, correct, expected):
    t = torch.tensor([0 if correct else 1])
    got = LF.ca_calib(E / temperature, t).item()  # single sample: balancing falls back to mean
    assert got == pytest.approx(expected, abs=1e-6)


def test_ca_calib_balancing_by_hand():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (10,), generator=g)
    p = torch.softmax(x, 1)
    conf, pred = p.max(1)
    c = (pred == t).double()
    acc = c.mean()
    assert 0 < acc < 1
    b = torch.where(c > 0, 1 - acc, acc)
    expected = (b * (conf - c) ** 2).sum() / b.sum()
    torch.testing.assert_close(LF.ca_calib(x, t), expected)
    torch.testing.assert_close(LF.ca_calib(x, t, balancing="none"), ((conf - c) ** 2).mean())


def test_ca_calib_wrong_sample_does_not_pull_towards_the_label():
    # Only the max-probability class carries the signal: lowering confidence on a wrong sample
    # pushes its argmax logit down, and the true label's logit moves only through softmax.
    x = torch.tensor([[3.0, 1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    LF.ca_calib(x, torch.tensor([2])).backward()
    assert x.grad[0, 0] > 0  # gradient descent lowers the top logit
    assert x.grad[0, 1] < 0 and x.grad[0, 2] < 0
    assert math.isclose(x.grad[0, 1].item() / x.grad[0, 2].item(), math.exp(1.0), rel_tol=1e-9)
