"""DistillationTrainer: the fused distillation loss equals the loss on materialised logits."""

from __future__ import annotations

import pytest
import torch

from .hf_models import VOCAB, build

hf = pytest.importorskip("losslab.integrations.transformers")
transformers = pytest.importorskip("transformers")

import losslab  # noqa: E402


def _batch():
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(1, VOCAB, (2, 10), generator=g)
    labels = ids.clone()
    labels[1, :5] = -100
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def _materialised(student, teacher, batch, loss, **hp):
    """The same loss from both models' logits (what a user would write without losslab)."""
    features = {k: v for k, v in batch.items() if k != "labels"}
    z = student(**features).logits
    with torch.no_grad():
        t = teacher(**features).logits
    labels = torch.nn.functional.pad(batch["labels"], (0, 1), value=-100)[..., 1:]
    return losslab.get_loss(loss, **hp)(z.reshape(-1, VOCAB), labels.reshape(-1),
                                        teacher_logits=t.reshape(-1, VOCAB))


def _trainer(student, teacher, tmp_path, loss, **hp):
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none",
                                          use_cpu=True, save_strategy="no", disable_tqdm=True)
    return hf.DistillationTrainer(model=student, args=args, teacher=teacher, loss=loss, **hp)


@pytest.mark.parametrize("student_family,teacher_family,loss,hp", [
    ("llama", "mistral", "kd", dict(temperature=2.0, ce_weight=0.5)),
    ("llama", "qwen2", "pld", dict(teacher_temperature=1.0)),
    ("gemma2", "cohere", "kd", dict(temperature=1.0)),  # student soft cap, teacher logit scale
])
def test_fused_distillation_loss_and_gradients_equal_the_materialised_ones(
        student_family, teacher_family, loss, hp, tmp_path):
    student = build(student_family, seed=0).train()
    teacher = build(teacher_family, seed=1)
    batch = _batch()
    expected = _materialised(student, teacher, batch, loss, **hp)
    expected.backward()
    want = {n: p.grad.clone() for n, p in student.named_parameters()}
    student.zero_grad(set_to_none=True)
    trainer = _trainer(student, teacher, tmp_path, loss, **hp)
    got, outputs = trainer.compute_loss(student, dict(batch), return_outputs=True)
    assert outputs.logits is None
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    got.backward()
    for name, grad in want.items():
        torch.testing.assert_close(student.get_parameter(name).grad, grad, atol=1e-5,
                                   rtol=1e-5, msg=name)
    assert all(p.grad is None for p in teacher.parameters())


def test_a_distillation_run_trains_and_lowers_the_loss(tmp_path):
    student, teacher = build("llama", seed=0), build("mistral", seed=1)
    batch = _batch()
    data = [{k: v[i] for k, v in batch.items()} for i in range(2)] * 4
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, save_strategy="no",
        disable_tqdm=True, per_device_train_batch_size=2, gradient_accumulation_steps=2,
        max_steps=6, learning_rate=3e-3, logging_steps=1)
    trainer = hf.DistillationTrainer(model=student, args=args, teacher=teacher, loss="pld",
                                     train_dataset=data)
    before = float(trainer.compute_loss(student, dict(batch)))
    trainer.train()
    after = float(trainer.compute_loss(student, dict(batch)))
    assert after < before


def test_clear_errors(tmp_path):
    student = build("llama")
    with pytest.raises(ValueError, match="takes no teacher"):
        _trainer(student, build("llama"), tmp_path, "gce")
    with pytest.raises(TypeError, match="teacher_temperature|no hyperparameter"):
        _trainer(student, build("llama"), tmp_path, "pld", temperature=2.0)
    other = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=VOCAB + 5, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(ValueError, match=f"V={VOCAB + 5}.*V={VOCAB}"):
        _trainer(student, other, tmp_path, "kd")
    trainer = _trainer(student, build("mistral"), tmp_path, "kd")
    batch = _batch()
    del batch["labels"]
    with pytest.raises(ValueError, match="no 'labels'"):
        trainer.compute_loss(student, batch)
    capped = _trainer(student, build("gemma2"), tmp_path, "kd")
    with pytest.raises(ValueError, match="soft-caps"):
        capped.compute_loss(student, _batch())
