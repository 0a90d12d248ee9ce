"""PEFT-wrapped output layers: LoRA on the head and a trainable copy (modules_to_save)."""

from __future__ import annotations

import pytest
import torch

from .hf_models import VOCAB, build

hf = pytest.importorskip("losslab.integrations.transformers")
peft = pytest.importorskip("peft")


def _peft_model(family, **lora):
    model = build(family)
    config = peft.LoraConfig(r=4, lora_alpha=8, **lora)
    wrapped = peft.get_peft_model(model, config)
    # LoRA's B starts at zero; move it so the adapter changes the head's output.
    torch.manual_seed(5)
    for name, p in wrapped.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.3)
    return wrapped.train()


def _step(model, ids, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family,lora", [
    ("llama", dict(target_modules=["q_proj", "lm_head"], lora_dropout=0.0)),
    ("phi", dict(target_modules=["q_proj", "lm_head"], lora_dropout=0.0, lora_bias=True)),
    ("llama", dict(target_modules=["q_proj"], modules_to_save=["lm_head"])),
])
def test_peft_heads_match_the_stock_loss(family, lora):
    model = _peft_model(family, **lora)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, VOCAB, (2, 8), generator=g)
    stock, stock_grads = _step(model, ids, ids)
    assert stock_grads, "no trainable parameter received a gradient"
    hf.patch_causal_lm(model)
    ours, grads = _step(model, ids, ids)
    assert ours.logits is None
    torch.testing.assert_close(ours.loss, stock.loss, atol=1e-5, rtol=1e-6)
    assert grads.keys() == stock_grads.keys()
    for name, grad in stock_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-5, msg=name)
    # With the adapters disabled the fused loss follows the base head (nothing trains then).
    with model.disable_adapter(), torch.no_grad():
        base = model(input_ids=ids, labels=ids)
        assert base.logits is None
        hf.unpatch_causal_lm(model)
        base_stock = model(input_ids=ids, labels=ids).loss
    torch.testing.assert_close(base.loss, base_stock, atol=1e-5, rtol=1e-6)
    assert float((base.loss - stock.loss).abs()) > 1e-4, "the adapter changed nothing"



def test_lora_dropout_on_the_head_is_refused():
    model = _peft_model("llama", target_modules=["lm_head"], lora_dropout=0.1)
    with pytest.raises(ValueError, match="dropout p=0.1"):
        hf.patch_causal_lm(model)  # in training mode: refused at once
    model.eval()
    hf.patch_causal_lm(model)
    model.train()
    ids = torch.randint(1, VOCAB, (1, 6))
    with pytest.raises(ValueError, match="dropout p=0.1"):
        model(input_ids=ids, labels=ids)
