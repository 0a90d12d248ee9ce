"""Embedding losses: forward + backward time of losslab vs pytorch-metric-learning (PML).

Cases: Multi-Similarity (all pairs, and with MS mining) and NT-Xent, at batch 512 and 2048,
D = 128, float32, measured in the same process with the same inputs. MS batches hold 4 samples
per class; NT-Xent batches hold 2 views per image (labels 0, 0, 1, 1, ...). Each timing is the
median of ``--repeat`` runs after ``--warmup`` runs. PML's NT-Xent builds a
(positive pairs x negative pairs) matrix; where that would exceed ``--pml-memory-gb`` it is
skipped and the estimate is printed instead.

    .venv/bin/python benchmarks/embedding.py                 # table on stdout
    .venv/bin/python benchmarks/embedding.py --csv benchmarks/results/embedding.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import losslab.functional as LF

Case = tuple[str, int]


def _labels(kind: str, n: int) -> torch.Tensor:
    if kind == "ntxent":
        return torch.arange(n // 2).repeat_interleave(2)
    return torch.arange(n // 4).repeat_interleave(4)[torch.randperm(n)]


def _time_pair(
    fns: list[Callable[[torch.Tensor], torch.Tensor] | None], x: torch.Tensor, warmup: int, repeat: int
) -> list[float | None]:
    """Median time of each function; runs are interleaved so that load changes on a shared
    machine hit every function alike."""
    times: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + repeat):
        for k, fn in enumerate(fns):
            if fn is None:
                continue
            e = x.detach().clone().requires_grad_()
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(e).backward()
            if x.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[k].append(time.perf_counter() - start)
    return [statistics.median(t) if t else None for t in times]


def _pml_ntxent_bytes(labels: torch.Tensor) -> float:
    equal = labels.unsqueeze(0) == labels.unsqueeze(1)
    positives = int(equal.sum()) - labels.shape[0]
    negatives = int((~equal).sum())
    return 4.0 * positives * negatives * 3  # the float matrix, its mask and one temporary


def _functions(kind: str, labels: torch.Tensor) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    from pytorch_metric_learning import losses, miners

    if kind == "ms":
        pml = losses.MultiSimilarityLoss()
        return (lambda e: LF.multi_similarity_loss(e, labels)), (lambda e: pml(e, labels))
    if kind == "ms+miner":
        pml, miner = losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner(epsilon=0.1)
        return (
            lambda e: LF.multi_similarity_loss(e, labels, epsilon=0.1),
            lambda e: pml(e, labels, miner(e, labels)),
        )
    pml_nt = losses.NTXentLoss(temperature=0.07)
    return (lambda e: LF.nt_xent_loss(e, labels)), (lambda e: pml_nt(e, labels))


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    torch.manual_seed(0)
    device = torch.device(args.device)
    rows: list[dict[str, object]] = []
    for kind in ("ms", "ms+miner", "ntxent"):
        for n in args.batch:
            labels = _labels(kind, n).to(device)
            x = torch.randn(n, args.dim, device=device)
            ours, pml = _functions(kind, labels)
            need = _pml_ntxent_bytes(labels) / 2**30 if kind == "ntxent" else 0.0
            skip = need > args.pml_memory_gb
            if not skip:
                torch.testing.assert_close(ours(x), pml(x), rtol=1e-4, atol=1e-5)  # same loss
            t_ours, t_pml = _time_pair([ours, None if skip else pml], x, args.warmup, args.repeat)
            assert t_ours is not None
            rows.append({
                "loss": kind, "batch": n, "dim": args.dim, "device": str(device),
                "losslab_ms": 1e3 * t_ours,
                "pml_ms": None if t_pml is None else 1e3 * t_pml,
                "speedup": None if t_pml is None else t_pml / t_ours,
                "pml_note": f"skipped: needs ~{need:.0f} GiB" if t_pml is None else "",
            })
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| loss | batch | D | losslab fwd+bwd (ms) | PML fwd+bwd (ms) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        pml = f"{r['pml_ms']:.1f}" if r["pml_ms"] is not None else str(r["pml_note"])
        speed = f"{r['speedup']:.1f}x" if r["speedup"] is not None else "—"
        lines.append(
            f"| {r['loss']} | {r['batch']} | {r['dim']} | {r['losslab_ms']:.1f} | {pml} | {speed} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--pml-memory-gb", type=float, default=8.0)
    p.add_argument("--csv", type=Path, default=None, help="append one row per case to this CSV")
    args = p.parse_args()
    rows = run(args)
    import pytorch_metric_learning

    print(
        f"torch {torch.__version__}, pytorch-metric-learning {pytorch_metric_learning.__version__}, "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"median of {args.repeat} interleaved runs, load average {os.getloadavg()[0]:.1f}"
    )
    print(markdown(rows))
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["machine", "torch", *rows[0].keys()])
            if new:
                writer.writeheader()
            for r in rows:
                writer.writerow({"machine": platform.node(), "torch": torch.__version__, **r})


if __name__ == "__main__":
    main()
