"""Distil a teacher LM into a student with a teacher-logit loss, with neither model's
(tokens × V) logits materialised.

Both models run their stock forwards up to the output layer, which records its input (see
:class:`~._head.HeadCapture`); the loss — KD, PLD or any registered loss that takes
``teacher_logits`` — is then computed by :func:`losslab.linear_loss` from the two sets of
hidden states and the two heads, block by block. The teacher runs under ``no_grad`` in
evaluation mode.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn
from transformers import Trainer

from ._head import HeadCapture, head_parameters, logit_transform
from ._loss import LossSpec, check_labels, normalise

FN = "DistillationTrainer"
_TRAINER_ARGS = frozenset(inspect.signature(Trainer.__init__).parameters) - {"self"}


def _head_of(fn: str, role: str, model: object) -> nn.Module:
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if not isinstance(head, nn.Module):
        raise ValueError(f"{fn}: the {role} ({type(model).__name__}) has no output embeddings; "
                         "distillation needs two causal LMs with output layers")
    return head


class DistillationTrainer(Trainer):
    """A ``Trainer`` whose loss distils ``teacher`` into the model.

    ``DistillationTrainer(model=student, teacher=teacher, loss="pld", args=..., train_dataset=...)``:
    keyword arguments that ``Trainer`` does not take are the loss's hyperparameters
    (``temperature=2.0``, ``ce_weight=0.5`` for KD, ``teacher_temperature`` for PLD). Batches
    need ``labels`` (the next-token targets, shifted as in a causal LM; ``-100`` ignored).
    The loss is the mean over kept tokens, or the sum divided by ``num_items_in_batch``
    under gradient accumulation, as transformers' own causal-LM loss; a student MoE's router
    auxiliary loss (when the model returns one) is added with its ``router_aux_loss_coef``.

    The teacher must share the student's vocabulary (same V); a teacher that soft-caps its
    logits is refused (the fused loss applies a soft cap to the student only).
    """

    def __init__(self, *args: Any, teacher: nn.Module, loss: str = "kd", **kwargs: Any) -> None:
        hyperparameters = {k: kwargs.pop(k) for k in list(kwargs) if k not in _TRAINER_ARGS}
        self.distillation_loss = LossSpec(FN, loss, hyperparameters)
        if not self.distillation_loss.needs_teacher:
            raise ValueError(
                f"{FN}: loss {loss!r} takes no teacher logits; use a distillation loss such as "
                "'kd' or 'pld' (or patch_causal_lm for a loss without a teacher)"
            )
        self.distillation_loss.check_on_a_tiny_problem(teacher=True)
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"{FN}: teacher must be a transformers causal LM, got "
                            f"{type(teacher).__name__}")
        super().__init__(*args, **kwargs)
        student_head = _head_of(FN, "student", self.model)
        teacher_head = _head_of(FN, "teacher", teacher)
        v_s = head_parameters(student_head)[0].shape[0]
        v_t = head_parameters(teacher_head)[0].shape[0]
        if v_s != v_t:
            raise ValueError(
                f"{FN}: the teacher's vocabulary has V={v_t} entries but the student's has "
                f"V={v_s}; distillation needs the same tokenizer and vocabulary"
            )
        self.teacher = teacher.to(self.args.device).eval()

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if inputs.get("labels") is None:
            raise ValueError(f"{FN}: the batch has no 'labels'; distillation needs next-token "
                             "labels (use a collator for causal LM)")
        labels: Tensor = inputs["labels"]
        features = {k: v for k, v in inputs.items() if k != "labels"}
        student = self.accelerator.unwrap_model(model)
        with HeadCapture(_head_of(FN, "student", student)) as s_capture:
            outputs = model(**features)
        with torch.no_grad(), HeadCapture(_head_of(FN, "teacher", self.teacher)) as t_capture:
            t_outputs = self.teacher(**features)
        s_hidden, t_hidden = s_capture.hidden, t_capture.hidden
        if s_hidden is None or t_hidden is None:
            raise RuntimeError(f"{FN}: a model's forward did not call its output layer")
        s_form = logit_transform(outputs["logits"], type(student).__name__)
        t_form = logit_transform(t_outputs["logits"], type(self.teacher).__name__)
        if t_form.softcap is not None:
            raise ValueError(f"{FN}: the teacher ({type(self.teacher).__name__}) soft-caps its "
                             "logits, which the fused distillation loss cannot reproduce")
        s_weight, s_bias = head_parameters(_head_of(FN, "student", student))
        t_weight, t_bias = head_parameters(_head_of(FN, "teacher", self.teacher))
        s_hidden = s_hidden if s_form.scale == 1.0 else s_hidden * s_form.scale
        t_hidden = t_hidden if t_form.scale == 1.0 else t_hidden * t_form.scale
        labels = labels.to(s_hidden.device)
        check_labels(FN, labels, s_weight.shape[0], -100)
        reduction = "mean" if num_items_in_batch is None else "sum"
        loss = self.distillation_loss(
            s_hidden, s_weight, labels, bias=s_bias, shift=True, ignore_index=-100,
            reduction=reduction, softcap=s_form.softcap, teacher_hidden=t_hidden.detach(),
            teacher_weight=t_weight.detach(),
            teacher_bias=None if t_bias is None else t_bias.detach())
        if num_items_in_batch is not None:
            loss = normalise(loss, num_items_in_batch)
        aux = outputs.get("aux_loss") if hasattr(outputs, "get") else None
        coef = getattr(getattr(student, "config", None), "router_aux_loss_coef", None)
        if isinstance(aux, Tensor) and coef:
            loss = loss + coef * aux.to(loss.device)
        if not return_outputs:
            return loss
        kept = {k: v for k, v in outputs.items() if k != "logits"}
        return loss, type(outputs)(**kept) if hasattr(outputs, "items") else outputs
