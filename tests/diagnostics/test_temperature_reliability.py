"""Temperature scaling against scipy's scalar minimiser; the reliability diagram renders."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from losslab.diagnostics import (
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
    temperature_scale,
)


def _scipy_temperature(z, y):
    z, y = z.numpy(), y.numpy()

    def nll(t):
        s = z / t
        return float(np.mean(logsumexp(s, axis=1) - s[np.arange(len(y)), y]))

    return minimize_scalar(nll, bounds=(0.01, 100), method="bounded",
                           options={"xatol": 1e-10}).x


def test_docstring_example():
    z = torch.tensor([[2.0, 1.0, 0.0]] * 3)
    assert fit_temperature(z, torch.tensor([0, 0, 1])) == pytest.approx(0.807607, abs=1e-6)


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_matches_scipy_and_recovers_the_generating_temperature(true_t):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3000, 6, generator=g, dtype=torch.float64) * 2
    y = torch.multinomial((z / true_t).softmax(1), 1, generator=g).squeeze(1)
    t = fit_temperature(z, y)
    assert t == pytest.approx(_scipy_temperature(z, y), rel=1e-5)
    assert t == pytest.approx(true_t, rel=0.15)
    before = expected_calibration_error(z, y, from_logits=True)
    after = expected_calibration_error(temperature_scale(z, t), y, from_logits=True)
    assert after < before
    assert torch.equal(temperature_scale(z, t).argmax(1), z.argmax(1))


def test_errors():
    with pytest.raises(ValueError, match=r"^fit_temperature: logits must be"):
        fit_temperature(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^temperature_scale: temperature must lie in"):
        temperature_scale(torch.zeros(2, 2), 0.0)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_reliability_diagram_saves_png(tmp_path, binning):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(200, 4, generator=g) * 3
    y = torch.randint(0, 4, (200,), generator=g)
    out = tmp_path / "rel.png"
    fig = reliability_diagram(z, y, from_logits=True, binning=binning, n_bins=10, path=out)
    assert out.stat().st_size > 1000
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "ECE" in fig.axes[0].get_title()


def test_non_finite_logits_are_rejected():
    from losslab.diagnostics import fit_temperature

    z = torch.tensor([[2.0, 1.0, 0.0], [float("nan"), 0.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^fit_temperature: logits must be finite"):
        fit_temperature(z, torch.tensor([0, 1]))
