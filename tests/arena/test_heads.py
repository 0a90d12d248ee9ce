"""The classifier-head option of the arena (linear or harmonic) and the ``harmonic`` preset
(losslab.arena.models / config / settings / presets)."""

import dataclasses
import re

import pytest
import torch

from losslab.arena.config import LossSpec, RunConfig, check_config, run_key
from losslab.arena.models import build_model
from losslab.arena.presets import get_preset
from losslab.arena.settings import to_sweep
from losslab.arena.sweep import check_sweep
from losslab.arena.train import run
from losslab.cli import main
from losslab.cli.arena import merged_settings
from losslab.heads import HarmonicHead


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_harmonic_head_logits_are_minus_n_log_distance(model):
    torch.manual_seed(0)
    net = build_model(model, 40, 10, 4, head="harmonic", head_distance="cosine", head_n=3.0)
    assert isinstance(net.head, HarmonicHead) and net.head.distance == "cosine"
    x = torch.randn(5, 1, 40)
    feats = net.features(x)
    # Independent: cosine distance 1 - cos(x, w) to every class centre.
    cos = torch.nn.functional.normalize(feats, dim=1) @ torch.nn.functional.normalize(
        net.head.weight, dim=1).T
    expected = -3.0 * torch.log(1 - cos + 1e-4)
    torch.testing.assert_close(net(x), expected, atol=1e-4, rtol=1e-4)


def test_linear_head_initialisation_is_unchanged_by_the_head_option():
    # The MLP was one nn.Sequential before the head option; the same seed must build the same
    # weights in the same order, so stored linear-head results stay reproducible.
    torch.manual_seed(3)
    net = build_model("mlp", 40, 10, 4)
    torch.manual_seed(3)
    ref = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(40, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    x = torch.randn(7, 1, 40)
    torch.testing.assert_close(net(x), ref(x))


def test_harmonic_run_trains_and_differs_from_linear(tiny_config):
    lin = run(tiny_config("ce", noise="none", noise_rate=0.0))
    har = run(tiny_config("ce", noise="none", noise_rate=0.0, head="harmonic", head_n=16.0))
    assert all(torch.isfinite(torch.tensor(v)) for v in har.metrics.values())
    # Two tiny epochs are too few for accuracy, but the harmonic loss must go down.
    assert not har.diverged and har.curves["train_loss"][1] < har.curves["train_loss"][0]
    assert har.metrics != lin.metrics


def test_head_config_is_checked_and_labelled(tiny_config):
    cfg = tiny_config("ce", head="harmonic", head_distance="cosine", head_n=16.0)
    assert cfg.label == "ce [harmonic cosine n=16]"
    assert tiny_config("ce", head="harmonic").label == "ce [harmonic euclidean]"
    assert tiny_config("ce", calibration="temperature", holdout=0.1,
                       head="harmonic").label == "ce [harmonic euclidean] + temperature"
    assert run_key(cfg) != run_key(dataclasses.replace(cfg, head_n=8.0))
    for changes, message in [
        ({"head": "rbf"}, "head must be one of 'linear', 'harmonic', got 'rbf'"),
        ({"head": "harmonic", "head_distance": "l7"}, "head_distance must be one of"),
        ({"head": "harmonic", "head_n": 0.0}, "head_n must be positive"),
        ({"head": "harmonic", "head_n": -1.0}, "head_n must be a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_config(tiny_config("ce", **changes))
    lm = RunConfig(loss=LossSpec("ce"), dataset="shakespeare", model="transformer",
                   noise="none", noise_rate=0.0, head="harmonic")
    with pytest.raises(ValueError, match="head must be 'linear' for dataset 'shakespeare'"):
        check_config(lm)


def test_heads_grid_parses_entries_and_canonicalises_linear(tiny):
    sweep, _ = to_sweep({"losses": ["ce"], "seeds": 1, "head_distance": "cosine",
                         "heads": ["linear", "harmonic", {"name": "harmonic", "n": 4}],
                         **tiny})
    configs = check_sweep(sweep)
    assert [c.label for c in configs] == ["ce", "ce [harmonic cosine]", "ce [harmonic cosine n=4]"]
    # The linear run ignores head_distance, so its key equals a plain linear run's.
    plain = check_sweep(to_sweep({"losses": ["ce"], "seeds": 1, **tiny})[0])
    assert run_key(configs[0]) == run_key(plain[0])
    for heads, message in [
        (["harmonic:p=3"], "heads[0] 'harmonic:p=3' has unknown option 'p'"),
        (["linear:n=2"], "a linear head takes no options"),
        ([3], "heads[0] must be a name"),
        ([], "heads must hold at least one head"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_sweep(to_sweep({"losses": ["ce"], "heads": heads, **tiny})[0])


def test_harmonic_preset_claims_name_its_runs():
    import argparse

    from losslab.cli.arena import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    name, settings = merged_settings(parser.parse_args(["arena", "--preset", "harmonic"]))
    labels = {c.label for c in check_sweep(to_sweep(settings)[0])}
    for claim in get_preset(name).claims:
        assert {claim.baseline, *claim.challengers} <= labels


def test_cli_head_flags_compare_heads(tmp_path, capsys):
    argv = ["arena", "--losses", "ce", "--seeds", "1", "--head", "linear", "harmonic",
            "--head-distance", "cosine", "--head-n", "8", "--noise", "none", "--noise-rates", "0",
            "--num-samples", "400", "--epochs", "1", "--width", "8", "--quiet",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1 losses x 2 heads x 1 noise rates x 1 seeds = 2 runs" in captured.err
    losses = [re.split(r"\s{2,}", line)[1] for line in captured.out.splitlines()
              if line.startswith("0%")]
    assert losses == ["ce", "ce [harmonic cosine n=8]"]
    assert main([*argv[:-2], "--head", "rbf", "--out", str(tmp_path / "x")]) == 2
    assert "head must be one of" in capsys.readouterr().err
