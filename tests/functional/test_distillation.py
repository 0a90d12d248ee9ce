"""KD, PLD and multi-aspect KD: worked values of spec B§7 and B§15, independent references
(torch's kl_div, a loop Plackett–Luce), reductions to CE, modules with extra inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from scipy.special import logsumexp

import losslab
import losslab.functional as LF

S = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
T = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([1])


def _rand(n=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, c, generator=g, dtype=torch.float64) * 2,
        torch.randn(n, c, generator=g, dtype=torch.float64) * 2,
        torch.randint(0, c, (n,), generator=g),
    )


@pytest.mark.parametrize("temperature", [1.0, 4.0, 0.5])
def test_kd_equals_torch_kl_div_times_t_squared(temperature):
    s, t, y = _rand()
    ref = (
        TF.kl_div(
            TF.log_softmax(s / temperature, 1),
            TF.log_softmax(t / temperature, 1),
            log_target=True,
            reduction="batchmean",
        )
        * temperature**2
    )
    torch.testing.assert_close(LF.kd(s, y, teacher_logits=t, temperature=temperature), ref)


def test_kd_ce_weight_adds_hard_label_ce_and_teacher_gets_no_gradient():
    s, t, y = _rand(seed=1)
    t = t.requires_grad_()
    loss = LF.kd(s, y, teacher_logits=t, ce_weight=0.5)
    ref = LF.kd(s, y, teacher_logits=t) + 0.5 * TF.cross_entropy(s, y)
    torch.testing.assert_close(loss, ref)
    assert not loss.requires_grad  # student s has no grad here; teacher is detached


def test_kd_gradient_scale_is_temperature_independent_for_large_t():
    # d(T² KL)/dz = T (softmax(z/T) - softmax(t/T)) -> centred(z - t) / C as T grows: the T²
    # factor keeps the gradient's scale independent of T (Hinton et al.).
    s, t, y = _rand(seed=2)
    x = s.clone().requires_grad_()
    LF.kd(x, y, teacher_logits=t, temperature=1000.0, reduction="sum").backward()
    d = s - t
    expected = (d - d.mean(1, keepdim=True)) / s.shape[1]
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=5e-3)


def test_pld_worked_values():
    assert LF.pld(S, Y, teacher_logits=T).item() == pytest.approx(0.4290197, abs=1e-7)
    got = LF.pld(S, Y, teacher_logits=T, teacher_temperature=4.0).item()
    assert got == pytest.approx(0.3503613, abs=1e-7)


def _pld_loop(s, t, y, tau):
    order = [y] + [c for c in np.argsort(-t, kind="stable") if c != y]
    q = np.exp(t / tau - np.max(t / tau))
    q = q / q.sum()
    total = 0.0
    for k in range(len(s)):
        rest = s[order[k:]]
        total += q[order[k]] * (-s[order[k]] + logsumexp(rest))
    return total


def test_pld_equals_loop_reference():
    s, t, y = _rand(n=5, c=6, seed=3)
    got = LF.pld(s, y, teacher_logits=t, teacher_temperature=2.0, reduction="none")
    ref = [_pld_loop(s[i].numpy(), t[i].numpy(), int(y[i]), 2.0) for i in range(5)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


def test_pld_equals_loop_reference_float32_with_ties():
    # Rounded teacher logits tie often; ties go to the lower class index in both.
    s, t, y = _rand(n=8, c=6, seed=5)
    t = (t * 2).round()
    assert any(len(set(row.tolist())) < 6 for row in t)
    got = LF.pld(s.float(), y, teacher_logits=t.float(), teacher_temperature=2.0, reduction="none")
    assert got.dtype == torch.float32
    ref = [_pld_loop(s[i].numpy(), t[i].numpy(), int(y[i]), 2.0) for i in range(8)]
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=1e-5)


def test_kd_masked_teacher_vocabulary():
    # A -inf teacher logit (masked class) has q = 0 and contributes nothing: torch's kl_div
    # with a probability target is the reference (5.227113 at T = 4).
    ninf = float("-inf")
    s = torch.tensor([[0.5, 1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[ninf, 1.0, 2.0]], dtype=torch.float64)
    got = LF.kd(s, torch.tensor([1]), teacher_logits=t)
    ref = TF.kl_div(TF.log_softmax(s / 4, 1), TF.softmax(t / 4, 1), reduction="batchmean") * 16
    assert got.item() == pytest.approx(ref.item(), rel=1e-12)
    assert got.item() == pytest.approx(5.227113, abs=1e-6)
    got.backward()
    expected = 4 * (TF.softmax(s.detach() / 4, 1) - TF.softmax(t / 4, 1))
    torch.testing.assert_close(s.grad, expected)
    # Student masked on the same class: KL of identical distributions is 0, not NaN.
    both = LF.kd(t.clone().requires_grad_(), torch.tensor([1]), teacher_logits=t, ce_weight=0.0)
    assert both.item() == 0.0


def test_pld_special_case_one_hot_weights_is_ce():
    # A teacher that puts all mass on the true label makes alpha = e_1, i.e. plain CE.
    s, _, y = _rand(seed=4)
    t = TF.one_hot(y, 4).double() * 1e4
    torch.testing.assert_close(
        LF.pld(s, y, teacher_logits=t, reduction="none"), TF.cross_entropy(s, y, reduction="none")
    )


def test_multi_aspect_kd_worked_value():
    z = torch.tensor([[2.0, 0.5, -1.0]], dtype=torch.float64)
    r = torch.tensor([[1.0, -0.5]], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([[0.8, 0.3]], dtype=torch.float64)
    loss = LF.multi_aspect_kd(z, torch.tensor([0]), aspect_logits=r, aspect_targets=a)
    assert loss.item() == pytest.approx(2.5159886, abs=1e-7)
    ce_only = LF.multi_aspect_kd(z, torch.tensor([0]), aspect_logits=r, aspect_targets=a, alpha=0.0)
    assert ce_only.item() == pytest.approx(0.2413113, abs=1e-7)
    loss.backward()  # the aspect head is a student output: it receives gradients
    expected = 4.0 / 2 * (torch.sigmoid(r.detach()) - a)
    torch.testing.assert_close(r.grad, expected)
    # Yes/no logits (3, 1) give the target a = 0.8807971.
    assert torch.softmax(torch.tensor([3.0, 1.0]), 0)[0].item() == pytest.approx(
        0.8807971, abs=1e-7
    )


def test_spatial_layout_of_extras():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    t = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (2, 4), generator=g)
    flat = lambda v: v.movedim(1, -1).reshape(-1, v.shape[1])  # noqa: E731
    for fn in (LF.kd, LF.pld):
        torch.testing.assert_close(
            fn(x, y, teacher_logits=t, reduction="none").reshape(-1),
            fn(flat(x), y.reshape(-1), teacher_logits=flat(t), reduction="none"),
        )


def test_modules_take_extras_at_call_time():
    s, t, y = _rand(seed=6)
    module = losslab.get_loss("kd", temperature=2.0)
    torch.testing.assert_close(
        module(s, y, teacher_logits=t), LF.kd(s, y, teacher_logits=t, temperature=2.0)
    )
    with pytest.raises(TypeError, match="teacher_logits"):
        module(s, y)
    assert "teacher_logits" not in losslab.list_losses(family="distillation")[0].defaults


def test_extra_input_shape_errors():
    s, t, y = _rand(seed=7)
    with pytest.raises(ValueError, match=r"kd: teacher_logits must have shape \(6, 4\)"):
        LF.kd(s, y, teacher_logits=t[:, :3])
    with pytest.raises(ValueError, match="multi_aspect_kd: aspect_targets must be probabilities"):
        LF.multi_aspect_kd(s, y, aspect_logits=t, aspect_targets=t * 5)
    with pytest.raises(ValueError, match="multi_aspect_kd: aspect_targets .* got NaN"):
        LF.multi_aspect_kd(s, y, aspect_logits=t, aspect_targets=torch.full_like(t, float("nan")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pld_suffix_sums_match_logcumsumexp_across_scales(dtype):
    # The fast reversed cumsum must agree with logcumsumexp, including rows whose tail sums
    # underflow (gaps beyond the exponent range), which take the logcumsumexp fallback.
    g = torch.Generator().manual_seed(8)
    s = torch.randn(6, 7, generator=g, dtype=torch.float64)
    s[0] *= 1e4
    s[1, 3:] -= 2e3
    t = torch.randn(6, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (6,), generator=g)
    got = LF.pld(s.to(dtype), y, teacher_logits=t.to(dtype), reduction="none")
    ref = [_pld_loop(s[i].numpy(), t[i].numpy(), int(y[i]), 1.0) for i in range(6)]
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=1e-5)
