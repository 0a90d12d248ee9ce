"""Where runs execute: this process, a local process pool, or a Ray cluster.

Every executor returns results to the calling process, which alone writes them to the store,
one atomic row per run, as each run finishes. So whatever executes the runs, killing the
driver loses only the runs in flight, a finished run is never lost, and none is written twice.
Ray is an optional dependency (``pip install 'losslab[ray]'``), imported only when its
executor is chosen; :func:`check_executor` fails before any training if it is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from .config import RunConfig
from .lifeline import bind_to_parent, sigint_blocked
from .train import run
from .user_checks import fingerprints
from .version import code_version

EXECUTORS = ("process", "ray")

Finish = Callable[[str, RunConfig, dict[str, Any]], None]


def check_executor(name: object) -> str:
    """Return ``name`` if it is a known executor whose dependencies are installed."""
    if name not in EXECUTORS:
        raise ValueError(
            f"arena: executor must be one of {', '.join(map(repr, EXECUTORS))}, got {name!r}"
        )
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ValueError(
            "arena: executor 'ray' needs the optional dependency ray, which is not installed; "
            "install it with: pip install 'losslab[ray]'"
        )
    return str(name)


def run_one(config: RunConfig) -> dict[str, Any]:
    """One run, as the plain dict the store keeps (picklable for any executor), with the code
    version of the process that ran it and, for the user's data or model, their sha256 as it
    read them: the driver stores it only if these match the key's."""
    prints = fingerprints(config)  # before training: what the run will read
    out = {**run(config).to_dict(), "code_version": code_version(config.loss.name)}
    if prints:
        out["fingerprints"] = prints
    return out


def run_serial(todo: list[tuple[str, RunConfig]], finish: Finish) -> None:
    for key, config in todo:
        finish(key, config, run_one(config))


def run_pool(todo: list[tuple[str, RunConfig]], workers: int, finish: Finish) -> None:
    """``workers`` spawn-started processes; results are finished in completion order.

    Workers die with this process (:mod:`.lifeline`). On any exit other than success (an
    error, Ctrl-C, SIGTERM) the runs not started are cancelled and the workers still running
    are killed at once: their runs are lost either way, and the pool is shut down before the
    exception leaves this function, so no worker outlives the sweep."""
    # "spawn": forking a process whose torch already started OpenMP threads can deadlock.
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=ctx, initializer=bind_to_parent,
        initargs=(os.getpid(),),
    )
    try:
        with sigint_blocked():  # workers are started by submit()
            pending: dict[Future[dict[str, Any]], tuple[str, RunConfig]] = {
                pool.submit(run_one, config): (key, config) for key, config in todo
            }
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in ready:
                key, config = pending.pop(fut)
                finish(key, config, fut.result())
    except BaseException:
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel queued runs and SIGKILL the pool's worker processes."""
    # ProcessPoolExecutor has no public way to stop running tasks; its process table is the
    # only handle on them.
    processes = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes.values():
        with contextlib.suppress(OSError, ValueError):
            proc.kill()
    for proc in processes.values():
        with contextlib.suppress(OSError, ValueError, AssertionError):
            proc.join(timeout=10)


def run_ray(todo: list[tuple[str, RunConfig]], finish: Finish, address: str | None = None) -> None:
    """One Ray task per run (one CPU each); the driver finishes results as tasks complete.

    Uses the Ray instance this process is already connected to, else ``ray.init(address)``:
    ``None`` starts a local instance unless ``RAY_ADDRESS`` names a cluster, ``"auto"`` joins
    the cluster this machine belongs to. A Ray instance started here is shut down afterwards.
    """
    check_executor("ray")
    import ray

    started = not ray.is_initialized()
    if started:
        # Passing include_dashboard when joining an existing cluster is an error in Ray.
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_one)
        pending = {task.remote(config): (key, config) for key, config in todo}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    key, config = pending.pop(ref)
                    finish(key, config, ray.get(ref))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
