"""Tiny random transformers models built from configs (nothing downloaded), one per family
the integration is tested on, with what makes each family special."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")

VOCAB = 61
COMMON: dict[str, Any] = dict(vocab_size=VOCAB, hidden_size=16, intermediate_size=32,
                              num_hidden_layers=2, num_attention_heads=2,
                              num_key_value_heads=1, initializer_range=0.2, pad_token_id=0,
                              max_position_embeddings=64)

#: family → (config factory, what it exercises)
FAMILIES: dict[str, tuple[Callable[[], Any], str]] = {
    "llama": (lambda: transformers.LlamaConfig(**COMMON), "plain head"),
    "qwen2": (lambda: transformers.Qwen2Config(**COMMON), "plain head"),
    "mistral": (lambda: transformers.MistralConfig(**COMMON), "plain head"),
    "phi3": (lambda: transformers.Phi3Config(**COMMON), "fused qkv"),
    "gemma2": (lambda: transformers.Gemma2Config(**COMMON, head_dim=8,
                                                 final_logit_softcapping=1.5), "soft cap, tied"),
    "cohere": (lambda: transformers.CohereConfig(**COMMON, logit_scale=0.5), "logit scale, tied"),
    "granite": (lambda: transformers.GraniteConfig(**COMMON, logits_scaling=2.5), "logit scaling"),
    "mixtral": (lambda: transformers.MixtralConfig(**COMMON, num_local_experts=4,
                                                   num_experts_per_tok=2, output_router_logits=True,
                                                   router_aux_loss_coef=0.3), "MoE aux loss"),
    "gpt2": (lambda: transformers.GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2,
                                             n_positions=64, initializer_range=0.2), "tied head"),
    "phi": (lambda: transformers.PhiConfig(**COMMON, partial_rotary_factor=0.5), "head bias"),
}


def no_dropout(config: Any) -> Any:
    for name in list(vars(config)):
        if "dropout" in name or "pdrop" in name:
            setattr(config, name, 0.0)
    return config


def build(family: str, seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    config = no_dropout(FAMILIES[family][0]())
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
