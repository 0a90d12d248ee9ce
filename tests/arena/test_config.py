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
    base = RunConfig(loss=LossSpec("ce"), head="harmonic")
    assert run_key(base) == run_key(RunConfig(loss=LossSpec("ce"), head="harmonic"))
    assert RunConfig.from_dict(base.to_dict()) == base
    seen = {run_key(base)}
    for f in dataclasses.fields(RunConfig):
        value = getattr(base, f.name)
        if f.name == "loss":
            changed = LossSpec.of("ce", {"temperature": 2.0})
        elif isinstance(value, str):
            changed = {"dataset": "digits", "model": "mlp", "noise": "instance",
                       "calibration": "temperature", "head": "linear",
                       "head_distance": "cosine", "cleaning": "cleanlab"}[f.name]
        elif isinstance(value, float):
            changed = value + 0.125
        else:
            changed = value + 1
        # The fold count counts only where a run cleans.
        cleans = {"cleaning": "cleanlab"} if f.name == "cleaning_folds" else {}
        k = run_key(dataclasses.replace(base, **{f.name: changed}, **cleans))
        assert k not in seen, f.name
        seen.add(k)


@pytest.mark.parametrize(
    "a,b",
    [
        (dict(head="harmonic", head_n=16), dict(head="harmonic", head_n=16.0)),
        (dict(lr=1), dict(lr=1.0)),
        (dict(noise="none", noise_rate=0.0), dict(noise="symmetric", noise_rate=0)),
        (dict(noise="instance", noise_rate=0.0), dict(noise="asymmetric", noise_rate=0.0)),
        (dict(imbalance=10), dict(imbalance=10.0)),
        (dict(head="linear", head_n=16.0, head_distance="cosine"), dict()),
        (dict(cleaning="none", cleaning_folds=3), dict()),
    ],
)
def test_equivalent_settings_share_one_key(a, b):
    ca, cb = RunConfig(loss=LossSpec("ce"), **a), RunConfig(loss=LossSpec("ce"), **b)
    assert ca == cb and run_key(ca) == run_key(cb)
    assert RunConfig.from_dict(ca.to_dict()) == ca


def test_hyperparameters_take_the_type_of_the_registry_default():
    assert LossSpec.parse("gce:q=1") == LossSpec.parse("gce:q=1.0")
    assert run_key(RunConfig(loss=LossSpec.parse("gce:q=1"))) == run_key(
        RunConfig(loss=LossSpec.of("gce", {"q": 1.0})))
    assert LossSpec.parse("gce:q=1").label == "gce(q=1.0)"
    # Through the settings layer: --head harmonic:n=16 vs --head harmonic --head-n 16.
    from losslab.arena.settings import to_sweep
    from losslab.arena.sweep import check_sweep

    one = check_sweep(to_sweep({"losses": ["ce"], "heads": ["harmonic:n=16"], "seeds": 1})[0])
    two = check_sweep(to_sweep({"losses": ["ce"], "heads": ["harmonic"], "head_n": 16.0,
                                "seeds": 1})[0])
    assert [run_key(c) for c in one] == [run_key(c) for c in two]


def test_clean_labels_with_a_rate_are_rejected():
    with pytest.raises(ValueError, match=r"^arena: noise_rate must be 0 with noise='none'"):
        check_config(RunConfig(loss=LossSpec("ce"), noise="none", noise_rate=0.4))
