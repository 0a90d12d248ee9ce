"""patch_causal_lm against the stock transformers loss, family by family."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from .hf_models import FAMILIES, VOCAB, build

hf = pytest.importorskip("losslab.integrations.transformers")

# The allocation probe of the fused tests (tests/fused is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fused"))
from allocation_probe import LargestAllocation  # noqa: E402


def _batch(seed: int = 1, b: int = 2, t: int = 9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (b, t), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100  # a prompt that is not scored
    return ids, labels


def _loss_and_grads(model, **kwargs):
    model.zero_grad(set_to_none=True)
    out = model(**kwargs)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def _assert_same_grads(ours, stock):
    assert ours.keys() == stock.keys()
    for name, g in stock.items():
        torch.testing.assert_close(ours[name], g, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_patched_loss_and_every_gradient_equal_the_stock_model(family):
    model = build(family).train()
    ids, labels = _batch()
    stock, stock_grads = _loss_and_grads(model, input_ids=ids, labels=labels)
    assert stock.logits.shape == (2, 9, VOCAB)
    hf.patch_causal_lm(model)
    ours, our_grads = _loss_and_grads(model, input_ids=ids, labels=labels)
    assert ours.logits is None
    torch.testing.assert_close(ours.loss, stock.loss, atol=1e-5, rtol=1e-6)
    _assert_same_grads(our_grads, stock_grads)
    if family == "mixtral":
        assert ours.aux_loss is not None and float(ours.aux_loss) > 0
    hf.unpatch_causal_lm(model)
    again = model(input_ids=ids, labels=labels)
    assert again.logits.shape == (2, 9, VOCAB)
    torch.testing.assert_close(again.loss, stock.loss)


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])
def test_num_items_in_batch_and_shift_labels_follow_transformers(family):
    model = build(family).train()
    ids, labels = _batch()
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[..., 1:].contiguous()
    cases = [dict(num_items_in_batch=torch.tensor(23)), dict(shift_labels=shifted),
             dict(shift_labels=shifted, num_items_in_batch=11)]
    stock = [_loss_and_grads(model, input_ids=ids, labels=labels, **kw) for kw in cases]
    hf.patch_causal_lm(model)
    for kw, (s_out, s_grads) in zip(cases, stock, strict=False):
        out, grads = _loss_and_grads(model, input_ids=ids, labels=labels, **kw)
        torch.testing.assert_close(out.loss, s_out.loss, atol=1e-5, rtol=1e-6)
        _assert_same_grads(grads, s_grads)


@pytest.mark.parametrize("family", ["llama", "gemma2", "mixtral"])
def test_generation_is_unchanged_while_patched(family):
    model = build(family).eval()
    # transformers 4.57's generate() fails on Mixtral when router logits are returned
    # (load_balancing_loss_func with a cache), patched or not: generate without them.
    model.config.output_router_logits = False
    ids, _ = _batch()
    expected = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
    hf.patch_causal_lm(model, "gce", q=0.5)
    model.train()
    model.eval()
    got = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(got, expected)


def test_evaluation_keeps_logits_unless_train_only_is_false():
    model = build("llama")
    ids, labels = _batch()
    hf.patch_causal_lm(model)
    model.eval()
    with torch.no_grad():
        stock = model(input_ids=ids, labels=labels)
        assert stock.logits is not None
        hf.patch_causal_lm(model, train_only=False)
        fused = model(input_ids=ids, labels=labels)
    assert fused.logits is None
    torch.testing.assert_close(fused.loss, stock.loss, atol=1e-6, rtol=1e-6)
    assert model(input_ids=ids).logits.shape == (2, 9, VOCAB)  # no labels: stock


def test_patch_is_per_instance_idempotent_and_reversible():
    a, b = build("llama"), build("llama")
    ids, labels = _batch()
    a.train()
    b.train()
    forward_before = a.forward
    hf.patch_causal_lm(a, "gce", q=0.5)
    hf.patch_causal_lm(a, "gce", q=0.5)
    assert hf.is_patched(a) and not hf.is_patched(b)
    assert b(input_ids=ids, labels=labels).logits is not None
    hf.unpatch_causal_lm(a)
    assert not hf.is_patched(a)
    assert "forward" not in a.__dict__ and "_loss_function" not in a.__dict__
    assert "forward" not in a.get_output_embeddings().__dict__
    assert a.forward.__func__ is forward_before.__func__
    hf.unpatch_causal_lm(a)  # unpatching twice is harmless


def test_the_output_layer_is_replaced_only_during_a_fused_step():
    model = build("llama").train()
    ids, labels = _batch()
    hf.patch_causal_lm(model)
    head = model.lm_head
    assert "forward" not in head.__dict__
    seen = []
    head.forward = lambda x: seen.append(x.shape) or torch.nn.Linear.forward(head, x)  # set after patching
    out = model(input_ids=ids, labels=labels)
    assert out.logits is None and seen == []  # the fused step captured the hidden states instead
    assert model(input_ids=ids).logits.shape == (2, 9, VOCAB) and len(seen) == 1
    replaced = head.forward
    with pytest.raises(ValueError, match="labels hold token"):
        model(input_ids=ids, labels=torch.full_like(labels, VOCAB + 3))
    assert head.forward is replaced and len(seen) == 1  # put back after a failed step too
    hf.unpatch_causal_lm(model)
    assert head.forward is replaced  # unpatching keeps what was set on the layer since


def test_overlapping_captures_of_one_layer_fail_clearly_and_leave_it_as_it_was():
    from losslab.integrations.transformers._head import HeadCapture

    head = torch.nn.Linear(4, 6)
    first = HeadCapture(head)
    with first, pytest.raises(RuntimeError, match="already capturing its input"):
        HeadCapture(head).__enter__()  # a second step of the same model, e.g. another thread
    assert "forward" not in head.__dict__  # the layer is back to its class's forward
    assert head(torch.ones(2, 4)).shape == (2, 6)


def test_repatching_changes_the_loss():
    model = build("llama").train()
    ids, labels = _batch()
    hf.patch_causal_lm(model, "ce")
    ce = model(input_ids=ids, labels=labels).loss
    hf.patch_causal_lm(model, "ce", label_smoothing=0.3)
    smoothed = model(input_ids=ids, labels=labels).loss
    assert float(smoothed) != pytest.approx(float(ce))


def test_return_dict_false_gives_a_tuple_without_logits():
    model = build("llama").train()
    ids, labels = _batch()
    stock = model(input_ids=ids, labels=labels).loss
    hf.patch_causal_lm(model)
    out = model(input_ids=ids, labels=labels, return_dict=False)
    assert isinstance(out, tuple)
    torch.testing.assert_close(out[0], stock, atol=1e-6, rtol=1e-6)
    assert not any(isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[-1] in (0, VOCAB)
                   for x in out[1:])


@pytest.mark.parametrize("loss,hp", [("gce", dict(q=0.5)), ("focal", dict(gamma=2.0)),
                                     ("dco", dict(n=4.0))])
def test_other_losses_equal_the_materialised_loss(loss, hp):
    model = build("gemma2").train()
    ids, labels = _batch()
    fn = hf.causal_lm_loss(loss, **hp)
    model.loss_function = fn
    stock, stock_grads = _loss_and_grads(model, input_ids=ids, labels=labels)
    del model._loss_function
    hf.patch_causal_lm(model, loss, **hp)
    ours, grads = _loss_and_grads(model, input_ids=ids, labels=labels)
    torch.testing.assert_close(ours.loss, stock.loss, atol=1e-5, rtol=1e-5)
    _assert_same_grads(grads, stock_grads)


def test_a_patched_training_step_never_allocates_tokens_by_vocabulary():
    import transformers

    torch.manual_seed(0)
    vocab, b, t = 2000, 2, 64
    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=1, max_position_embeddings=t)
    model = transformers.LlamaForCausalLM(cfg).train()
    ids = torch.randint(0, vocab, (b, t))
    hf.patch_causal_lm(model, chunk_size=16)
    with LargestAllocation() as mode:
        model(input_ids=ids, labels=ids).loss.backward()
    assert mode.largest < b * t * vocab / 4, mode.largest
    assert mode.largest <= max(16 * vocab, vocab * 16), mode.largest


def test_clear_errors():
    import transformers

    model = build("llama").train()
    ids, labels = _batch()
    with pytest.raises(ValueError, match="unknown loss"):
        hf.patch_causal_lm(model, "no-such-loss")
    with pytest.raises(TypeError, match="no option 'temperature'"):
        hf.patch_causal_lm(model, "ce", temperature=2.0)
    with pytest.raises(ValueError, match="teacher"):
        hf.patch_causal_lm(model, "kd")
    with pytest.raises(ValueError, match="couples the rows|batch"):
        hf.patch_causal_lm(model, "dice-batch")
    assert not hf.is_patched(model)
    hf.patch_causal_lm(model)
    bad = labels.clone()
    bad[1, 4] = VOCAB + 3
    with pytest.raises(ValueError, match=f"labels hold token {VOCAB + 3}.*V={VOCAB}"):
        model(input_ids=ids, labels=bad)
    encoder = transformers.BertModel(transformers.BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16))
    with pytest.raises(ValueError, match="no output embeddings"):
        hf.patch_causal_lm(encoder)
    with pytest.raises(TypeError, match="expected a transformers causal LM"):
        hf.patch_causal_lm(torch.nn.Linear(2, 2))
