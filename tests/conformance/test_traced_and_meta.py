"""Every registered logit loss beyond plain eager tensors: meta tensors (shape inference),
``torch.compile(fullgraph=True)`` (value and gradient equal eager; checks that read values
are skipped while tracing) and the unbatched ``(C,)`` form of ``F.cross_entropy``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import losslab

from .extras import make_extras

INFOS = losslab.list_losses(kind="logits")
IDS = [i.name for i in INFOS]
PER_ROW = [i for i in INFOS if not i.batch_level]
BATCH_LEVEL = [i for i in INFOS if i.batch_level]
C = 5


def module(info, n=8):
    # A stateful loss whose state grows with the largest sample id needs a fixed size where
    # ids are not values (meta, tracing).
    kw = {"num_samples": n} if "sample_ids" in info.extra_inputs else {}
    return losslab.get_loss(info.name, **kw)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=g) * 2, torch.randint(0, C, (n,), generator=g)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_meta_tensors_give_the_output_shape(info, reduction):
    x, t = batch()
    extras = {k: v.to("meta") for k, v in make_extras(info.extra_inputs, x, t).items()}
    loss = module(info).to("meta")
    loss.reduction = reduction
    out = loss(x.to("meta"), t.to("meta"), **extras)
    assert out.device.type == "meta"
    assert tuple(out.shape) == (tuple(t.shape) if reduction == "none" else ())
    # Spatial layout too.
    x4, t4 = torch.randn(2, C, 3, 4), torch.randint(0, C, (2, 3, 4))
    extras = {k: v.to("meta") for k, v in make_extras(info.extra_inputs, x4, t4).items()}
    assert module(info, 24).to("meta")(x4.to("meta"), t4.to("meta"), **extras).device.type == "meta"


def _compiled_equals_eager(info, x, t, **kw):
    extras = make_extras(info.extra_inputs, x, t)
    eager_in = x.clone().requires_grad_()
    eager = module(info)
    eager.__dict__.update(kw)
    value = eager(eager_in, t, **extras)
    (grad,) = torch.autograd.grad(value, eager_in)
    torch._dynamo.reset()
    traced = module(info)
    traced.__dict__.update(kw)
    compiled = torch.compile(traced, fullgraph=True, backend="aot_eager")
    c_in = x.clone().requires_grad_()
    c_value = compiled(c_in, t, **extras)
    (c_grad,) = torch.autograd.grad(c_value, c_in)
    torch.testing.assert_close(c_value, value)
    torch.testing.assert_close(c_grad, grad)


@pytest.mark.slow
@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_compile_fullgraph_equals_eager(info):
    x, t = batch()
    _compiled_equals_eager(info, x, t)


@pytest.mark.slow
@pytest.mark.parametrize("info", PER_ROW, ids=[i.name for i in PER_ROW])
def test_compile_fullgraph_with_ignored_rows_equals_eager(info):
    x, t = batch()
    t[[1, 5]] = -100
    _compiled_equals_eager(info, x, t)


@pytest.mark.slow
@pytest.mark.parametrize("info", BATCH_LEVEL[:2], ids=[i.name for i in BATCH_LEVEL[:2]])
def test_compiled_batch_level_loss_refuses_ignored_rows(info):
    x, t = batch()
    t[1] = -100
    torch._dynamo.reset()
    compiled = torch.compile(module(info), fullgraph=True, backend="aot_eager")
    with pytest.raises(RuntimeError, match="ignore_index"):
        compiled(x, t, **make_extras(info.extra_inputs, x, t))


@pytest.mark.slow
def test_compile_with_the_default_backend():
    x, t = batch()
    torch._dynamo.reset()
    compiled = torch.compile(losslab.get_loss("gce"), fullgraph=True)
    torch.testing.assert_close(compiled(x, t), losslab.get_loss("gce")(x, t))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_unbatched_logits_are_a_batch_of_one(info, reduction):
    x, t = batch(1)
    extras = make_extras(info.extra_inputs, x, t)
    loss = module(info, 1)
    loss.reduction = reduction
    one = loss(x, t, **extras)
    unbatched = loss(x[0], t[0], **{k: v[0] for k, v in extras.items()})
    assert unbatched.shape == ()
    torch.testing.assert_close(unbatched, one.reshape(()))


def test_unbatched_cross_entropy_follows_torch():
    x, t = torch.randn(C, requires_grad=True), torch.tensor(3)
    for reduction in ("mean", "sum", "none"):
        ours = losslab.get_loss("ce", reduction=reduction)(x, t)
        torch.testing.assert_close(ours, F.cross_entropy(x, t, reduction=reduction))
    with pytest.raises(ValueError, match="target must have shape"):
        losslab.get_loss("ce")(x, torch.tensor([3]))
    with pytest.raises(ValueError, match="target has class 7"):
        losslab.get_loss("ce")(x, torch.tensor(7))
