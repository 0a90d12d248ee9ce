"""Dice, self-adjusting Dice and Tversky: worked values of spec A§7 (running example E), a
slow loop reference for the batch-level forms, binary forms, saturation."""

import numpy as np
import pytest
import torch

import losslab
import losslab.functional as LF

E = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([0])


@pytest.mark.parametrize(
    "alpha,smooth,expected",
    [(0.0, 1.0, 0.110428), (0.01, 1.0, 0.112309), (1.0, 1.0, 0.334494), (0.0, 1e-4, 2.063825)],
)
def test_dice_code_semantics_on_E(alpha, smooth, expected):
    assert LF.dice(E, Y, alpha=alpha, smooth=smooth).item() == pytest.approx(expected, abs=1e-6)


def test_dice_per_class_terms_on_E():
    # Spec: per-class terms (0.045880, 0.056508, 0.008040); the target term alone is classes="target".
    assert LF.dice(E, Y, classes="target").item() == pytest.approx(0.045880, abs=1e-6)
    for c, term in [(1, 0.056508), (2, 0.008040)]:
        p = torch.softmax(E, 1)[0, c]
        assert (p**2 / (p**2 + 1)).item() == pytest.approx(term, abs=1e-6)


def test_self_adjusting_defaults_are_the_official_scripts():
    assert LF.self_adjusting_dice(E, Y).item() == pytest.approx(0.112309, abs=1e-6)
    assert losslab.get_loss("self-adjusting-dice").hyperparameters["alpha"] == 0.01


@pytest.mark.parametrize("alpha,expected", [(0.0, 0.125602), (1.0, 0.349713)])
def test_paper_positive_class_linear_denominator(alpha, expected):
    got = LF.dice(E, Y, alpha=alpha, classes="target", square_denominator=False)
    assert got.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("a,b,expected", [(0.5, 0.5, 0.091333), (0.3, 0.7, 0.123360)])
def test_tversky_instance_on_E(a, b, expected):
    assert LF.tversky(E, Y, alpha=a, beta=b, classes="target").item() == pytest.approx(
        expected, abs=1e-6
    )


def test_tversky_half_half_equals_linear_dice():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 4, (9,), generator=g)
    # With a = b = 1/2, TI = (pt + g)/((p + t)/2 + g): Dice with linear denominator and 2g.
    torch.testing.assert_close(
        LF.tversky(x, t, smooth=0.5), LF.dice(x, t, smooth=1.0, square_denominator=False)
    )


def _np_softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_per_sample_equals_dense_one_hot_reference():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64) * 2
    t = torch.randint(0, 5, (8,), generator=g)
    p = _np_softmax(x.numpy())
    oh = np.eye(5)[t.numpy()]
    for alpha in [0.0, 0.3]:
        pt = (1 - p) ** alpha * p
        ref = (1 - (2 * pt * oh + 1.0) / (pt**2 + oh**2 + 1.0)).sum(1)
        got = LF.dice(x, t, alpha=alpha, reduction="none").numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    ref_t = (1 - (p * oh + 1.0) / (p * oh + 0.3 * p * (1 - oh) + 0.7 * (1 - p) * oh + 1.0)).sum(1)
    np.testing.assert_allclose(
        LF.tversky(x, t, alpha=0.3, beta=0.7, reduction="none").numpy(), ref_t, rtol=1e-10
    )


def _batch_reference(x, t, alpha, smooth, square, weight=None):
    p = _np_softmax(x)
    pt = (1 - p) ** alpha * p
    oh = np.eye(x.shape[1])[t]
    d = []
    for c in range(x.shape[1]):  # loop reference, one class at a time
        inter = sum(pt[i, c] * oh[i, c] for i in range(len(t)))
        den = sum((pt[i, c] ** 2 if square else pt[i, c]) + oh[i, c] for i in range(len(t)))
        d.append(1 - (2 * inter + smooth) / (den + smooth))
    d = np.array(d)
    w = np.ones(x.shape[1]) if weight is None else weight
    return (w * d).sum() / w.sum()


@pytest.mark.parametrize("alpha,square", [(0.0, True), (0.2, True), (0.0, False)])
def test_dice_batch_equals_loop_reference(alpha, square):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 4, (10,), generator=g)
    w = torch.rand(4, generator=g, dtype=torch.float64) + 0.1
    for weight in [None, w]:
        got = LF.dice_batch(x, t, alpha=alpha, square_denominator=square, weight=weight)
        ref = _batch_reference(
            x.numpy(), t.numpy(), alpha, 1.0, square, None if weight is None else w.numpy()
        )
        assert got.item() == pytest.approx(ref, rel=1e-10)


