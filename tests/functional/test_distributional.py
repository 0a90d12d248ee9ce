"""HL-Gauss and two-hot: worked values of spec B§8, a scipy reference, decode(encode(v)) ≈ v."""

import pytest
import torch
from scipy.stats import norm

import losslab.functional as LF

UNIT = {"v_min": 0.0, "v_max": 1.0, "num_bins": 4}
LOGITS = torch.tensor([[0.0, 1.0, 0.5, -1.0]], dtype=torch.float64)
Y = torch.tensor([0.3], dtype=torch.float64)


def test_hl_gauss_worked_values():
    p = LF.hl_gauss_encode(Y, **UNIT)[0]
    torch.testing.assert_close(
        p,
        torch.tensor([0.359815, 0.488914, 0.142697, 0.008574], dtype=torch.float64),
        atol=1e-6,
        rtol=0,
    )
    centres = LF.hl_gauss_centers(**UNIT, dtype=torch.float64)
    # The truncation at 0 moves the mean to 0.3250072, not 0.3: a regression test.
    assert (p * centres).sum().item() == pytest.approx(0.3250072, abs=1e-7)
    assert LF.hl_gauss(LOGITS, Y, **UNIT).item() == pytest.approx(1.1948783, abs=1e-7)
    assert LF.hl_gauss_decode(LOGITS, **UNIT).item() == pytest.approx(0.4353535, abs=1e-7)


def test_hl_gauss_encode_equals_scipy_truncated_normal_mass():
    values = torch.tensor([-3.0, -0.7, 0.0, 1.234, 4.9], dtype=torch.float64)
    got = LF.hl_gauss_encode(values, v_min=-5.0, v_max=5.0, num_bins=10, sigma_ratio=0.6)
    edges = torch.linspace(-5, 5, 11, dtype=torch.float64).numpy()
    for row, v in zip(got, values.tolist(), strict=True):
        cdf = norm.cdf(edges, loc=v, scale=0.6)
        ref = (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])
        torch.testing.assert_close(row, torch.from_numpy(ref))


def test_two_hot_worked_value_and_exact_mean():
    p = LF.two_hot_encode(Y, **UNIT)[0]
    torch.testing.assert_close(p, torch.tensor([0.1, 0.9, 0.0, 0.0], dtype=torch.float64))
    values = torch.linspace(-12.0, 12.0, 97, dtype=torch.float64)
    atoms = LF.two_hot_atoms(v_min=-10, v_max=10, num_bins=51, dtype=torch.float64)
    enc = LF.two_hot_encode(values, v_min=-10, v_max=10, num_bins=51)
    torch.testing.assert_close(enc @ atoms, values.clamp(-10, 10))
    assert torch.all((enc > 0).sum(1) <= 2)


@pytest.mark.parametrize("kind", ["hl_gauss", "two_hot"])
def test_decode_of_encode_recovers_the_value(kind):
    support = {"v_min": -10.0, "v_max": 10.0, "num_bins": 51}
    values = torch.linspace(-8.0, 8.0, 41, dtype=torch.float64)  # interior: no truncation bias
    encode = getattr(LF, f"{kind}_encode")
    decode = getattr(LF, f"{kind}_decode")
    logits = torch.log(encode(values, **support).clamp_min(1e-300))
    tol = 1e-12 if kind == "two_hot" else 1e-4 * 20 / 51  # HL-Gauss: binning error << bin width
    torch.testing.assert_close(decode(logits, **support), values, atol=tol, rtol=0)


def test_loss_is_ce_against_the_encoding_and_minimised_there():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(5, generator=g, dtype=torch.float64)
    t = LF.hl_gauss_encode(y, **UNIT)
    torch.testing.assert_close(
        LF.hl_gauss(z, y, **UNIT, reduction="none"), -(t * torch.log_softmax(z, 1)).sum(1)
    )
    # Gradient of CE against a distribution: softmax(z) - target; zero at z = log target.
    LF.two_hot(z, y, **UNIT, reduction="sum").backward()
    torch.testing.assert_close(z.grad, torch.softmax(z.detach(), 1) - LF.two_hot_encode(y, **UNIT))


def test_outside_support_is_clipped():
    far = torch.tensor([-50.0, 50.0], dtype=torch.float64)
    edge = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for enc in (LF.hl_gauss_encode, LF.two_hot_encode):
        torch.testing.assert_close(enc(far, **UNIT), enc(edge, **UNIT))
        assert torch.isfinite(enc(far, **UNIT)).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["hl-gauss", "two-hot"])
def test_value_losses_compile_with_fullgraph_and_missing_targets(name, reduction):
    import losslab

    torch._dynamo.reset()
    loss = losslab.get_loss(name, reduction=reduction, num_bins=11, v_min=-2.0, v_max=2.0)
    z = torch.randn(6, 11, dtype=torch.float64)
    y = torch.tensor([0.3, float("nan"), -1.5, 2.5, float("nan"), 0.0], dtype=torch.float64)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    outs = []
    for fn in (loss, compiled):
        leaf = z.clone().requires_grad_()
        value = fn(leaf, y)
        value.sum().backward()
        outs.append((value.detach(), leaf.grad))
    torch.testing.assert_close(outs[1][0], outs[0][0])
    torch.testing.assert_close(outs[1][1], outs[0][1])
    assert float(outs[0][1][1].abs().sum()) == 0.0  # a missing target's row gets no gradient
