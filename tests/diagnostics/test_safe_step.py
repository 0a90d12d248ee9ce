"""Safe step radius (spec A§10): worked values, exact linear models, JVP against finite
differences, the binary exact radius as a true zero of F, and direction formats."""

import cmath
import math

import pytest
import torch
from torch import nn

from losslab.diagnostics import (
    binary_exact_radius,
    directional_logit_derivatives,
    logit_spread,
    safe_step_radius,
)


def _linear(c=3, d=1, bias=False, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d, c, bias=bias).double()


def test_spec_worked_values():
    assert logit_spread(torch.tensor([1.0, 0.0, -1.0])).item() == 2.0
    # a = (1, 0, -1): a linear model z = W x with x = (sqrt 2,) and unit direction
    # (1, 0, -1)/sqrt 2 on W has exactly these directional derivatives, so rho = pi/2
    model = _linear()
    x = torch.tensor([[math.sqrt(2.0)]], dtype=torch.float64)
    rho = safe_step_radius(model, x, torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64))
    assert rho.item() == pytest.approx(1.570796, abs=1e-6)
    r = binary_exact_radius(torch.tensor(2.0, dtype=torch.float64),
                            torch.tensor(1.0, dtype=torch.float64))
    assert r.item() == pytest.approx(3.724192, abs=1e-6)


def test_docstring_linear_example():
    model = _linear()
    direction = {"weight": torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)}
    rho = safe_step_radius(model, torch.ones(1, 1, dtype=torch.float64), direction)
    assert rho.item() == pytest.approx(math.pi / math.sqrt(2), rel=1e-12)


def test_linear_model_is_exact_and_direction_formats_agree():
    model = _linear(c=5, d=4, bias=True)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64)
    vw = torch.randn(5, 4, generator=g, dtype=torch.float64)
    vb = torch.randn(5, generator=g, dtype=torch.float64)
    norm = torch.cat([vw.flatten(), vb]).norm()
    a = (x @ vw.T + vb) / norm  # logits are linear in (W, b): the JVP is exact
    expected = math.pi / float((a.max(1).values - a.min(1).values).max())
    as_dict = safe_step_radius(model, x, {"weight": vw, "bias": vb})
    as_list = safe_step_radius(model, x, [vw * 3, vb * 3])  # only the direction matters
    as_flat = safe_step_radius(model, x, torch.cat([vw.flatten(), vb]))
    for rho in (as_dict, as_list, as_flat):
        assert rho.item() == pytest.approx(expected, rel=1e-12)


def test_jvp_matches_central_difference_on_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    v = [torch.randn_like(p) for p in model.parameters()]
    unit = torch.cat([t.flatten() for t in v]).norm()
    logits, a = directional_logit_derivatives(model, x, v)
    eps = 1e-6
    params = list(model.parameters())
    with torch.no_grad():
        for p, t in zip(params, v, strict=True):
            p.add_(t / unit, alpha=eps)
        up = model(x)
        for p, t in zip(params, v, strict=True):
            p.add_(t / unit, alpha=-2 * eps)
        down = model(x)
        for p, t in zip(params, v, strict=True):
            p.add_(t / unit, alpha=eps)
    torch.testing.assert_close(a, (up - down) / (2 * eps), atol=1e-8, rtol=1e-7)
    torch.testing.assert_close(logits, model(x).detach())


def test_binary_exact_radius_is_a_zero_of_the_partition_function():
    model = _linear(c=2, d=3, bias=True, seed=4)
    x = torch.randn(6, 3, dtype=torch.float64)
    v = [torch.randn_like(p) for p in model.parameters()]
    logits, a = directional_logit_derivatives(model, x, v)
    exact = safe_step_radius(model, x, v, kind="binary_exact")
    bound = safe_step_radius(model, x, v)
    assert bound.item() <= exact.item()
    i = int(torch.argmin(binary_exact_radius(logits[:, 0] - logits[:, 1], a[:, 0] - a[:, 1])))
    z, s = logits[i].tolist(), a[i].tolist()
    t0 = complex(-(z[0] - z[1]), math.pi) / (s[0] - s[1])
    f = cmath.exp(z[0] + s[0] * t0) + cmath.exp(z[1] + s[1] * t0)
    assert abs(f) < 1e-9 * (math.exp(z[0]) + math.exp(z[1]))
    assert abs(t0) == pytest.approx(exact.item(), rel=1e-12)