def test_batch_level_reductions_and_docstring_values():
    z = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    mean = LF.dice_batch(z, y)
    assert mean.item() == pytest.approx(0.026773, abs=1e-6)
    torch.testing.assert_close(LF.dice_batch(z, y, reduction="sum"), 2 * mean)
    torch.testing.assert_close(LF.dice_batch(z, y, reduction="none"), mean.expand(2))
    tv = LF.tversky_batch(z, y, alpha=0.3, beta=0.7)
    assert tv.item() == pytest.approx(0.078484, abs=1e-6)


def test_batch_level_is_not_a_mean_of_rows():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (6,), generator=g)
    halves = (LF.dice_batch(x[:3], t[:3]) + LF.dice_batch(x[3:], t[3:])) / 2
    assert abs(LF.dice_batch(x, t).item() - halves.item()) > 1e-4


def test_binary_forms_match_the_instance_formulas():
    p = torch.tensor([0.665241, 0.2, 0.9], dtype=torch.float64)
    x = torch.logit(p)
    t = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    ref = 1 - (2 * p * t + 1) / (p**2 + t**2 + 1)
    torch.testing.assert_close(LF.binary_dice(x, t, reduction="none"), ref)
    assert LF.binary_dice(x[:1], t[:1]).item() == pytest.approx(0.045880, abs=1e-6)
    assert LF.binary_tversky(x[:1], t[:1], alpha=0.3, beta=0.7).item() == pytest.approx(
        0.123360, abs=1e-6
    )
    pa = (1 - p) ** 0.5 * p
    ref_a = 1 - (2 * pa * t + 1) / (pa**2 + t**2 + 1)
    torch.testing.assert_close(LF.binary_dice(x, t, alpha=0.5, reduction="none"), ref_a)


def test_binary_two_logit_softmax_equals_sigmoid():
    # softmax([0, x])_1 = sigmoid(x): the multi-class target-class term equals the binary one.
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    z = torch.stack([torch.zeros_like(x), x], 1)
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(
        LF.dice(z, torch.ones(3, dtype=torch.long), classes="target", reduction="none"),
        LF.binary_dice(x, ones, reduction="none"),
    )


def test_binary_ignore_weights_and_gradcheck():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(3, 4, generator=g) > 0.5).double()
    t_ign = t.clone()
    t_ign[0, 1] = -100
    keep = t_ign != -100
    full = LF.binary_tversky(x, t_ign, alpha=0.3, beta=0.7)
    torch.testing.assert_close(full, LF.binary_tversky(x[keep], t[keep], alpha=0.3, beta=0.7))
    none = LF.binary_dice(x, t_ign, reduction="none")
    assert none.shape == x.shape and none[0, 1] == 0
    w = torch.rand(4, generator=g, dtype=torch.float64)
    ref = (LF.binary_dice(x, t, reduction="none") * w).sum() / (w.sum() * 3)
    torch.testing.assert_close(LF.binary_dice(x, t, weight=w), ref)
    for fn in (LF.binary_dice, LF.binary_tversky):
        assert torch.autograd.gradcheck(lambda inp, f=fn: f(inp, t, reduction="none"), (x,))
    with pytest.raises(ValueError, match="binary_dice: target must have the input's shape"):
        LF.binary_dice(x, t[0])
    with pytest.raises(ValueError, match=r"binary_dice: target values must lie in \[0, 1\]"):
        LF.binary_dice(x, t * 2)
    t_nan = t.clone()
    t_nan.view(-1)[0] = float("nan")  # NaN fails both t < 0 and t > 1: must still be rejected
    for fn in (LF.binary_dice, LF.binary_tversky):
        with pytest.raises(ValueError, match=r"target values must lie in \[0, 1\].*got NaN"):
            fn(x, t_nan)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_self_adjusting_is_finite_and_differentiable_when_saturated(dtype):
    x = torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=dtype, requires_grad=True)
    t = torch.tensor([0, 2])
    loss = LF.self_adjusting_dice(x, t, alpha=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad.float()).all()
    xb = torch.tensor([30.0, -30.0], dtype=dtype, requires_grad=True)
    LF.binary_dice(xb, torch.tensor([1.0, 0.0]), alpha=0.5).backward()
    assert torch.isfinite(xb.grad.float()).all()


def test_single_class_self_adjusting_gives_finite_zero_probability():
    x = torch.randn(3, 1, dtype=torch.float64, requires_grad=True)
    loss = LF.self_adjusting_dice(x, torch.zeros(3, dtype=torch.long))
    loss.backward()
    assert loss.item() == pytest.approx(1 - 1 / 2)  # p~ = 0, t = 1, gamma = 1
    assert torch.isfinite(x.grad).all()
