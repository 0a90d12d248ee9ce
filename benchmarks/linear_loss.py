"""linear_loss: forward+backward time and extra memory of registered losses fused with the head.

Methods (each in a fresh subprocess; time = one forward+backward; memory = peak RSS beyond
inputs and gradients, see _harness.py, also given as a fraction of the (N, V) logits' bytes):

* floor         the three GEMMs alone (logits, ∂h, ∂W) on materialised (N, V) matrices
* materialised  ``get_loss(loss)(hidden @ W.T, y)`` (teacher logits materialised likewise)
* losslab       ``losslab.linear_loss(hidden, W, y, loss)`` with its default block
* losslab_chunk<c>, losslab_group<r>   a block of c rows / loss calls of r rows per thread (tuning)

The memory column is exact only with ``--malloc pinned`` (see ``_harness.run_worker``); the
default ``--malloc default`` times with glibc's adaptive allocator, as a training process runs.

kd and pld also make the teacher's logits (teacher D = student D here): a fourth GEMM that
the three-GEMM floor does not contain.

    .venv/bin/python benchmarks/linear_loss.py --shape 2048x512x32768   # time (docs table)
    .venv/bin/python benchmarks/linear_loss.py --malloc pinned --threads 1 --rounds 1 \
        --methods floor,losslab                                         # exact memory
    .venv/bin/python benchmarks/linear_loss.py --quick               # one small shape
    .venv/bin/python benchmarks/linear_loss.py --losses gce --methods floor,losslab_chunk64 \
        --threads 1 --rounds 3
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

SHAPE = (4096, 512, 32768)
QUICK = (512, 128, 8192)
LOSSES = ["gce", "focal", "kd", "pld"]
METHODS = ["floor", "materialised", "losslab"]
TEACHER = ("kd", "pld")


def _step(method: str, loss: str, h: Any, w: Any, y: Any, teacher: dict[str, Any]) -> Any:
    import torch

    import losslab
    from losslab.fused import loss_blocks

    if method == "floor":
        def step() -> None:
            with torch.no_grad():
                z = h @ w.T
                h.grad = z @ w
                w.grad = z.T @ h
            h.grad = w.grad = None
        return step
    if method == "materialised":
        fn = losslab.get_loss(loss)

        def run() -> Any:
            extra = {}
            if teacher:
                extra["teacher_logits"] = teacher["teacher_hidden"] @ teacher["teacher_weight"].T
            return fn(h @ w.T, y, **extra)
    elif method.startswith("losslab"):
        kw: dict[str, Any] = {}
        if method.startswith("losslab_chunk"):
            kw["chunk_size"] = int(method.removeprefix("losslab_chunk"))
        elif method.startswith("losslab_group"):
            # r rows per loss call and thread (at least 8): r·V logits per group and thread
            loss_blocks._LOSS_GROUP_ELEMENTS = int(method.removeprefix("losslab_group")) * w.shape[0]

        def run() -> Any:
            return losslab.linear_loss(h, w, y, loss, **teacher, **kw)
    else:
        raise ValueError(method)

    def step() -> None:
        run().backward()
        h.grad = w.grad = None  # measured RSS before a step excludes old gradients
    return step


def worker(method: str, loss: str, n: int, d: int, v: int) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    h = (torch.randn(n, d) * 0.5).requires_grad_()
    w = (torch.randn(v, d) / d**0.5).requires_grad_()
    y = torch.randint(0, v, (n,))
    teacher = {}
    if loss in TEACHER:
        teacher = {"teacher_hidden": torch.randn(n, d) * 0.5,
                   "teacher_weight": torch.randn(v, d) / d**0.5}
    grad_bytes = (n * d + v * d) * h.element_size()
    return H.measure(_step(method, loss, h, w, y, teacher), grad_bytes=grad_bytes, warmup=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one small shape")
    p.add_argument("--shape", default="", help="NxDxV instead of 4096x512x32768")
    p.add_argument("--losses", default=",".join(LOSSES))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    p.add_argument("--rounds", type=int, default=2,
                   help="interleaved rounds (method order repeats, so load drifts hit all "
                        "methods alike); medians")
    p.add_argument("--budget", type=float, default=3600.0, help="seconds for the whole table")
    p.add_argument("--malloc", choices=["default", "pinned"], default="default",
                   help="glibc's adaptive malloc (time as in a training process) or the "
                        "harness's pinned mmap threshold (exact memory column, but every "
                        "fresh temporary above 128 KiB page-faults: slower)")
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(int(os.environ["LOSSLAB_BENCH_THREADS"]))
        m, loss, n, d, v = args.worker
        H.worker_print(worker(m, loss, int(n), int(d), int(v)))
        return
    n, d, v = QUICK if args.quick else SHAPE
    if args.shape:
        n, d, v = (int(x) for x in args.shape.split("x"))
    logits_mib = n * v * 4 / 2**20
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    print(H.machine(), flush=True)
    for threads in args.threads.split(","):
        os.environ["LOSSLAB_BENCH_THREADS"] = threads
        methods = args.methods.split(",")
        cases = [(loss, m) for loss in args.losses.split(",") for m in methods
                 if m != "floor"]
        if "floor" in methods:
            cases.insert(0, ("-", "floor"))
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in cases}
        for _ in range(max(args.rounds, 1)):
            for loss, m in cases:
                left = args.budget - (time.perf_counter() - t_start)
                res: dict[str, Any] = ({"error": "skipped: benchmark time budget spent"}
                                       if left < 20 else
                                       H.run_worker(__file__, [m, loss, str(n), str(d), str(v)],
                                                    timeout=min(left, 600),
                                                    pin_malloc=args.malloc == "pinned"))
                runs[(loss, m)].append(res)
        floor = floor_cpu = None
        for loss, m in cases:
            ok = [r for r in runs[(loss, m)] if "error" not in r]
            row: dict[str, Any] = {"shape": f"{n}x{d}x{v}", "threads": threads, "loss": loss,
                                   "method": m, "malloc": args.malloc, "runs": len(ok)}
            if not ok:
                row["note"] = runs[(loss, m)][0]["error"]
            else:
                res = {k: statistics.median(r[k] for r in ok)
                       for k in ("seconds", "cpu_seconds", "extra_mib")}
                row["seconds"] = f"{res['seconds']:.3f}"
                row["cpu_s"] = f"{res['cpu_seconds']:.3f}"
                row["extra_MiB"] = f"{res['extra_mib']:.1f}"
                row["extra_of_logits"] = f"{100 * res['extra_mib'] / logits_mib:.1f}%"
                row["spread"] = f"{min(r['seconds'] for r in ok):.2f}-" \
                                f"{max(r['seconds'] for r in ok):.2f}"
                if m == "floor":
                    floor, floor_cpu = res["seconds"], res["cpu_seconds"]
                if floor and floor_cpu:
                    row["x_floor"] = f"{res['seconds'] / floor:.2f}"
                    row["x_floor_cpu"] = f"{res['cpu_seconds'] / floor_cpu:.2f}"
            rows.append(row)
            print(row, flush=True)
    H.print_table(rows, ["shape", "threads", "loss", "method", "malloc", "runs", "seconds",
                         "spread",
                         "x_floor", "cpu_s", "x_floor_cpu", "extra_MiB", "extra_of_logits",
                         "note"])
    print("csv:", H.append_csv("linear_loss", rows))


if __name__ == "__main__":
    main()
