"""The Ray executor (losslab.arena.executors.run_ray): the same rows as the process pool, the
same skip-on-resume, an interrupted sweep keeps what finished, and a missing ray fails before
training with the extra to install. The Ray tests start a local instance with two CPUs and
skip, saying why, where ray is not installed or cannot start."""

import importlib.util
import json
import sqlite3

import pytest

from losslab.arena.config import LossSpec
from losslab.arena.executors import check_executor
from losslab.arena.store import RunStore
from losslab.arena.sweep import Sweep, check_sweep, execute
from losslab.cli import main

TINY = {"num_samples": 400, "epochs": 1, "batch_size": 64, "width": 8}


def rows(directory):
    """key -> stored result without the wall time, plus the stored config JSON."""
    with sqlite3.connect(directory / "runs.db") as conn:
        out = {}
        for key, config, result in conn.execute("SELECT key, config, result FROM runs"):
            r = json.loads(result)
            r.pop("seconds")
            out[key] = (config, r)
        return out


def test_missing_ray_fails_before_training_naming_the_extra(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ValueError, match=r"executor 'ray' needs .*pip install 'losslab\[ray\]'"):
        check_executor("ray")
    argv = ["arena", "--executor", "ray", "--losses", "ce", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "losslab arena: error: executor 'ray' needs the optional dependency ray" in err
    assert not (tmp_path / "runs.db").exists()


def test_unknown_executor_and_stray_address_are_named(tmp_path):
    with pytest.raises(ValueError, match="executor must be one of 'process', 'ray', got 'dask'"):
        check_executor("dask")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('losses = ["ce"]\nray_address = "auto"\n')
    with pytest.raises(SystemExit):
        main(["arena", "--config", str(cfg), "--out", str(tmp_path), "--executor", "nope"])
    assert main(["arena", "--config", str(cfg), "--out", str(tmp_path), "--quiet"]) == 2
    assert not (tmp_path / "runs.db").exists()


@pytest.fixture(scope="module")
def local_ray():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'losslab[ray]')")
    import ray

    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as err:  # noqa: BLE001 - any failure to start means: cannot test here
        pytest.skip(f"a local Ray instance could not start: {type(err).__name__}: {err}")
    yield ray
    ray.shutdown()


def test_ray_rows_equal_process_pool_rows_and_resume_skips(tmp_path, local_ray):
    sweep = Sweep(losses=(LossSpec("ce"), LossSpec.parse("gce:q=0.5")), seeds=(0, 1),
                  base=dict(TINY))
    configs = check_sweep(sweep)
    with RunStore(tmp_path / "pool") as store:
        assert execute(configs, store, workers=2, progress=False) == (4, 0)
    with RunStore(tmp_path / "ray") as store:
        assert execute(configs, store, executor="ray", progress=False) == (4, 0)
        # Re-running skips every finished run; Ray is not even asked.
        assert execute(configs, store, executor="ray", progress=False) == (0, 4)
    ray_rows, pool_rows = rows(tmp_path / "ray"), rows(tmp_path / "pool")
    assert len(ray_rows) == 4
    assert ray_rows == pool_rows  # same keys, same configs, bit-identical results
    assert local_ray.is_initialized()  # an instance the caller started is left running


def test_interrupted_ray_sweep_keeps_finished_rows_and_resumes(tmp_path, local_ray):
    sweep = Sweep(losses=(LossSpec("ce"),), seeds=(0, 1, 2), base=dict(TINY))
    configs = check_sweep(sweep)

    def stop(config, result):
        raise KeyboardInterrupt  # the user interrupts after the first finished run

    with RunStore(tmp_path) as store:
        with pytest.raises(KeyboardInterrupt):
            execute(configs, store, executor="ray", progress=False, on_result=stop)
        assert len(store.runs()) == 1  # written before the interrupt reached the driver
        ran, skipped = execute(configs, store, executor="ray", progress=False)
        assert (ran, skipped) == (2, 1)
        keys = [r.key for r in store.runs()]
    assert len(keys) == len(set(keys)) == 3