def test_single_logit_binary_equals_two_logits():
    one = _linear(c=1, d=3, bias=True, seed=5)
    two = _linear(c=2, d=3, bias=True, seed=5)
    with torch.no_grad():  # logits (0, z) from one logit z
        two.weight.copy_(torch.cat([torch.zeros_like(one.weight), one.weight]))
        two.bias.copy_(torch.cat([torch.zeros_like(one.bias), one.bias]))
    x = torch.randn(4, 3, dtype=torch.float64)
    v1 = [torch.ones_like(p) for p in one.parameters()]
    v2 = [torch.cat([torch.zeros_like(t), t]) for t in v1]
    r1 = safe_step_radius(one, x, v1, kind="binary_exact")
    r2 = safe_step_radius(two, x, v2, kind="binary_exact")
    assert r1.item() == pytest.approx(r2.item(), rel=1e-12)


def test_sequence_logits_reduce_over_batch_and_time():
    model = _linear(c=6, d=4, bias=False, seed=2)
    x = torch.randn(2, 5, 4, dtype=torch.float64)  # (B, T, d) -> logits (B, T, V)
    v = torch.randn(6, 4, dtype=torch.float64)
    a = x @ (v / v.norm()).T
    expected = math.pi / float(logit_spread(a).max())
    assert safe_step_radius(model, x, [v]).item() == pytest.approx(expected, rel=1e-12)


def test_no_movement_gives_infinite_radius_and_errors():
    model = _linear(c=3, d=2, bias=True)
    x = torch.randn(3, 2, dtype=torch.float64)
    # moving every bias equally shifts all logits together: softmax is unchanged
    v = {"weight": torch.zeros(3, 2, dtype=torch.float64), "bias": torch.ones(3,
                                                                            dtype=torch.float64)}
    assert math.isinf(safe_step_radius(model, x, v).item())
    with pytest.raises(ValueError, match=r"^safe_step_radius: direction is zero"):
        safe_step_radius(model, x, [torch.zeros(3, 2), torch.zeros(3)])
    with pytest.raises(ValueError, match=r"^safe_step_radius: direction for weight"):
        safe_step_radius(model, x, [torch.zeros(2, 3), torch.zeros(3)])
    with pytest.raises(ValueError, match=r"^safe_step_radius: kind='binary_exact' needs 1 or 2"):
        safe_step_radius(model, x, v, kind="binary_exact")


def test_output_logit_heuristic_is_separate_from_the_jvp_bound():
    from losslab.diagnostics.safe_step import output_logit_radius

    z = torch.tensor([[2.0, 1.0, 0.0], [4.0, 0.0, 0.0]])
    assert output_logit_radius(z).item() == pytest.approx(math.pi / 3)
    assert output_logit_radius(z, gap="top2").item() == pytest.approx(math.pi / 2.5)
    with pytest.raises(ValueError, match=r"^output_logit_radius: gap must be"):
        output_logit_radius(z, gap="max")


def test_flat_direction_for_a_single_parameter_tensor():
    model = _linear()  # one parameter, weight (3, 1)
    x = torch.ones(1, 1, dtype=torch.float64)
    flat = safe_step_radius(model, x, torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64))
    shaped = safe_step_radius(model, x, torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64))
    assert flat.item() == pytest.approx(math.pi / math.sqrt(2), rel=1e-12)
    assert flat.item() == shaped.item()
    with pytest.raises(ValueError, match=r"^safe_step_radius: a flat direction must have 3"):
        safe_step_radius(model, x, torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_non_finite_inputs_or_direction_raise_instead_of_infinite_radius():
    model = _linear()
    direction = torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)
    nan_x = torch.tensor([[float("nan")]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^safe_step_radius: the directional logit derivatives"):
        safe_step_radius(model, nan_x, direction)
    with pytest.raises(ValueError, match=r"^safe_step_radius: the directional logit derivatives"):
        safe_step_radius(model, nan_x, direction, kind="binary_exact")
    bad = torch.tensor([[1.0], [float("nan")], [0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^safe_step_radius: direction for weight has NaN"):
        safe_step_radius(model, torch.ones(1, 1, dtype=torch.float64), bad)


def test_single_logit_bound_reads_logits_as_zero_and_z():
    one = _linear(c=1, d=3, bias=True, seed=5)
    x = torch.randn(4, 3, dtype=torch.float64)
    v = [torch.ones_like(p) for p in one.parameters()]
    _, a = directional_logit_derivatives(one, x, v)
    bound = safe_step_radius(one, x, v)
    exact = safe_step_radius(one, x, v, kind="binary_exact")
    assert bound.item() == pytest.approx(math.pi / float(a.abs().max()), rel=1e-12)
    assert math.isfinite(bound.item()) and bound.item() <= exact.item()


def test_output_logit_radius_rejects_bad_logits():
    from losslab.diagnostics.safe_step import output_logit_radius

    with pytest.raises(ValueError, match=r"^output_logit_radius: gap='top2' needs at least 2"):
        output_logit_radius(torch.tensor([[1.0]]), gap="top2")
    with pytest.raises(ValueError, match=r"^output_logit_radius: logits must be finite"):
        output_logit_radius(torch.tensor([[float("nan"), 1.0, 0.0]]))
