"""cross_entropy against PyTorch's F.cross_entropy and hand-worked values (spec A§0, A§4.2)."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as TF

import losslab.functional as LF

E_LOGITS = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
E_TARGET = torch.tensor([0])


def test_running_example_value():
    assert LF.cross_entropy(E_LOGITS, E_TARGET).item() == pytest.approx(0.407606, abs=1e-6)


def test_z_loss_value_and_gradient_match_t5x():
    z = E_LOGITS.clone().requires_grad_()
    loss = LF.cross_entropy(z, E_TARGET, z_loss=1e-4)
    assert loss.item() == pytest.approx(0.408186, abs=1e-6)
    loss.backward()
    expected = torch.tensor([[-0.334439, 0.244846, 0.090074]], dtype=torch.float64)
    torch.testing.assert_close(z.grad, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "reduction,smoothing,weighted,spatial,ignore",
    list(itertools.product(["mean", "sum", "none"], [0.0, 0.2], [False, True], [False, True], [False, True])),
)
def test_equals_torch_cross_entropy(reduction, smoothing, weighted, spatial, ignore):
    g = torch.Generator().manual_seed(0)
    shape = (6, 5, 3, 2) if spatial else (11, 5)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    t = torch.randint(0, 5, (shape[0], *shape[2:]), generator=g)
    if ignore:
        t[0] = -100
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    kwargs = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = LF.cross_entropy(x1, t, **kwargs), TF.cross_entropy(x2, t, **kwargs)
    torch.testing.assert_close(ours, ref)
    up = torch.rand_like(ref)
    (ours * up).sum().backward()
    (ref * up).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("smoothing,weighted", [(0.0, False), (0.3, False), (0.0, True), (0.3, True)])
def test_probability_targets_equal_torch(smoothing, weighted):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 4, dtype=torch.float64, generator=g)
    t = torch.softmax(torch.randn(7, 4, dtype=torch.float64, generator=g), 1)
    w = torch.rand(4, dtype=torch.float64, generator=g) if weighted else None
    for reduction in ["mean", "sum", "none"]:
        ours = LF.cross_entropy(x, t, weight=w, label_smoothing=smoothing, reduction=reduction)
        ref = TF.cross_entropy(x, t, weight=w, label_smoothing=smoothing, reduction=reduction)
        torch.testing.assert_close(ours, ref)


def test_one_hot_targets_equal_index_targets():
    x = torch.randn(9, 6, dtype=torch.float64)
    t = torch.randint(0, 6, (9,))
    onehot = TF.one_hot(t, 6).double()
    torch.testing.assert_close(LF.cross_entropy(x, onehot), LF.cross_entropy(x, t))


def test_temperature_and_softcap_transform_the_logits():
    x = torch.randn(8, 5, dtype=torch.float64) * 20
    t = torch.randint(0, 5, (8,))
    torch.testing.assert_close(LF.cross_entropy(x, t, temperature=2.5), TF.cross_entropy(x / 2.5, t))
    capped = 15.0 * torch.tanh(x / 15.0)
    torch.testing.assert_close(LF.cross_entropy(x, t, softcap=15.0), TF.cross_entropy(capped, t))


def test_all_ignored_mean_is_zero_with_zero_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    t = torch.full((4,), -100)
    loss = LF.cross_entropy(x, t)
    assert loss.item() == 0.0 and not math.isnan(loss.item())
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_half_precision_is_computed_in_float32():
    x = torch.randn(5, 4).to(torch.bfloat16)
    t = torch.randint(0, 4, (5,))
    out = LF.cross_entropy(x, t)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, TF.cross_entropy(x.float(), t))
