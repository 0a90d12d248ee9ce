"""GPU readiness in one run (≤ 8 minutes on one GPU): exactness of losslab's Triton and
block paths on the device, then one timing table at a Gemma-2-2B-like head.

1. Exactness: ``linear_cross_entropy(impl="triton")`` and ``impl="chunked"`` against the
   materialised float64 reference (loss and the gradients of hidden, weight and bias under a
   non-constant upstream gradient; mean / sum / none; label smoothing, z-loss, soft cap,
   ignored rows), and ``linear_loss`` (gce, focal, kd, pld) against ``get_loss`` on the
   materialised logits, all on the GPU.
2. Timing (forward + backward, CUDA events, median of ``--repeats``) and peak memory beyond
   inputs and gradients at 8192 tokens, D = 2304, V = 256000, bf16: losslab's
   ``linear_cross_entropy`` and ``linear_loss`` (gce), Cut Cross-Entropy's ``cce`` kernel,
   Liger-Kernel's fused linear cross-entropy and PyTorch's ``F.linear_cross_entropy``;
   a method whose package is missing gets a row saying so.

Without CUDA it prints why and exits 0 (``make bench`` runs it everywhere).

    .venv/bin/python benchmarks/gpu_check.py
    .venv/bin/python benchmarks/gpu_check.py --tokens 4096 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import append_csv, print_table  # noqa: E402

import losslab  # noqa: E402
from losslab.fused.reference import reference_linear_cross_entropy  # noqa: E402

CE_CASES: list[dict[str, Any]] = [
    dict(reduction="mean"),
    dict(reduction="sum", label_smoothing=0.1, z_loss=1e-3),
    dict(reduction="none", softcap=15.0),
]
LOSSES = {"gce": {"q": 0.7}, "focal": {"gamma": 2.0}, "kd": {"temperature": 2.0}, "pld": {}}


def _inputs(n: int, d: int, v: int, device: str, dtype: torch.dtype, seed: int = 0) -> Any:
    g = torch.Generator(device="cpu").manual_seed(seed)
    h = (torch.randn(n, d, generator=g) / d ** 0.25).to(device, dtype)
    w = (torch.randn(v, d, generator=g) / d ** 0.5).to(device, dtype)
    b = (torch.randn(v, generator=g) * 0.1).to(device, dtype)
    t = torch.randint(0, v, (n,), generator=g).to(device)
    t[::11] = -100
    return h, w, b, t


def _grads(fn: Callable[..., torch.Tensor], h: Any, w: Any, b: Any) -> list[torch.Tensor]:
    leaves = [x.detach().clone().requires_grad_() for x in (h, w, b)]
    loss = fn(*leaves)
    up = torch.linspace(0.5, 1.5, loss.numel(), device=loss.device, dtype=loss.dtype)
    (loss * up.reshape(loss.shape)).sum().backward()
    return [loss.detach()] + [x.grad for x in leaves]  # type: ignore[misc]


def _worst(ours: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """Largest relative error (norm of the difference over the norm of the reference)."""
    return max(float((a.double() - r.double()).norm() / r.double().norm().clamp_min(1e-30))
               for a, r in zip(ours, ref, strict=True))


def exactness(device: str) -> list[dict[str, Any]]:
    rows = []
    h, w, b, t = _inputs(300, 64, 5003, device, torch.float32)
    for case in CE_CASES:
        ref = _grads(lambda hh, ww, bb, c=case: reference_linear_cross_entropy(
            hh.double(), ww.double(), t, bias=bb.double(), **c), h, w, b)
        for impl in ("triton", "chunked"):
            try:
                ours = _grads(lambda hh, ww, bb, c=case, i=impl: losslab.linear_cross_entropy(
                    hh, ww, t, bias=bb, impl=i, **c), h, w, b)
                err = _worst(ours, ref)
                rows.append({"check": f"linear_cross_entropy {impl} {case}",
                             "max rel err": f"{err:.1e}", "ok": err < 1e-4})
            except Exception as e:  # noqa: BLE001 - reported in the table
                rows.append({"check": f"linear_cross_entropy {impl} {case}",
                             "max rel err": type(e).__name__, "ok": False})
    th = h.flip(0) * 0.5
    tw = w * 1.5
    for name, hp in LOSSES.items():
        needs = "teacher_logits" in next(i for i in losslab.list_losses() if i.name == name
                                         ).extra_inputs
        extra = dict(teacher_hidden=th, teacher_weight=tw) if needs else {}

        def materialised(hh: Any, ww: Any, bb: Any, n: str = name, p: Any = hp,
                         x: Any = extra) -> torch.Tensor:
            z = hh.double() @ ww.double().T + bb.double()
            kw = {"teacher_logits": (x["teacher_hidden"] @ x["teacher_weight"].T).double()} if x else {}
            return losslab.get_loss(n, reduction="sum", **p)(z, t, **kw)

        ref = _grads(materialised, h, w, b)
        ours = _grads(lambda hh, ww, bb, n=name, p=hp, x=extra: losslab.linear_loss(
            hh, ww, t, n, bias=bb, reduction="sum", **x, **p), h, w, b)
        err = _worst(ours, ref)
        rows.append({"check": f"linear_loss {name}", "max rel err": f"{err:.1e}",
                     "ok": err < 1e-4})
    return rows


def _method(name: str, h: Any, w: Any, t: Any) -> Callable[[], torch.Tensor]:
    if name == "losslab linear_cross_entropy":
        return lambda: losslab.linear_cross_entropy(h, w, t)  # type: ignore[return-value]
    if name == "losslab linear_loss gce":
        return lambda: losslab.linear_loss(h, w, t, "gce")
    if name == "torch F.linear_cross_entropy":
        return lambda: F.linear_cross_entropy(h, w, t)
    if name == "cce (cut-cross-entropy)":
        from cut_cross_entropy import linear_cross_entropy as cce

        return lambda: cce(h, w, t, impl="cce")
    if name == "liger fused linear CE":
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        return lambda: liger_fused_linear_cross_entropy(h, w, t)
    if name == "materialised (h @ W.T, F.cross_entropy)":
        return lambda: F.cross_entropy((h @ w.T).float(), t)
    raise ValueError(name)


METHODS = ["materialised (h @ W.T, F.cross_entropy)", "torch F.linear_cross_entropy",
           "cce (cut-cross-entropy)", "liger fused linear CE", "losslab linear_cross_entropy",
           "losslab linear_loss gce"]


def timing(n: int, d: int, v: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name in METHODS:
        h, w, _, t = _inputs(n, d, v, "cuda", torch.bfloat16)
        h.requires_grad_()
        w.requires_grad_()
        try:
            fn = _method(name, h, w, t)
        except ImportError as e:
            rows.append({"method": name, "ms": f"not installed ({e.name})"})
            continue
        try:
            times = []
            for i in range(repeats + 1):
                h.grad = w.grad = None
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn().backward()
                end.record()
                torch.cuda.synchronize()
                grads = h.numel() * h.element_size() + w.numel() * w.element_size()
                peak = (torch.cuda.max_memory_allocated() - base - grads) / 2**20
                if i:  # the first call compiles / autotunes
                    times.append(start.elapsed_time(end))
            rows.append({"method": name, "ms": f"{statistics.median(times):.1f}",
                         "extra MiB": f"{max(peak, 0.0):.0f}"})
        except Exception as e:  # noqa: BLE001 - a failing peer is a row, not a crash
            rows.append({"method": name, "ms": f"failed: {type(e).__name__}: {str(e)[:60]}"})
        del h, w, t
        torch.cuda.empty_cache()
    logits_mib = n * v * 2 / 2**20
    for r in rows:
        if "extra MiB" in r:
            r["vs bf16 logits"] = f"{float(r['extra MiB']) / logits_mib:.2f}×"
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--dim", type=int, default=2304)
    parser.add_argument("--vocab", type=int, default=256000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run it on a machine with a GPU)")
        return 0
    start = time.perf_counter()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    checks = exactness("cuda")
    print_table(checks, ["check", "max rel err", "ok"])
    rows = timing(args.tokens, args.dim, args.vocab, args.repeats)
    print(f"\nforward + backward, {args.tokens} tokens, D={args.dim}, V={args.vocab}, bf16 "
          f"(bf16 logits would be {args.tokens * args.vocab * 2 / 2**20:.0f} MiB)")
    print_table(rows, ["method", "ms", "extra MiB", "vs bf16 logits"])
    print(f"total {time.perf_counter() - start:.0f} s")
    if not args.no_csv:
        append_csv("gpu_check", [{**r, "device": torch.cuda.get_device_name()} for r in rows])
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
