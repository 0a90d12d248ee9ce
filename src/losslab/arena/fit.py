"""The training loop both arena settings share: Adam with a one-cycle learning-rate schedule,
per-epoch curves, and a stop at the first non-finite loss (a diverged run is still recorded).

The caller supplies the batches (a generator that computes each batch's loss lazily, so the
classification and language-model settings keep their own sampling) and the per-epoch test
evaluation. :func:`train_classifier` is the classification setting's model, loss and batches
on given training arrays; the final run and the cleaning's cross-validation folds use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from .._core.registry import loss_info
from .config import RunConfig, build_loss
from .metrics import Evaluation
from .user_models import build_run_model

# One batch: (loss, correct predictions, predictions).
Batch = tuple[Tensor, int, int]
CURVES = ("train_loss", "train_acc", "test_acc", "test_ece")


def fit(
    model: nn.Module,
    config: RunConfig,
    steps_per_epoch: int,
    batches: Callable[[], Iterator[Batch]],
    evaluate_epoch: Callable[[], Evaluation] | None,
) -> tuple[dict[str, list[float]], bool]:
    """Train ``model`` for ``config.epochs`` epochs of ``batches()``; return the curves
    (train loss and accuracy over the epoch's batches, test accuracy and ECE after it; no test
    curves when ``evaluate_epoch`` is None) and whether the loss diverged."""
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
        curves["train_loss"].append(total / count)
        curves["train_acc"].append(hits / count)
        if evaluate_epoch is not None:
            ev = evaluate_epoch()
            curves["test_acc"].append(ev.accuracy)
            curves["test_ece"].append(ev.ece)
    return curves, False


def train_classifier(
    config: RunConfig,
    x: Tensor,
    y: Tensor,
    num_classes: int,
    seed: int,
    evaluate_epoch: Callable[[nn.Module], Evaluation] | None = None,
) -> tuple[nn.Module, dict[str, list[float]], bool]:
    """Build ``config``'s model and loss (through the registry) and train them on ``(x, y)``;
    ``seed`` fixes the initialisation and the batch order. Returns the model, the curves and
    whether the loss diverged. A loss that takes ``sample_ids`` gets row indices of ``x``."""
    n = len(y)
    torch.manual_seed(seed)
    model = build_run_model(config, tuple(x.shape[1:]), num_classes)
    loss_fn = build_loss(config.loss, n)
    wants_ids = "sample_ids" in loss_info(config.loss.name).extra_inputs
    gen = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[Batch]:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, config.batch_size):
            ids = order[i : i + config.batch_size]
            logits = model(x[ids])
            extra = {"sample_ids": ids} if wants_ids else {}
            hits = int((logits.detach().argmax(1) == y[ids]).sum())
            yield loss_fn(logits, y[ids], **extra), hits, len(ids)

    steps = -(-n // config.batch_size)
    per_epoch = None if evaluate_epoch is None else (lambda: evaluate_epoch(model))
    curves, diverged = fit(model, config, steps, batches, per_epoch)
    return model, curves, diverged
