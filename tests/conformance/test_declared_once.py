"""A loss is declared once, next to its function: its registration builds (or names) its module,
which losslab.nn exports, and its function is exported by losslab.functional through its family
module's __all__. The module's hyperparameters are the record's defaults, read from the
function's signature."""

import importlib

import pytest
import torch

import losslab
from losslab._core.loss_modules import EmbeddingLoss, LossModule, loss_module
from losslab._core.registry import Paper, list_losses, register

INFOS = list_losses()


@pytest.mark.parametrize("info", INFOS, ids=[i.name for i in INFOS])
def test_registration_exports_function_and_module(info):
    assert getattr(losslab.functional, info.function.__name__) is info.function
    assert getattr(losslab.nn, info.module.__name__) is info.module
    assert info.module.__name__ in losslab.nn.__all__
    family_module = importlib.import_module(info.function.__module__)
    assert info.function.__name__ in family_module.__all__
    assert family_module.__name__.split(".")[2] in {"logits", "embedding", "regularizers"}


@pytest.mark.parametrize("info", INFOS, ids=[i.name for i in INFOS])
def test_module_hyperparameters_are_the_record_defaults(info):
    module = info.module()
    assert isinstance(module, (LossModule, EmbeddingLoss))
    shown = {k: v for k, v in module.hyperparameters.items() if k in info.defaults}
    assert shown == dict(info.defaults)
    # anything else the module holds is an option the record leaves out on purpose
    assert set(module.hyperparameters) - set(info.defaults) <= {"process_group", "chunk_size"}


def test_register_refuses_a_second_declaration_and_a_check_on_a_hand_written_module():
    info = {i.name: i for i in INFOS}["gce"]
    with pytest.raises(ValueError, match="'gce' is already registered"):
        register(info.function, name="gce", module="Again", family="robust", paper=info.paper)
    with pytest.raises(TypeError, match="hand-written module class"):
        register(info.function, name="gce-twice", module=losslab.nn.ALDRKL, family="robust",
                 paper=Paper("x", 2000), check=lambda **_: None)
    assert "gce-twice" not in {i.name for i in list_losses()}


def test_the_factory_picks_the_base_of_the_calling_convention():
    model_cls = loss_module("M", losslab.functional.smooth_adversarial_comp_sum, kind="model")
    emb_cls = loss_module("E", losslab.functional.mw_loss, kind="embeddings")
    logit_cls = loss_module("L", losslab.functional.cross_entropy)
    assert [c.__mro__[1].__name__ for c in (model_cls, emb_cls, logit_cls)] == [
        "ModelLoss", "EmbeddingLoss", "LogitLoss"]
    z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
    torch.testing.assert_close(logit_cls(label_smoothing=0.1)(z, y),
                               losslab.functional.cross_entropy(z, y, label_smoothing=0.1))


def test_an_unknown_nn_name_lists_the_loss_modules():
    with pytest.raises(AttributeError, match="no attribute 'Nope'.*CrossEntropy"):
        _ = losslab.nn.Nope
