"""Fused linear cross-entropy: forward+backward time and extra memory against peers.

Methods (each in a fresh subprocess; time = one forward+backward; memory = peak RSS beyond
inputs and gradients, see _harness.py):

* floor     the three GEMMs alone (logits, ∂h, ∂W) on materialised (N, V) matrices
* naive     F.cross_entropy((h @ W.T).float(), y)
* torch     F.linear_cross_entropy(..., options=torch.nn.LinearCrossEntropyOptions())
* cce       cut_cross_entropy.linear_cross_entropy(..., impl="torch_compile")
* losslab   losslab.linear_cross_entropy (impl="chunked", automatic strategy)
* losslab_recompute   the four-GEMM strategy, for comparison (also losslab_forward_grads,
                      losslab_vocab_major: force that strategy)
* losslab_chunk<k>    losslab with k rows per block (the speed/memory trade-off)
* losslab_budget<b>   losslab with memory_budget=b (an int: bytes; with a dot: a fraction of
                      the logits' bytes), e.g. losslab_budget0.02

    .venv/bin/python benchmarks/fused_ce.py            # the three issue shapes, fp32 + bf16
    .venv/bin/python benchmarks/fused_ce.py --quick    # one small shape
    .venv/bin/python benchmarks/fused_ce.py --lm       # only the filtered path on a trained LM
    .venv/bin/python benchmarks/fused_ce.py --grid --plot   # V × D grid, fp32, + docs/img plot
    .venv/bin/python benchmarks/fused_ce.py --threads 1 --shapes 4096x512x32768 --rounds 3 \
        --methods floor,losslab --no-lm                # interleaved rounds, minima
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

SHAPES = [(4096, 512, 32768), (8192, 768, 50257), (2048, 1024, 131072)]
QUICK = [(1024, 256, 8192)]
#: The V ∈ {32k, 128k, 256k} × D ∈ {512, 2048, 4096} grid at token counts this 2-core machine
#: runs in ~20 minutes for floor, torch, cce and losslab: the floor takes 2.5–10 s per shape
#: (N·D·V ≤ 2⁴⁰), and N shrinks as D·V grows (the (V, D) weight and its gradient take
#: 8 GiB in fp32 at D = 4096, V = 262144).
GRID = [(4096, 512, 32768), (2048, 512, 131072), (2048, 512, 262144),
        (2048, 2048, 32768), (1024, 2048, 131072), (512, 2048, 262144),
        (1024, 4096, 32768), (512, 4096, 131072), (256, 4096, 262144)]
GRID_METHODS = "floor,losslab,torch,cce"
METHODS = ["floor", "naive", "torch", "cce", "losslab", "losslab_recompute"]


def _step(method: str, h: Any, w: Any, y: Any, extra: dict[str, Any]) -> Any:
    import torch
    import torch.nn.functional as F

    if method == "floor":
        def step() -> None:
            with torch.no_grad():
                z = h @ w.T
                h.grad = z @ w
                w.grad = z.T @ h
            h.grad = w.grad = None  # measured RSS before a step excludes old gradients
        return step
    if method == "naive":
        def fn() -> Any:
            return F.cross_entropy((h @ w.T).float(), y)
    elif method == "torch":
        opts = torch.nn.LinearCrossEntropyOptions()

        def fn() -> Any:
            return F.linear_cross_entropy(h, w, y, options=opts)
    elif method == "cce":
        from cut_cross_entropy import linear_cross_entropy as cce

        def fn() -> Any:
            return cce(h, w, y, impl="torch_compile")
    elif method.startswith("losslab"):
        import losslab

        suffix = method.removeprefix("losslab_")
        impl = f"chunked_{suffix}" if suffix in ("recompute", "forward_grads", "vocab_major") \
            else "chunked"
        if method.startswith("losslab_chunk"):  # e.g. losslab_chunk256: rows per block
            extra = {**extra, "chunk_size": int(method.removeprefix("losslab_chunk"))}
        if method.startswith("losslab_budget"):  # e.g. losslab_budget0.02: memory_budget
            value = method.removeprefix("losslab_budget")
            extra = {**extra, "memory_budget": float(value) if "." in value else int(value)}

        def fn() -> Any:
            return losslab.linear_cross_entropy(h, w, y, impl=impl, **extra)
    else:
        raise ValueError(method)

    def step() -> None:
        fn().backward()
        h.grad = w.grad = None  # measured RSS before a step excludes old gradients
    return step


def worker(method: str, n: int, d: int, v: int, dtype_name: str, warmup: int,
           extra: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    h = torch.randn(n, d).mul_(0.5).to(dtype).requires_grad_()
    w = torch.randn(v, d).mul_(d**-0.5).to(dtype).requires_grad_()  # in place: W can be 4 GiB
    y = torch.randint(0, v, (n,))
    grad_bytes = (n * d + v * d) * h.element_size()
    if not warmup:
        # A process's first GEMMs at a shape make MKL allocate buffers it keeps for the rest of
        # the process (17–19 MiB of RSS at the first 1024×D×128 GEMM, any D; 0 at the second).
        # A training loop has paid that long before its loss runs, so one step on a 256-row
        # slice (same W, a fraction of the cost of a full warm-up) takes it out of the memory.
        rows = min(n, 256)
        _step(method, h[:rows].detach().clone().requires_grad_(), w, y[:rows], extra)()
    out = H.measure(_step(method, h, w, y, extra), grad_bytes=grad_bytes, warmup=warmup)
    return out


def lm_worker(method: str, path: str, filter_eps: str) -> dict[str, Any]:
    import torch

    data = torch.load(path)
    h, w, y = (data[k].requires_grad_() if k != "y" else data[k] for k in ("h", "w", "y"))
    extra: dict[str, Any] = {}
    if method == "losslab_filtered":
        extra["filter_eps"] = "auto" if filter_eps == "auto" else float(filter_eps)
        method = "losslab"
    grad_bytes = (h.numel() + w.numel()) * h.element_size()
    return H.measure(_step(method, h, w, y, extra), grad_bytes=grad_bytes, warmup=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one small shape")
    p.add_argument("--lm", action="store_true", help="only the filtered path on a trained LM")
    p.add_argument("--no-lm", action="store_true", help="skip the trained-LM part")
    p.add_argument("--lm-seconds", type=float, default=60.0, help="LM training time")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--budget", type=float, default=1800.0,
                   help="seconds for the main table (the full grid took 13 min on 2 cores)")
    p.add_argument("--shapes", default="",
                   help="comma-separated NxDxV shapes instead of the three reference shapes")
    p.add_argument("--grid", action="store_true",
                   help="the V x D grid (GRID), fp32, methods " + GRID_METHODS)
    p.add_argument("--plot", action="store_true",
                   help="with --grid: save docs/img/fused_ce_grid.png (needs matplotlib)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per worker run")
    p.add_argument("--torch-timeout", type=float, default=0.0,
                   help="seconds per run of the torch method (0: --timeout); it runs 2-20x the "
                        "floor at large V")
    p.add_argument("--once", default="",
                   help="comma-separated methods to run in the first round only (slow peers)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every method this many times, interleaved (method order repeats "
                        "round by round, so load drifts hit all methods alike); the minimum "
                        "time (other jobs on a shared machine only ever add time) and the "
                        "median memory are reported")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per worker (0: torch's default); 1 is far less noisy on "
                        "a shared machine, where a descheduled OpenMP thread stalls every op")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        os.environ["LOSSLAB_BENCH_THREADS"] = str(args.threads)
    if os.environ.get("LOSSLAB_BENCH_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["LOSSLAB_BENCH_THREADS"]))
    if args.worker:
        if args.worker[0] == "lm":
            H.worker_print(lm_worker(args.worker[1], args.worker[2], args.worker[3]))
        else:
            m, n, d, v, dt, wu = args.worker
            H.worker_print(worker(m, int(n), int(d), int(v), dt, int(wu), {}))
        return
    from _fused_ce_lm import run_lm_benchmark

    if args.lm:
        run_lm_benchmark(__file__, args.lm_seconds)
        return
    shapes = QUICK if args.quick else SHAPES
    if args.grid:
        shapes = GRID
        if args.methods == ",".join(METHODS):
            args.methods = GRID_METHODS
        if args.dtypes == "float32,bfloat16":
            args.dtypes = "float32"
    if args.shapes:
        shapes = [tuple(int(x) for x in sh.split("x")) for sh in args.shapes.split(",")]
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    print(H.machine())
    for n, d, v in shapes:
        for dt in args.dtypes.split(","):
            floor = floor_cpu = None
            methods = args.methods.split(",")
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
            once = set(args.once.split(","))
            for round_ in range(max(args.rounds, 1)):
                for m in methods:
                    if round_ and m in once:
                        continue
                    left = args.budget - (time.perf_counter() - t_start)
                    if left < 20:
                        res: dict[str, Any] = {"error": "skipped: benchmark time budget spent"}
                    else:
                        # Warm up only where it matters (compilation) or where it is cheap.
                        warm = 1 if (m == "cce" or (n, d, v) == shapes[0]) else 0
                        limit = args.torch_timeout if m == "torch" and args.torch_timeout \
                            else args.timeout
                        res = H.run_worker(__file__, [m, str(n), str(d), str(v), dt, str(warm)],
                                           timeout=min(left, limit))
                    runs[m].append(res)
            for m in methods:
                ok = [r for r in runs[m] if "error" not in r]
                row: dict[str, Any] = {"shape": f"{n}x{d}x{v}", "dtype": dt, "method": m}
                if not ok:
                    row["note"] = runs[m][0]["error"]
                else:
                    res = {k: min(r[k] for r in ok) for k in ("seconds", "cpu_seconds")}
                    res["extra_mib"] = statistics.median(r["extra_mib"] for r in ok)
                    row["seconds"] = f"{res['seconds']:.3f}"
                    row["cpu_s"] = f"{res['cpu_seconds']:.3f}"
                    row["extra_MiB"] = f"{res['extra_mib']:.1f}"
                    if m == "floor":
                        floor, floor_cpu = res["seconds"], res["cpu_seconds"]
                    if floor:
                        row["x_floor"] = f"{res['seconds'] / floor:.2f}"
                        row["x_floor_cpu"] = f"{res['cpu_seconds'] / floor_cpu:.2f}"
                row["runs"] = len(ok)
                rows.append(row)
                print(row, flush=True)
    H.print_table(rows, ["shape", "dtype", "method", "runs", "seconds", "x_floor", "cpu_s",
                         "x_floor_cpu", "extra_MiB", "note"])
    print("csv:", H.append_csv("fused_ce_grid" if args.grid else "fused_ce", rows))
    if args.grid and args.plot:
        from _fused_ce_plot import plot_grid

        print("plot:", plot_grid(rows, H.machine()["threads"]))
    if not args.no_lm and not args.grid:
        run_lm_benchmark(__file__, 20.0 if args.quick else args.lm_seconds)


if __name__ == "__main__":
    main()
