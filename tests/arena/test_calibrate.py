"""Post-hoc calibration on a held-out split (losslab.arena.calibrate and its use in a run)."""

import pytest
import torch

from losslab._core.registry import get_loss
from losslab.arena.calibrate import fit_calibration
from losslab.arena.config import LossSpec, RunConfig, check_config
from losslab.arena.train import run
from losslab.diagnostics.calibration.temperature import fit_temperature


def held_out():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 5, generator=g, dtype=torch.float64) * 4  # overconfident
    labels = torch.where(torch.rand(300, generator=g) < 0.6, logits.argmax(1),
                         torch.randint(0, 5, (300,), generator=g))
    return logits, labels


def test_temperature_is_the_diagnostics_fit():
    z, y = held_out()
    t = fit_calibration("temperature", z, y)
    assert t == fit_temperature(z, y)
    assert t > 1.0  # the logits were scaled up by 4, so calibration cools them
    assert fit_calibration("none", z, y) == 1.0


def test_ca_temperature_minimises_the_registry_loss():
    z, y = held_out()
    t = fit_calibration("ca-temperature", z, y)
    loss = get_loss("ca-calib")

    def value(temp):
        return float(loss(z / temp, y))

    best = value(t)
    for other in (0.05, 0.5, 1.0, 2.0, 5.0, 20.0, t * 1.1, t / 1.1):
        assert best <= value(other) + 1e-12


def test_unknown_method():
    z, y = held_out()
    with pytest.raises(ValueError, match="fit_calibration: method must be one of"):
        fit_calibration("platt", z, y)


def test_calibrated_run_keeps_accuracy_and_changes_ece(tiny_config):
    base = tiny_config("ce", holdout=0.2, epochs=3)
    plain = run(base)
    scaled = run(RunConfig(**{**base.__dict__, "calibration": "temperature"}))
    assert scaled.metrics["test_acc"] == plain.metrics["test_acc"]
    assert scaled.extra["temperature"] != 1.0 and plain.extra["temperature"] == 1.0
    assert scaled.metrics["test_ece"] != plain.metrics["test_ece"]
    assert scaled.extra["train_size"] == plain.extra["train_size"] == 256  # 320 minus 20%


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"calibration": "temperature"}, "needs a held-out split; set holdout"),
        ({"calibration": "platt", "holdout": 0.1}, "calibration must be one of"),
        ({"holdout": 0.6}, "holdout must be a number in"),
    ],
)
def test_calibration_config_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        check_config(RunConfig(loss=LossSpec("ce"), **changes))
