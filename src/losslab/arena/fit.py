"""The training loop both arena settings share: Adam with a one-cycle learning-rate schedule,
per-epoch curves, and a stop at the first non-finite loss (a diverged run is still recorded).

The caller supplies the batches (a generator that computes each batch's loss lazily, so the
classification and language-model settings keep their own sampling) and the per-epoch test
evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from .config import RunConfig
from .metrics import Evaluation

# One batch: (loss, correct predictions, predictions).
Batch = tuple[Tensor, int, int]
CURVES = ("train_loss", "train_acc", "test_acc", "test_ece")


def fit(
    model: nn.Module,
    config: RunConfig,
    steps_per_epoch: int,
    batches: Callable[[], Iterator[Batch]],
    evaluate_epoch: Callable[[], Evaluation],
) -> tuple[dict[str, list[float]], bool]:
    """Train ``model`` for ``config.epochs`` epochs of ``batches()``; return the curves
    (train loss and accuracy over the epoch's batches, test accuracy and ECE after it) and
    whether the loss diverged."""
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    curves: dict[str, list[float]] = {name: [] for name in CURVES}
    for _ in range(config.epochs):
        model.train()
        total, hits, count = 0.0, 0, 0
        for loss, correct, n in batches():
            if not torch.isfinite(loss):
                return curves, True
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            total += float(loss.detach()) * n
            hits += correct
            count += n
        ev = evaluate_epoch()
        curves["train_loss"].append(total / count)
        curves["train_acc"].append(hits / count)
        curves["test_acc"].append(ev.accuracy)
        curves["test_ece"].append(ev.ece)
    return curves, False
