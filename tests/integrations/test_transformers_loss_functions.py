"""causal_lm_loss, sequence_classification_loss and compute_loss_func against transformers'
own loss functions, and the logit-transform record of the patch."""

from __future__ import annotations

import pytest
import torch

from .hf_models import VOCAB, build

hf = pytest.importorskip("losslab.integrations.transformers")
transformers = pytest.importorskip("transformers")

import losslab  # noqa: E402
from losslab.integrations.transformers._head import DeferredLogits, logit_transform  # noqa: E402


def _logits_labels(seed=0, b=3, t=7, v=11):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, t, v, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, v, (b, t), generator=g)
    y[0, :4] = -100
    return z, y


@pytest.mark.parametrize("num_items", [None, 9, torch.tensor(13)])
def test_causal_lm_ce_equals_transformers_for_causal_lm_loss(num_items):
    from transformers.loss.loss_utils import ForCausalLMLoss

    z, y = _logits_labels()
    ours = hf.causal_lm_loss("ce")(z, y, vocab_size=11, num_items_in_batch=num_items)
    stock = ForCausalLMLoss(z, y, vocab_size=11, num_items_in_batch=num_items)
    torch.testing.assert_close(ours, stock.to(ours.dtype))


def test_causal_lm_loss_is_the_registered_loss_on_shifted_labels():
    z, y = _logits_labels()
    shifted = torch.nn.functional.pad(y, (0, 1), value=-100)[..., 1:]
    expected = losslab.get_loss("gce", q=0.4)(z.reshape(-1, 11), shifted.reshape(-1))
    got = hf.causal_lm_loss("gce", q=0.4)(z, y, 11)
    torch.testing.assert_close(got, expected)
    kept = int((shifted != -100).sum())
    summed = hf.causal_lm_loss("gce", q=0.4)(z, y, 11, num_items_in_batch=2 * kept)
    torch.testing.assert_close(summed, expected / 2)
    explicit = hf.causal_lm_loss("gce", q=0.4)(z, y, 11, shift_labels=y)
    torch.testing.assert_close(explicit, losslab.get_loss("gce", q=0.4)(
        z.reshape(-1, 11), y.reshape(-1)))


def test_sequence_classification_loss_in_a_model():
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=1, num_labels=4, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.LlamaForSequenceClassification(cfg)
    ids = torch.randint(1, VOCAB, (5, 6))
    labels = torch.tensor([0, 3, 1, 2, 3])
    stock = model(input_ids=ids, labels=labels)
    model.loss_function = hf.sequence_classification_loss("ce")
    torch.testing.assert_close(model(input_ids=ids, labels=labels).loss, stock.loss)
    model.loss_function = hf.sequence_classification_loss("focal", gamma=2.0)
    focal = model(input_ids=ids, labels=labels).loss
    torch.testing.assert_close(focal, losslab.get_loss("focal", gamma=2.0)(stock.logits, labels))
    model.config.problem_type = "multi_label_classification"
    with pytest.raises(ValueError, match="single-label.*multi_label_classification"):
        model(input_ids=ids, labels=labels.float())


@pytest.mark.parametrize("task", ["causal_lm", "token_classification", "sequence_classification"])
def test_compute_loss_func_tasks(task):
    z, y = _logits_labels()
    if task == "sequence_classification":
        z, y = z[:, 0], y[:, 1]
    fn = hf.compute_loss_func("sce", task=task)
    target = torch.nn.functional.pad(y, (0, 1), value=-100)[..., 1:] if task == "causal_lm" else y
    expected = losslab.get_loss("sce")(z.reshape(-1, 11), target.reshape(-1))
    torch.testing.assert_close(fn({"logits": z}, y), expected)
    torch.testing.assert_close(fn((z,), y, num_items_in_batch=int((target != -100).sum())),
                               expected)


def test_loss_function_errors():
    with pytest.raises(ValueError, match="DistillationTrainer"):
        hf.causal_lm_loss("kd")
    with pytest.raises(ValueError, match="couples the rows"):
        hf.causal_lm_loss("tversky-batch")
    with pytest.raises(ValueError, match="takes embeddings"):
        hf.causal_lm_loss("ms")
    with pytest.raises(TypeError, match="no hyperparameter 'p'"):
        hf.causal_lm_loss("gce", p=3)
    with pytest.raises(ValueError, match="q must lie"):
        hf.compute_loss_func("gce", q=3.0)
    with pytest.raises(ValueError, match="task must be one of"):
        hf.compute_loss_func("ce", task="regression")
    with pytest.raises(TypeError, match="reduction"):
        hf.causal_lm_loss("ce", reduction="sum")


def _record(ops):
    x = DeferredLogits.make(torch.zeros(2, 3, 5))
    for op in ops:
        x = op(x)
    return x


@pytest.mark.parametrize("ops,scale,cap", [
    ([], 1.0, None),
    ([lambda x: x.float()], 1.0, None),
    ([lambda x: x * 0.25], 0.25, None),
    ([lambda x: 3.0 * x, lambda x: x / 2.0], 1.5, None),
    ([lambda x: x / 30.0, torch.tanh, lambda x: x * 30.0], 1.0, 30.0),  # Gemma 2
    ([lambda x: x.float() / 30.0, lambda x: x.tanh(), lambda x: x * 30.0], 1.0, 30.0),
    ([lambda x: x * 2.0, lambda x: x / 4.0, torch.tanh, lambda x: x * 4.0], 2.0, 4.0),
])
def test_logit_transform_reads_scales_and_soft_caps(ops, scale, cap):
    got = logit_transform(_record(ops), "M")
    assert got.scale == pytest.approx(scale) and got.softcap == cap


@pytest.mark.parametrize("ops,word", [
    ([lambda x: x[..., :3]], "getitem"),
    ([lambda x: x + 1.0], "add"),
    ([torch.tanh, lambda x: x * 2.0, torch.tanh], "tanh → ×2 → tanh"),
    ([lambda x: x * torch.ones(1, requires_grad=True)], "mul"),  # a learnable scale
])
def test_unknown_logit_transforms_are_refused(ops, word):
    with pytest.raises(ValueError, match="cannot fuse"):
        logit_transform(_record(ops), "M")


def test_a_model_with_an_unknown_logit_transform_fails_clearly():
    model = build("llama").train()
    hf.patch_causal_lm(model)
    # A family that pads its vocabulary and slices the logits after the head.
    model.lm_head.register_forward_hook(lambda module, args, logits: logits[..., : VOCAB - 1])
    ids = torch.randint(1, VOCAB, (1, 5))
    with pytest.raises(ValueError, match="LlamaForCausalLM applies an operation to its logits"):
        model(input_ids=ids, labels=ids)
