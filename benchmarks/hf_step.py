"""One training step of a tiny Llama with a 32k vocabulary: stock transformers against the
same model patched by ``losslab.integrations.transformers.patch_causal_lm``.

A step is forward + backward + AdamW update on ``--batch × --tokens`` tokens (default
4 × 512 = 2048). Each method runs in a fresh process (see ``_harness``); memory is the peak
beyond the inputs, parameters, optimizer state and gradients (all allocated during warm-up),
so it is what the step itself needs — for the stock model chiefly the (tokens × V) logits,
their log-softmax and their gradient.

    .venv/bin/python benchmarks/hf_step.py                 # 2 threads
    .venv/bin/python benchmarks/hf_step.py --threads 1

One CSV row per method goes to benchmarks/results/hf_step.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import append_csv, machine, measure, print_table, run_worker, worker_print  # noqa: E402

METHODS = {
    "stock": None,
    "patched ce": ("ce", {}),
    "patched ce, 256-row blocks": ("ce", {"chunk_size": 256}),
    "patched gce": ("gce", {"q": 0.7}),
    "patched focal": ("focal", {"gamma": 2.0}),
}


def worker(method: str, batch: int, tokens: int, vocab: int, hidden: int, threads: int,
           repeats: int) -> None:
    import torch
    import transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=hidden,
                                   intermediate_size=2 * hidden, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=4,
                                   max_position_embeddings=tokens)
    model = transformers.LlamaForCausalLM(cfg).train()
    spec = METHODS[method]
    if spec is not None:
        from losslab.integrations.transformers import patch_causal_lm

        patch_causal_lm(model, spec[0], **spec[1])
    ids = torch.randint(0, vocab, (batch, tokens))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> float:
        opt.zero_grad(set_to_none=False)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        return float(loss)

    # Gradients exist after warm-up and are zeroed in place, so they are part of the baseline.
    result = measure(step, grad_bytes=0, warmup=1, repeats=repeats)
    worker_print({"loss": step(), **result})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.method, args.batch, args.tokens, args.vocab, args.hidden, args.threads,
               args.repeats)
        return
    n = args.batch * args.tokens
    logits_mib = n * args.vocab * 4 / 2**20
    print(f"tiny Llama, {n} tokens, V={args.vocab}, D={args.hidden}, {args.threads} thread(s); "
          f"fp32 logits = {logits_mib:.0f} MiB; {machine()['machine']}")
    rows = []
    for method in args.methods:
        res = run_worker(__file__, ["--method", method, "--batch", str(args.batch), "--tokens",
                                    str(args.tokens), "--vocab", str(args.vocab), "--hidden",
                                    str(args.hidden), "--threads", str(args.threads),
                                    "--repeats", str(args.repeats)], timeout=900)
        if "error" in res:
            rows.append({"method": method, "step s": res["error"]})
            continue
        rows.append({"method": method, "step s": f"{res['seconds']:.3f}",
                     "cpu s": f"{res['cpu_seconds']:.3f}",
                     "extra MiB": f"{res['extra_mib']:.0f}",
                     "vs logits": f"{res['extra_mib'] / logits_mib:.2f}×",
                     "loss": f"{res['loss']:.4f}"})
    base = next((r for r in rows if r["method"] == "stock" and "extra MiB" in r), None)
    for r in rows:
        if base is not None and "extra MiB" in r:
            r["time vs stock"] = f"{float(r['step s']) / float(base['step s']):.2f}×"
            r["cpu vs stock"] = f"{float(r['cpu s']) / float(base['cpu s']):.2f}×"
            r["memory saved MiB"] = f"{float(base['extra MiB']) - float(r['extra MiB']):.0f}"
    print_table(rows, ["method", "step s", "time vs stock", "cpu s", "cpu vs stock", "extra MiB", "vs logits",
                       "memory saved MiB", "loss"])
    if not args.no_csv:
        append_csv("hf_step", [{**r, "tokens": n, "vocab": args.vocab, "hidden": args.hidden}
                               for r in rows])


if __name__ == "__main__":
    main()
