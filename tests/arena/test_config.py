"""Run configs: loss specs, validation naming the key, and the run key (losslab.arena.config)."""

import dataclasses

import pytest

from losslab.arena.config import LossSpec, RunConfig, check_config, check_loss, run_key


def test_loss_spec_parse():
    s = LossSpec.parse("gce:q=0.5,truncate_k=None")
    assert s.name == "gce" and s.hp == {"q": 0.5, "truncate_k": None}
    assert s.label == "gce(q=0.5, truncate_k=None)"
    assert LossSpec.parse("ldr-kl:normalize=softplus_mean").hp == {"normalize": "softplus_mean"}
    assert LossSpec.parse(" ce ") == LossSpec("ce")
    with pytest.raises(ValueError, match="losses entry 'gce:q' is malformed"):
        LossSpec.parse("gce:q")


@pytest.mark.parametrize(
    "changes,key",
    [
        ({"dataset": "cifar"}, "dataset"),
        ({"model": "resnet"}, "model"),
        ({"noise": "pair"}, "noise"),
        ({"noise_rate": 0.9}, "noise_rate"),  # symmetric with 10 classes needs < 0.9
        ({"noise": "asymmetric", "noise_rate": 0.5}, "noise_rate"),
        ({"noise_rate": -0.1}, "noise_rate"),
        ({"imbalance": 0.5}, "imbalance"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_bad_config_names_the_key(changes, key):
    config = RunConfig(loss=LossSpec("ce"), **changes)
    with pytest.raises(ValueError, match=rf"^arena: {key} must"):
        check_config(config)


def test_good_config_passes():
    check_config(RunConfig(loss=LossSpec("ce"), noise="asymmetric", noise_rate=0.45))


def test_unknown_loss_and_bad_hyperparameter_are_rejected():
    with pytest.raises(ValueError, match="arena: losses entry 'no-such-loss' is not registered"):
        check_loss(LossSpec("no-such-loss"), 100)
    with pytest.raises(ValueError, match=r"arena: losses entry 'ce\(temperature=0.0\)'"):
        check_loss(LossSpec.of("ce", {"temperature": 0.0}), 100)
    with pytest.raises(ValueError, match="no hyperparameter 'q'"):
        check_loss(LossSpec.of("ce", {"q": 0.5}), 100)


def test_losses_the_arena_cannot_feed_are_rejected():
    from losslab._core.registry import list_losses

    needs_teacher = [i.name for i in list_losses() if "teacher_logits" in i.extra_inputs]
    for name in needs_teacher:  # e.g. knowledge distillation
        with pytest.raises(ValueError, match="needs the extra input 'teacher_logits'"):
            check_loss(LossSpec(name), 100)
    embeddings = [i.name for i in list_losses() if i.kind != "logits"]
    for name in embeddings:
        with pytest.raises(ValueError, match="the arena trains classifiers"):
            check_loss(LossSpec(name), 100)


def test_run_key_is_stable_and_sensitive_to_every_field():
    base = RunConfig(loss=LossSpec("ce"))
    assert run_key(base) == run_key(RunConfig(loss=LossSpec("ce")))
    assert RunConfig.from_dict(base.to_dict()) == base
    seen = {run_key(base)}
    for f in dataclasses.fields(RunConfig):
        value = getattr(base, f.name)
        if f.name == "loss":
            changed = LossSpec.of("ce", {"temperature": 2.0})
        elif isinstance(value, str):
            changed = {"dataset": "digits", "model": "mlp", "noise": "instance",
                       "calibration": "temperature", "head": "harmonic",
                       "head_distance": "cosine"}[f.name]
        elif isinstance(value, float):
            changed = value + 0.125
        else:
            changed = value + 1
        k = run_key(dataclasses.replace(base, **{f.name: changed}))
        assert k not in seen, f.name
        seen.add(k)
