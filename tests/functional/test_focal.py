"""focal_loss: hand-worked value, γ=0 ⇔ CE, per-class α, gradients and extremes."""

import math

import numpy as np
import pytest
import torch

import losslab
import losslab.functional as LF

E = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)


def _batch(n=9, c=5, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    t = torch.randint(0, c, (n,), generator=g)
    return x, t


def test_worked_value():
    p_y = 0.665241  # spec A§0
    expected = (1 - p_y) ** 2 * -math.log(p_y)  # 0.045678
    assert LF.focal_loss(E, torch.tensor([0])).item() == pytest.approx(expected, abs=1e-6)
    assert LF.focal_loss(E, torch.tensor([0])).item() == pytest.approx(0.045678, abs=1e-6)


def test_gamma_zero_is_cross_entropy():
    x, t = _batch()
    w = torch.rand(5, dtype=torch.float64) + 0.1
    for kwargs in [{}, {"weight": w}, {"reduction": "sum"}]:
        torch.testing.assert_close(LF.focal_loss(x, t, gamma=0.0, **kwargs),
                                   LF.cross_entropy(x, t, **kwargs))


def test_matches_loop_reference_and_analytic_gradient():
    x, t = _batch(seed=3)
    gamma = 1.5
    alpha = [0.25, 1.0, 2.0, 0.5, 0.75]
    ref = []
    for row, y in zip(x.numpy(), t.numpy(), strict=True):
        p = np.exp(row - row.max())
        p /= p.sum()
        ref.append(-alpha[y] * (1 - p[y]) ** gamma * np.log(p[y]))
    ours = LF.focal_loss(x, t, gamma=gamma, alpha=alpha, reduction="none")
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10)
    # mean divides by the row count, not by Σ α_y (unlike ``weight``)
    assert LF.focal_loss(x, t, gamma=gamma, alpha=alpha).item() == pytest.approx(np.mean(ref))
    # chain rule through p_y: dℓ/dp_y · dp_y/dz with dp_y/dz = p_y·(e_y - p)
    z = x.clone().requires_grad_()
    LF.focal_loss(z, t, gamma=gamma, reduction="sum").backward()
    p = torch.softmax(x, 1)
    p_y = p.gather(1, t[:, None])
    dl_dpy = gamma * (1 - p_y) ** (gamma - 1) * torch.log(p_y) - (1 - p_y) ** gamma / p_y
    dpy_dz = p_y * (torch.nn.functional.one_hot(t, 5) - p)
    torch.testing.assert_close(z.grad, dl_dpy * dpy_dz)


def test_shift_invariance_and_downweighting():
    x, t = _batch()
    torch.testing.assert_close(LF.focal_loss(x + 5.0, t, reduction="none"),
                               LF.focal_loss(x, t, reduction="none"))
    ce = LF.cross_entropy(x, t, reduction="none")
    fl = LF.focal_loss(x, t, reduction="none")
    assert bool((fl <= ce).all())


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_gradcheck(gamma):
    x, t = _batch(n=4, c=3, scale=1.0, seed=5)
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z: LF.focal_loss(z, t, gamma=gamma, alpha=[0.5, 1.0, 2.0], reduction="none"),
        (x,))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_logits_finite(gamma, dtype):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]])
    x = x.to(dtype).requires_grad_()
    t = torch.tensor([0, 0, 2])  # p_y == 1 exactly, p_y ≈ 0, uniform
    out = LF.focal_loss(x, t, gamma=gamma)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()


def test_validation_and_registry():
    x, t = _batch()
    with pytest.raises(ValueError, match="focal_loss: gamma"):
        LF.focal_loss(x, t, gamma=-1.0)
    with pytest.raises(ValueError, match=r"focal_loss: alpha\[1\]"):
        LF.focal_loss(x, t, alpha=[1.0, -1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="focal_loss: alpha must have one entry per class"):
        LF.focal_loss(x, t, alpha=[1.0, 1.0])
    with pytest.raises(TypeError, match="focal_loss: alpha"):
        LF.focal_loss(x, t, alpha=0.25)
    mod = losslab.get_loss("focal", gamma=1.0)
    torch.testing.assert_close(mod(x, t), LF.focal_loss(x, t, gamma=1.0))
    assert isinstance(mod, losslab.nn.FocalLoss)
    info = {i.name: i for i in losslab.list_losses()}["focal"]
    assert info.family == "imbalance" and info.paper.arxiv == "1708.02002"


def test_docstring_examples_run():
    import doctest

    import losslab.functional.logits.imbalance as module

    assert doctest.testmod(module).failed == 0
