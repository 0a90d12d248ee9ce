"""Generated modules with row-aligned extra inputs (_core.loss_modules.loss_module(...,
extra_inputs=...)): call-time extras, clear TypeErrors, extras are not hyperparameters."""

import pytest
import torch

import losslab
import losslab.functional as LF
from losslab._core.loss_modules import LogitLoss, LossModule, loss_module


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 5, generator=g), torch.tensor([0, 1, 2, 3]), torch.randn(4, 5, generator=g)


def test_extras_are_passed_at_call_time_and_equal_the_function():
    z, y, t = _batch()
    module = losslab.nn.KnowledgeDistillation(temperature=2.0)
    assert isinstance(module, LogitLoss)
    torch.testing.assert_close(module(z, y, teacher_logits=t), LF.kd(z, y, teacher_logits=t, temperature=2.0))
    assert "teacher_logits" not in module.hyperparameters


def test_missing_and_unexpected_extras_are_type_errors_naming_them():
    z, y, t = _batch()
    with pytest.raises(TypeError, match="DualViewKL: forward needs the extra input.*view_logits"):
        losslab.nn.DualViewKL()(z, y)
    with pytest.raises(TypeError, match="DualViewKL: forward got unexpected keyword.*teacher_logits"):
        losslab.nn.DualViewKL()(z, y, view_logits=t, teacher_logits=t)
    with pytest.raises(TypeError, match="unexpected keyword.*bogus; it takes no extra inputs"):
        losslab.nn.Dice()(z, y, bogus=t)
    with pytest.raises(TypeError, match="unexpected hyperparameter 'teacher_logits'"):
        losslab.nn.KnowledgeDistillation(teacher_logits=t)


def test_factory_docstring_shows_the_call_with_extras_and_hyperparameters_are_checked():
    cls = loss_module("MyKD", LF.kd, LF.logits.distillation._check_kd, extra_inputs=("teacher_logits",))
    assert "(input, target, teacher_logits=...)" in (cls.__doc__ or "")
    with pytest.raises(ValueError, match="temperature"):
        cls(temperature=0.0)


def test_adversarial_module_shares_the_base_and_skips_checking_the_generator():
    module = losslab.nn.SmoothAdversarialCompSum(generator=torch.Generator().manual_seed(0))
    assert isinstance(module, LossModule) and not isinstance(module, LogitLoss)
    with pytest.raises(ValueError, match="nu"):
        losslab.nn.SmoothAdversarialCompSum(nu=-1.0)
    model = torch.nn.Linear(3, 4)
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    torch.testing.assert_close(
        losslab.nn.SmoothAdversarialCompSum(nu=0.0)(model, x, y),
        LF.smooth_adversarial_comp_sum(model, x, y, nu=0.0),
    )
