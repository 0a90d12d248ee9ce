"""Trainer runs: gradient accumulation gives the full-batch gradient, through the patched
model and through compute_loss_func."""

from __future__ import annotations

import pytest
import torch

from .hf_models import VOCAB, build

hf = pytest.importorskip("losslab.integrations.transformers")
transformers = pytest.importorskip("transformers")


def _examples(n: int = 4, t: int = 10):
    g = torch.Generator().manual_seed(3)
    rows = []
    for i in range(n):
        ids = torch.randint(1, VOCAB, (t,), generator=g)
        labels = ids.clone()
        labels[: 2 * i] = -100  # unequal numbers of scored tokens per example
        rows.append({"input_ids": ids, "attention_mask": torch.ones(t, dtype=torch.long),
                     "labels": labels})
    return rows


class _KeepGradients(transformers.TrainerCallback):
    def __init__(self):
        self.grads = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
                      if p.grad is not None}


def _trainer_gradients(model, tmp_path, accumulation, **trainer_kwargs):
    keep = _KeepGradients()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4 // accumulation,
        gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=1e-3,
        max_grad_norm=0.0, report_to="none", use_cpu=True, save_strategy="no",
        logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_examples(),
                                   callbacks=[keep], **trainer_kwargs)
    trainer.train()
    return keep.grads


def _full_batch_gradients(model, loss_function=None):
    batch = {k: torch.stack([r[k] for r in _examples()]) for k in ("input_ids", "labels")}
    model.train()
    if loss_function is not None:
        model.loss_function = loss_function
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


# transformers 5 counts num_items_in_batch over the shifted labels of a ...ForCausalLM, so an
# accumulated step equals the full batch; 4.x counted every label (one token too many per
# sequence), and there the patched model must equal what the stock Trainer does instead.
COUNTS_SHIFTED = int(transformers.__version__.split(".")[0]) >= 5


def _reference(tmp_path, loss_function=None, **trainer_kwargs):
    if COUNTS_SHIFTED:
        return _full_batch_gradients(build("llama"), loss_function)
    model = build("llama")
    if loss_function is not None:
        model.loss_function = loss_function
    return _trainer_gradients(model, tmp_path / "stock", accumulation=2)


def _assert_close(ours, reference):
    assert ours.keys() == reference.keys()
    for name, g in reference.items():
        torch.testing.assert_close(ours[name], g, atol=1e-5, rtol=1e-5, msg=name)


def test_accumulating_two_patched_half_batches_gives_the_full_batch_gradient(tmp_path):
    reference = _reference(tmp_path)
    model = hf.patch_causal_lm(build("llama"))
    _assert_close(_trainer_gradients(model, tmp_path, accumulation=2), reference)


@pytest.mark.parametrize("family", ["gpt2", "mixtral"])
def test_patched_accumulation_follows_the_stock_trainer(family, tmp_path):
    # transformers counts num_items_in_batch over unshifted labels for models whose class
    # name does not end in ForCausalLM (GPT-2's GPT2LMHeadModel): the patched model must
    # reproduce what the stock model does under Trainer, not a different normalisation.
    stock = _trainer_gradients(build(family), tmp_path / "stock", accumulation=2)
    ours = _trainer_gradients(hf.patch_causal_lm(build(family)), tmp_path / "ours", accumulation=2)
    _assert_close(ours, stock)


def test_compute_loss_func_with_accumulation_gives_the_full_batch_gradient(tmp_path):
    reference = _reference(tmp_path)
    grads = _trainer_gradients(build("llama"), tmp_path, accumulation=2,
                               compute_loss_func=hf.compute_loss_func("ce"))
    _assert_close(grads, reference)


def test_a_patched_non_ce_loss_accumulates_like_its_materialised_form(tmp_path):
    reference = _reference(tmp_path, hf.causal_lm_loss("gce", q=0.6))
    model = hf.patch_causal_lm(build("llama"), "gce", q=0.6)
    _assert_close(_trainer_gradients(model, tmp_path, accumulation=2), reference)
