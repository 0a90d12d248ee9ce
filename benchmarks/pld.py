"""Plackett–Luce distillation: losslab's ``pld`` against the plain PyTorch formula and CE.

The plain formula is what a user would write from the paper: a stable ``argsort`` of the
teacher with the true label forced first, ``gather``, ``logcumsumexp`` over the reversed
order, autograd for the backward. Forward + backward of each, timed alternately (plain,
losslab, CE, plain, ...) ``--rounds`` times; medians; ratios to ``F.cross_entropy``. Teachers:
N(0, 1) logits, and the same with 10 of the C classes masked at -inf (a restricted label
set). The largest difference between the two implementations' per-row losses is printed
too (float32).

    .venv/bin/python benchmarks/pld.py                    # 65536 × 1000, one thread
    .venv/bin/python benchmarks/pld.py --n 8192 --rounds 2

One CSV row per (teacher, method) goes to benchmarks/results/pld.csv.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import append_csv, machine, print_table  # noqa: E402

import losslab.functional as LF  # noqa: E402


def plain_pld(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-row PLD written directly from its formula (the reference a user would write)."""
    first = torch.zeros_like(t, dtype=torch.bool).scatter_(1, y[:, None], True)
    order = torch.argsort(t.masked_fill(first, float("inf")), dim=1, descending=True, stable=True)
    alpha = torch.softmax(t, 1).gather(1, order)
    s = z.gather(1, order)
    suffix = torch.logcumsumexp(s.flip(1), 1).flip(1)
    return (alpha * (suffix - s)).sum(1)


def _time(step: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> float:
    leaf = z.detach().requires_grad_()
    start = time.perf_counter()
    step(leaf).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=65536)
    parser.add_argument("--c", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(args.n, args.c, generator=g)
    y = torch.randint(0, args.c, (args.n,), generator=g)
    plain_t = torch.randn(args.n, args.c, generator=g)
    masked_t = plain_t.clone()
    masked_t[:, :10] = float("-inf")
    masked_t[torch.arange(args.n), y] = plain_t[torch.arange(args.n), y]  # the label stays
    load = os.getloadavg()
    rows = []
    for teacher, t in (("N(0,1)", plain_t), ("10 classes at -inf", masked_t)):
        steps: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "plain PyTorch": lambda x, t=t: plain_pld(x, y, t).mean(),
            "losslab pld": lambda x, t=t: LF.pld(x, y, teacher_logits=t),
            "F.cross_entropy": lambda x: TF.cross_entropy(x, y),
        }
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                times[name].append(_time(step, z))
        with torch.no_grad():
            diff = (plain_pld(z, y, t) - LF.pld(z, y, teacher_logits=t, reduction="none")).abs()
        ce = statistics.median(times["F.cross_entropy"])
        for name, ts in times.items():
            ms = statistics.median(ts) * 1e3
            rows.append({"teacher": teacher, "method": name, "ms": f"{ms:.1f}",
                         "x_ce": f"{ms / 1e3 / ce:.2f}",
                         "max_abs_diff": f"{diff.max().item():.2e}" if name == "losslab pld" else ""})
    print_table(rows, ["teacher", "method", "ms", "x_ce", "max_abs_diff"])
    info = machine()
    after = os.getloadavg()
    print(f"\n{args.n} × {args.c} float32, {info['machine']}, torch {info['torch']}, "
          f"{torch.get_num_threads()} thread(s), median of {args.rounds} interleaved rounds; "
          f"load average before {load[0]:.2f}, after {after[0]:.2f}")
    if not args.no_csv:
        append_csv("pld", [dict(r, n=args.n, c=args.c, threads=torch.get_num_threads()) for r in rows])


if __name__ == "__main__":
    main()
