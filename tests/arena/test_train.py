"""One arena run: determinism, learning, and the extra inputs of stateful losses
(losslab.arena.train)."""

import math

import pytest
import torch

import losslab.arena.fit as fit_module
from losslab._core.registry import loss_info
from losslab.arena.train import run


def test_run_is_deterministic_and_records_curves(tiny_config):
    cfg = tiny_config("ce", seed=3)
    a, b = run(cfg), run(cfg)
    assert a.metrics == b.metrics
    assert a.curves == b.curves
    assert len(a.curves["test_acc"]) == cfg.epochs
    assert abs(a.metrics["observed_noise_rate"] - 0.4) < 0.01  # rounded per class
    assert not a.diverged
    c = run(tiny_config("ce", seed=4))
    assert c.metrics != a.metrics


def test_training_learns_on_clean_labels(tiny_config):
    # Digits + MLP learn fast; chance is 10%.
    r = run(tiny_config("ce", dataset="digits", model="mlp", noise="none", noise_rate=0.0,
                        epochs=4, width=16))
    assert r.metrics["test_acc"] > 0.6
    assert r.metrics["observed_noise_rate"] == 0.0
    assert math.isfinite(r.metrics["test_ece"])


@pytest.mark.parametrize("cleaning", ["none", "cleanlab"])
def test_sample_ids_reach_losses_that_ask_for_them(tiny_config, monkeypatch, cleaning):
    if cleaning != "none":
        pytest.importorskip("cleanlab")
    assert "sample_ids" in loss_info("aldr-kl").extra_inputs
    built = []
    real = fit_module.build_loss

    def spy(spec, num_samples):
        module = real(spec, num_samples)
        built.append(module)
        return module

    monkeypatch.setattr(fit_module, "build_loss", spy)
    r = run(tiny_config("aldr-kl:lam0=1.0", epochs=1, cleaning=cleaning, cleaning_folds=2))
    # With cleaning, one loss per fold model, then the final model's (on the kept samples).
    assert len(built) == (1 if cleaning == "none" else 3)
    module = built[-1]
    n = r.extra["train_size"]
    # Every training sample was visited once, so its per-sample lambda moved off lam0.
    assert module.lam.shape == (n,)
    assert bool((module.lam != 1.0).all())


def test_threads_are_restored(tiny_config):
    before = torch.get_num_threads()
    run(tiny_config("ce", epochs=1), threads=1)
    assert torch.get_num_threads() == before


def test_run_checks_its_config_first(tiny_config):
    import pytest

    with pytest.raises(ValueError, match="needs a held-out split"):
        run(tiny_config("ce", calibration="temperature"))


def test_shared_fit_loop_schedules_records_and_stops_on_divergence():
    import torch

    from losslab.arena.config import LossSpec, RunConfig
    from losslab.arena.fit import fit
    from losslab.arena.metrics import Evaluation

    model = torch.nn.Linear(1, 1)
    config = RunConfig(loss=LossSpec("ce"), epochs=3, lr=0.1)
    losses = iter([1.0, 3.0, 2.0, 2.0, 0.5, float("nan")])
    seen = []

    def batches():
        for _ in range(2):
            value = next(losses)
            seen.append(value)
            yield model.weight.sum() * 0 + value, 1, 4

    ev = Evaluation(0.5, 0.1, 0.0, 0.0, {})
    curves, diverged = fit(model, config, 2, batches, lambda: ev)
    assert diverged and len(seen) == 6
    # Two finished epochs: mean batch loss weighted by batch size, then the NaN stops epoch 3.
    assert curves == {"train_loss": [2.0, 2.0], "train_acc": [0.25, 0.25],
                      "test_acc": [0.5, 0.5], "test_ece": [0.1, 0.1]}
