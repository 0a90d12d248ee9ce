"""Every registered logit-space loss: forward + backward time as a ratio to F.cross_entropy.

Kinds ``logits`` (class-index targets, extra inputs generated as row-aligned random tensors)
and ``value`` (real targets over C bins) are measured at N × C float32 logits (default
N = 65536, C = 1000, the target size) with default hyperparameters. Each loss is timed
against ``F.cross_entropy`` on the same inputs in the same run, so a machine whose load
drifts still gives comparable ratios. Loss and CE are timed alternately (CE, loss, CE,
loss, ...), ``--repeat`` times each after ``--warmup``; the reported ratio is the median of
the per-pair ratios (each pair saw the same load), the times are medians too. Threads are
pinned (``--threads``, default 1: on a shared machine one thread per process is what a
core can give reliably) and the 1/5/15-minute load average is printed with the table.

    .venv/bin/python benchmarks/losses.py                     # full size, all losses
    .venv/bin/python benchmarks/losses.py --n 8192 --only dice,kd --markdown

Target: ratio ≤ 2 for each loss. One CSV row per loss goes to benchmarks/results/losses.csv.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import append_csv, machine, print_table  # noqa: E402

import losslab  # noqa: E402
from losslab._core.registry import LossInfo  # noqa: E402

Step = Callable[[torch.Tensor], torch.Tensor]


def _extra(name: str, x: torch.Tensor, g: torch.Generator) -> torch.Tensor | None:
    n = x.shape[0]
    if name in ("teacher_logits", "view_logits"):
        return torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
    if name == "aspect_logits":
        return torch.randn(n, 50, generator=g, dtype=x.dtype).to(x.device)
    if name == "aspect_targets":
        return torch.rand(n, 50, generator=g, dtype=x.dtype).to(x.device)
    if name == "sample_ids":
        return torch.arange(n, device=x.device)
    return None


def _once(step: Step, x: torch.Tensor) -> float:
    leaf = x.detach().requires_grad_()
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    step(leaf).backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _paired(
    step: Step, ce: Step, x: torch.Tensor, warmup: int, repeat: int
) -> tuple[float, float, float, float]:
    """Median times of the loss and of CE and the median and spread (max/min) of the per-pair
    ratios, measured alternately so that each pair sees the same machine load."""
    for _ in range(warmup):
        _once(ce, x)
        _once(step, x)
    ce_times, times = [], []
    for _ in range(repeat):
        ce_times.append(_once(ce, x))
        times.append(_once(step, x))
    ratios = [t / c for t, c in zip(times, ce_times, strict=True)]
    return (
        statistics.median(times),
        statistics.median(ce_times),
        statistics.median(ratios),
        max(ratios) / min(ratios),
    )


def _step(info: LossInfo, x: torch.Tensor, g: torch.Generator) -> Step | str:
    n, c = x.shape
    if info.kind == "value":
        kw: dict[str, Any] = {"v_min": -10.0, "v_max": 10.0, "num_bins": c}
        y = (torch.rand(n, generator=g) * 20 - 10).to(x.device)
        return lambda z: info.function(z, y, **kw)
    t = torch.randint(0, c, (n,), generator=g).to(x.device)
    extras = {}
    for name in info.extra_inputs:
        value = _extra(name, x, g)
        if value is None:
            return f"no generator for extra input {name!r}"
        extras[name] = value
    return lambda z: info.function(z, t, **extras)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=65536)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed pairs per loss (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    parser.add_argument("--only", default="", help="comma-separated registry names")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    load_before = os.getloadavg()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.c, generator=g).to(args.device)
    t_ce = torch.randint(0, args.c, (args.n,), generator=g).to(args.device)
    infos = [i for i in losslab.list_losses() if i.kind in ("logits", "value")]
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        unknown = wanted - {i.name for i in infos}
        if unknown:
            parser.error(f"--only: no logit/value loss named {', '.join(sorted(unknown))}")
        infos = [i for i in infos if i.name in wanted]

    rows: list[dict[str, Any]] = []
    for info in infos:
        step = _step(info, x, g)
        row: dict[str, Any] = {
            "loss": info.name,
            "family": info.family,
            "kind": info.kind,
            "shape": f"{args.n}x{args.c}",
            "device": args.device,
        }
        if isinstance(step, str):
            rows.append({**row, "note": step})
            continue
        try:
            sec, ce, ratio, spread = _paired(
                step, lambda z: TF.cross_entropy(z, t_ce), x, args.warmup, args.repeat
            )
        except Exception as err:  # report and go on: one broken loss must not hide the rest
            rows.append({**row, "note": f"error: {type(err).__name__}: {str(err)[:80]}"})
            continue
        rows.append(
            {
                **row,
                "ms": f"{sec * 1e3:.1f}",
                "ce_ms": f"{ce * 1e3:.1f}",
                "ratio": f"{ratio:.2f}",
                "spread": f"{spread:.2f}",
                "within_2x": "yes" if ratio <= 2.0 else "NO",
            }
        )
        print(
            f"{info.name:24s} {sec * 1e3:9.1f} ms  CE {ce * 1e3:8.1f} ms  ×{ratio:.2f} "
            f"(max/min {spread:.2f})",
            flush=True,
        )

    load_after = os.getloadavg()
    m = machine()
    loads = "{:.2f} / {:.2f} / {:.2f}"
    header = (
        f"{args.n} × {args.c} float32 on {args.device}, {m['machine']}, torch {m['torch']}, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeat} interleaved pairs; "
        f"load average (1/5/15 min) before {loads.format(*load_before)}, "
        f"after {loads.format(*load_after)}"
    )
    columns = ["loss", "family", "kind", "ms", "ce_ms", "ratio", "spread", "within_2x", "note"]
    print()
    print(header)
    print_table(rows, columns)
    if args.markdown:
        print(f"\n{header}\n")
        print("| loss | family | ms | CE ms | ratio | max/min |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            if "ratio" in r:
                print(
                    f"| `{r['loss']}` | {r['family']} | {r['ms']} | {r['ce_ms']} | "
                    f"{r['ratio']} | {r['spread']} |"
                )
            else:
                print(f"| `{r['loss']}` | {r['family']} | — | — | {r.get('note', '')} | |")
    if not args.no_csv:
        append_csv("losses", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
