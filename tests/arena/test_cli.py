"""`losslab arena` end to end on tiny settings: table, store, skip on re-run, errors before
training, TOML files and presets (losslab.cli.arena / losslab.arena.settings)."""

import sqlite3

import pytest

from losslab.cli import main

TINY_FLAGS = ["--num-samples", "400", "--epochs", "1", "--width", "8", "--quiet"]


def count_rows(directory):
    with sqlite3.connect(directory / "runs.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def test_arena_prints_table_and_skips_finished_runs(tmp_path, capsys):
    argv = ["arena", "--losses", "ce", "gce", "--seeds", "2", "--out", str(tmp_path), *TINY_FLAGS]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("40%")]
    assert [line.split()[1] for line in lines] == ["ce", "gce"]
    assert all(" ± " in line for line in lines)
    assert count_rows(tmp_path) == 4

    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "4 runs already finished, 0 run now" in captured.err
    assert captured.out == out  # the same table, read back from the store
    assert count_rows(tmp_path) == 4


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--losses", "ce", "not-a-loss"], "losses entry 'not-a-loss' is not registered"),
        (["--losses", "gce:q=3"], "losses entry 'gce(q=3.0)': generalized_cross_entropy: q"),
        (["--noise-rates", "0.2,0.95"], "noise_rate must be a number in [0.0, 0.9)"),
        (["--noise", "pairs"], "noise must be one of"),
        (["--preset", "nope"], "preset must be one of"),
        (["--workers", "0"], "workers must be a positive integer"),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, capsys, extra, message):
    assert main(["arena", "--out", str(tmp_path), *TINY_FLAGS, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("losslab arena: error: ") and "error: arena: " not in err
    assert message in err
    assert not (tmp_path / "runs.db").exists()


def test_toml_config(tmp_path, capsys):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        'losses = ["ce", {name = "sce", alpha = 0.5}]\n'
        "seeds = [5]\nnoise_rates = [0.0, 0.2]\n"
        'dataset = "digits"\nmodel = "mlp"\nnoise = "asymmetric"\nepochs = 1\nwidth = 8\n'
    )
    assert main(["arena", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "digits, mlp, asymmetric noise" in out
    assert "sce(alpha=0.5)" in out
    assert count_rows(tmp_path / "r") == 4


def test_toml_unknown_key_is_named(tmp_path, capsys):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('losses = ["ce"]\nepoch = 3\n')
    assert main(["arena", "--config", str(cfg), "--out", str(tmp_path)]) == 2
    assert "unknown configuration key 'epoch'" in capsys.readouterr().err


def test_flags_override_preset(tmp_path):
    import argparse

    from losslab.cli.arena import add_parser, merged_settings

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["arena", "--preset", "noisy-labels", "--seeds", "1"])
    name, settings = merged_settings(args)
    assert name == "noisy-labels"
    assert settings["seeds"] == 1
    assert settings["noise_rates"] == [0.2, 0.4, 0.6]


def test_toml_can_name_a_preset(tmp_path):
    import argparse

    from losslab.cli.arena import add_parser, merged_settings

    cfg = tmp_path / "sweep.toml"
    cfg.write_text('preset = "noisy-labels"\nseeds = 1\n')
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    name, settings = merged_settings(parser.parse_args(["arena", "--config", str(cfg)]))
    assert name == "noisy-labels" and settings["seeds"] == 1 and "preset" not in settings
    name, _ = merged_settings(parser.parse_args(["arena", "--config", str(cfg),
                                                 "--preset", "minimal"]))
    assert name == "minimal"  # the flag wins


def test_sweep_table_with_other_top_level_keys_is_rejected(tmp_path, capsys):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('epochs = 3\n[sweep]\nlosses = ["ce"]\n[extra]\nx = 1\n')
    assert main(["arena", "--config", str(cfg), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "[sweep] table and also the top-level key(s) 'epochs', 'extra'" in err


def test_clean_labels_default_to_rate_zero():
    from losslab.arena.settings import to_sweep

    assert to_sweep({"noise": "none"})[0].noise_rates == (0.0,)
    assert to_sweep({})[0].noise_rates == (0.4,)


def test_unwritable_out_fails_before_training_naming_out(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker, blocker / "runs"):
        assert main(["arena", "--out", str(out), *TINY_FLAGS, "--losses", "ce"]) == 2
        err = capsys.readouterr().err
        assert f"error: --out {str(out)!r} is not a writable directory" in err
        assert "arena: 1 losses" not in err  # nothing started
