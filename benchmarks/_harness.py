"""Shared benchmark harness: each case in a fresh subprocess, time and honest peak memory.

Memory is the process's peak resident set size during the timed call, minus the RSS just
before it (inputs already allocated) and minus the bytes of the gradients the call must
return: what a method needs *beyond* inputs and gradients. The peak is reset with
``/proc/self/clear_refs`` (Linux) after warm-up, so import and compilation peaks do not count.
A table is printed and one CSV row per case is appended (machine, versions, load, case,
time, memory).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(step: Callable[[], Any], *, grad_bytes: int, warmup: int = 1,
            repeats: int = 1) -> dict[str, float]:
    """Run ``step`` (forward + backward, grads reset inside) and return wall seconds, CPU
    seconds of this process (best of ``repeats``) and peak extra MiB beyond inputs and
    gradients. With one thread, CPU time is robust to other load on a shared machine."""
    for _ in range(warmup):
        step()
    best = best_cpu = float("inf")
    extra = 0.0
    for _ in range(repeats):
        rss0 = _status_kb("VmRSS")
        reset_peak()  # without a reset (non-Linux) warm-up peaks count too
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        peak = _status_kb("VmHWM")
        extra = max(extra, (peak - rss0) / 1024 - grad_bytes / 2**20)
    return {"seconds": best, "cpu_seconds": best_cpu, "extra_mib": max(extra, 0.0)}


def machine() -> dict[str, str]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "machine": f"{cpu} ×{os.cpu_count()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "load1": f"{os.getloadavg()[0]:.2f}",
    }


def run_worker(script: str, args: Sequence[str], timeout: float,
               pin_malloc: bool = True) -> dict[str, Any]:
    """Run ``script --worker ARGS`` in a fresh interpreter; it prints one JSON line last.

    ``pin_malloc`` (the default) fixes glibc's mmap threshold so that every large block goes
    back to the OS at free() and RSS follows live memory. That makes the memory column exact
    but charges page faults to every fresh allocation above 128 KiB (0.5 ms per MiB here), which
    a long-running process with glibc's adaptive threshold does not pay: code that allocates
    many mid-sized temporaries is timed with ``pin_malloc=False``.
    """
    cmd = [sys.executable, script, "--worker", *args]
    env = dict(os.environ)
    if pin_malloc:
        env.update({"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f}s"}
    lines = [x for x in proc.stdout.strip().splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:160]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def worker_print(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-|-".join("-" * widths[c] for c in columns))
    for r in rows:
        print(" | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def append_csv(name: str, rows: list[dict[str, Any]]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.csv"
    info = machine()
    fields = [*info.keys(), "when", *rows[0].keys()] if rows else list(info)
    k = 1
    while path.exists():  # a file whose header differs gets a sibling: columns never shift
        with path.open(newline="") as f:
            if next(csv.reader(f), None) == fields:
                break
        k += 1
        path = RESULTS / f"{name}_v{k}.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for r in rows:
            writer.writerow({**info, "when": stamp, **r})
    return path
