"""Sweeps: losses x heads x cleanings x calibrations x noise rates x seeds over one base
configuration (or over each of several variants of it), and their execution.

:func:`check_sweep` validates everything (config keys, every loss through the registry) before
any training. :func:`execute` skips runs already in the store, runs the rest in this process
(``workers=1``) or in a process pool, and writes each result to the store the moment it
arrives, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import LossSpec, RunConfig, check_config, check_loss, run_key
from .executors import check_executor, run_pool, run_ray, run_serial
from .store import RunStore
from .user_checks import fingerprints
from .version import code_version


@dataclass(frozen=True)
class Sweep:
    """The grid of one sweep. ``base`` holds every :class:`RunConfig` field except ``loss``,
    ``noise_rate``, ``seed``, ``cleaning`` and ``calibration``, which the grid supplies. Each
    entry of ``heads`` is a set of head fields (``head``, ``head_distance``, ``head_n``) that override
    ``base``; the default, one empty entry, keeps ``base``'s head."""

    losses: tuple[LossSpec, ...]
    noise_rates: tuple[float, ...] = (0.4,)
    seeds: tuple[int, ...] = (0, 1)
    base: dict[str, Any] = field(default_factory=dict)
    calibrations: tuple[str, ...] = ("none",)
    heads: tuple[tuple[tuple[str, Any], ...], ...] = ((),)
    cleanings: tuple[str, ...] = ("none",)
    # Each variant overrides base fields and, with a "noise_rates" entry, the rates; the sweep
    # is the union of the grid over every variant (one empty variant: the grid alone).
    variants: tuple[tuple[tuple[str, Any], ...], ...] = ((),)

    def configs(self) -> list[RunConfig]:
        """Every run, ordered seed-major so partial results cover all losses early."""
        out = []
        for seed in self.seeds:
            for variant in map(dict, self.variants):
                rates = variant.pop("noise_rates", self.noise_rates)
                for rate in rates:
                    for loss in self.losses:
                        for head in self.heads:
                            fields = {**self.base, **variant, **dict(head)}
                            for clean in self.cleanings:
                                for cal in self.calibrations:
                                    out.append(
                                        RunConfig(
                                            loss=loss, seed=seed, noise_rate=rate,
                                            calibration=cal, cleaning=clean, **fields,
                                        )
                                    )
        return out


def check_sweep(sweep: Sweep) -> list[RunConfig]:
    """Validate the whole sweep before any training; return its run configs."""
    if not sweep.losses:
        raise ValueError("arena: losses must name at least one loss, got none")
    if not sweep.seeds:
        raise ValueError("arena: seeds must hold at least one seed, got none")
    if not sweep.noise_rates:
        raise ValueError("arena: noise_rates must hold at least one rate, got none")
    if not sweep.heads:
        raise ValueError("arena: heads must hold at least one head, got none")
    if not sweep.cleanings:
        raise ValueError("arena: cleaning must hold at least one method, got none")
    if not sweep.variants:
        raise ValueError("arena: variants must hold at least one variant, got none")
    try:
        configs = sweep.configs()
    except TypeError as err:  # an unknown key in base
        raise ValueError(f"arena: unknown configuration key ({err})") from err
    for config in configs:
        check_config(config)
    for loss, dataset, size in dict.fromkeys((c.loss, c.dataset, c.num_samples) for c in configs):
        check_loss(loss, size, dataset)
    return configs


Callback = Callable[[RunConfig, dict[str, Any]], None]


def execute(
    configs: Sequence[RunConfig],
    store: RunStore,
    *,
    workers: int = 1,
    progress: bool = True,
    on_result: Callback | None = None,
    executor: str = "process",
    ray_address: str | None = None,
) -> tuple[int, int]:
    """Run every config whose key is not in ``store``; return (ran, skipped).

    ``executor="process"`` runs in this process (``workers=1``) or in a pool of ``workers``
    processes; ``executor="ray"`` runs one Ray task per config (see
    :func:`losslab.arena.executors.run_ray`). Either way this process writes each result to
    the store as it arrives."""
    check_executor(executor)
    keys = [run_key(c) for c in configs]
    done = store.finished_keys()
    todo = [(k, c) for k, c in zip(keys, configs, strict=True) if k not in done]
    # The same config listed twice runs once.
    todo = list(dict(todo).items())
    skipped = len(configs) - len(todo)
    bar = _progress(len(configs), skipped, progress)

    refused: list[str] = []
    # The user's data and model as the keys hold them (empty for built-in ones).
    prints = {k: fingerprints(c) for k, c in todo}

    def finish(key: str, config: RunConfig, result: dict[str, Any]) -> None:
        version = code_version(config.loss.name)  # the version ``key`` was computed with
        if (result.get("code_version") != version
                or result.get("fingerprints", {}) != prints[key]):
            # A worker that imported edited sources, or read edited data: its result belongs
            # to another key.
            refused.append(f"{config.label} seed={config.seed}")
            if bar is not None:
                bar.update(1)
            return
        store.add(key, version, config, result)
        if on_result is not None:
            on_result(config, result)
        if bar is not None:
            acc = result["metrics"]["test_acc"]
            bar.set_postfix_str(f"{config.label} seed={config.seed} acc={acc:.3f}")
            bar.update(1)

    try:
        if executor == "ray":
            if todo:
                run_ray(todo, finish, ray_address)
        elif workers <= 1 or len(todo) <= 1:
            run_serial(todo, finish)
        else:
            run_pool(todo, workers, finish)
    finally:
        if bar is not None:
            bar.close()
    if refused:
        raise RuntimeError(
            f"arena: {len(refused)} result(s) ({', '.join(refused[:3])}"
            f"{', ...' if len(refused) > 3 else ''}) came from workers running other code or "
            f"data than this process (sources, data or model edited during the sweep) and were "
            f"not stored; run the command again"
        )
    return len(todo), skipped


def _progress(total: int, skipped: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=skipped, unit="run", desc="arena", dynamic_ncols=True)

