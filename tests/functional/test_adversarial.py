"""Smooth adversarial comp-sum: on a linear model the worst-case change of logit differences
has a closed form (spec A§1.4), so PGD's result can be checked exactly."""

import math

import pytest
import torch
from torch import nn

import losslab.functional as LF


def linear(weight):
    m = nn.Linear(weight.shape[1], weight.shape[0], bias=False).double()
    with torch.no_grad():
        m.weight.copy_(weight)
    return m


W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
X = torch.tensor([[0.5, 0.2]], dtype=torch.float64)
Y = torch.tensor([0])


def g():
    return torch.Generator().manual_seed(0)


def test_nu_zero_is_comp_sum_on_clean_logits():
    m = linear(W)
    for tau in [0.0, 1.0, 1.7]:
        expected = LF.comp_sum(m(X), Y, tau=tau)
        torch.testing.assert_close(
            LF.smooth_adversarial_comp_sum(m, X, Y, nu=0.0, tau=tau), expected
        )


def test_linf_worst_case_matches_the_closed_form():
    # Delta change = A delta with A = W - W[y]: rows (0,0), (-1,1), (-1,0) for y = 0. Over the
    # l_inf ball the maximum of |A delta|_2 is at a corner: delta = (-eps, eps) gives sqrt(5) eps.
    eps = 0.03
    m = linear(W)
    loss = LF.smooth_adversarial_comp_sum(
        m, X, Y, epsilon=eps, step_size=0.01, steps=10, nu=2.0, generator=g()
    )
    ce = LF.cross_entropy(m(X), Y)
    assert (loss - ce).item() == pytest.approx(2.0 * math.sqrt(5) * eps, rel=1e-9)


def test_l2_worst_case_is_the_top_singular_value():
    eps = 0.5
    m = linear(W)
    a = W - W[0]
    sigma = torch.linalg.matrix_norm(a, ord=2).item()  # (1 + sqrt 5)/2
    loss = LF.smooth_adversarial_comp_sum(
        m, X, Y, norm="l2", epsilon=eps, step_size=0.2, steps=50, clip=None, generator=g()
    )
    gap = (loss - LF.cross_entropy(m(X), Y)).item()
    assert gap == pytest.approx(sigma * eps, rel=1e-4)
    assert sigma == pytest.approx((1 + math.sqrt(5)) / 2)


def test_kl_alternative_is_the_trades_term():
    eps = 0.03
    m = linear(W)
    loss = LF.smooth_adversarial_comp_sum(
        m, X, Y, smooth_term="kl", epsilon=eps, step_size=0.01, steps=10, generator=g()
    )
    gap = (loss - LF.cross_entropy(m(X), Y)).item()
    candidates = [
        torch.tensor([[sx * eps, sy * eps]], dtype=torch.float64)
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    kl = [
        torch.nn.functional.kl_div(
            torch.log_softmax(m(X + d), 1),
            torch.log_softmax(m(X), 1),
            log_target=True,
            reduction="sum",
        ).item()
        for d in candidates
    ]
    # KL is convex in delta, so sign-PGD ends at a corner of the box (zero gradient at x' = x,
    # so which corner depends on the random start).
    assert any(gap == pytest.approx(v, rel=1e-6) for v in kl)


def test_rho_scales_the_comp_sum_logits():
    m = linear(W * 3)
    got = LF.smooth_adversarial_comp_sum(m, X, Y, nu=0.0, rho=2.0)
    torch.testing.assert_close(got, LF.cross_entropy(m(X) / 2.0, Y))


def test_perturbation_stays_in_the_ball_and_clip():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    x = torch.rand(5, 3, dtype=torch.float64)
    t = torch.randint(0, 4, (5,))
    from losslab.functional.logits.adversarial import pgd_perturbation

    for norm, eps in [("linf", 0.05), ("l2", 0.2)]:
        x_adv = pgd_perturbation(
            m,
            x,
            t,
            epsilon=eps,
            step_size=eps / 3,
            steps=7,
            norm=norm,
            smooth_term="logit-diff-l2",
            clip=(0.0, 1.0),
            generator=g(),
        )
        d = x_adv - x
        size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
        assert torch.all(size <= eps + 1e-12)
        assert torch.all((x_adv >= 0) & (x_adv <= 1))


def test_batchnorm_statistics_untouched_by_the_attack():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)).double()
    x = torch.randn(8, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (8,))
    before = m[1].num_batches_tracked.item()
    LF.smooth_adversarial_comp_sum(m, x, t, steps=5, clip=None, generator=g())
    # Two training-mode forwards (clean and adversarial), none during the 5 attack steps.
    assert m[1].num_batches_tracked.item() == before + 2 and m.training


def test_submodule_modes_restored_after_the_attack():
    # A frozen batch norm (eval) inside a training model must stay frozen: its running
    # statistics must not move and its flag must come back False.
    torch.manual_seed(2)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 3))
    m = m.double().train()
    m[1].eval()
    x = torch.randn(8, 3, dtype=torch.float64)
    t = torch.randint(0, 3, (8,))
    mean, tracked = m[1].running_mean.clone(), m[1].num_batches_tracked.item()
    LF.smooth_adversarial_comp_sum(m, x, t, steps=2, clip=None, generator=g())
    assert [mod.training for mod in m] == [True, False, True, True] and m.training
    assert m[1].num_batches_tracked.item() == tracked
    assert torch.equal(m[1].running_mean, mean)
