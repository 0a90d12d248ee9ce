"""linear_loss: half precision, the no-(N, V) guarantee, bad input, teachers, retained graphs,
no_grad, the module form and the public name."""

import pytest
import torch
from allocation_probe import LargestAllocation

import losslab

V, D = 50, 8


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _teacher(n, v=V, d=5, seed=3):
    g = _gen(seed)
    return {"teacher_hidden": torch.randn(n, d, generator=g),
            "teacher_weight": torch.randn(v, d, generator=g)}


@pytest.mark.parametrize("name", ["gce", "kd"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bf16_inputs_compute_in_fp32_and_match_the_fp32_materialised_loss(name, reduction):
    g = _gen(0)
    h = (torch.randn(40, 32, generator=g) * 0.5).bfloat16().requires_grad_()
    w = (torch.randn(300, 32, generator=g) * 0.5).bfloat16().requires_grad_()
    y = torch.randint(0, 300, (40,), generator=g)
    y[::6] = -100
    t_kw = _teacher(40, v=300) if name == "kd" else {}
    loss = losslab.linear_loss(h, w, y, name, reduction=reduction, chunk_size=16, **t_kw)
    assert loss.dtype == torch.float32
    up = torch.rand(loss.shape, generator=_gen(1)) + 0.5
    (loss * up).sum().backward()
    assert h.grad.dtype == torch.bfloat16 and w.grad.dtype == torch.bfloat16
    h32, w32 = h.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    extra = {}
    if name == "kd":
        extra["teacher_logits"] = t_kw["teacher_hidden"] @ t_kw["teacher_weight"].T
    ref = losslab.get_loss(name, reduction=reduction)(h32 @ w32.T, y, **extra)
    (ref * up).sum().backward()
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=2e-3)
    for ours, exact in ((h.grad, h32.grad), (w.grad, w32.grad)):
        rel = (ours.float() - exact).norm() / exact.norm()
        assert rel < 2e-2, rel


@pytest.mark.parametrize("name,reduction,kw", [("gce", "mean", {}),
                                               ("focal", "sum", {"softcap": 3.0}),
                                               ("kd", "none", {}),
                                               ("pld", "mean", {"shift": True})])
def test_never_allocates_n_by_v(name, reduction, kw):
    n, d, rows = 600, 16, 32
    h = torch.randn(n, d, requires_grad=True)
    w = torch.randn(V * 10, d, requires_grad=True)
    y = torch.randint(0, V * 10, (n,))
    y[::7] = -100
    t_kw = _teacher(n, v=V * 10) if name in ("kd", "pld") else {}
    with LargestAllocation() as mode:
        loss = losslab.linear_loss(h, w, y, name, reduction=reduction, chunk_size=rows,
                                   **t_kw, **kw)
        loss.sum().backward()
    # Largest tensors: a (rows, V) block, the loss's own temporaries on a group of at most
    # `rows` rows (pld's sort keeps a few extra rows of scratch), the (V, D) / (N, D)
    # gradients; never anything that grows with N.
    assert mode.largest <= max(2 * rows * w.shape[0], n * d, w.numel()), mode.largest
    assert mode.largest < n * w.shape[0] / 4, mode.largest
    with LargestAllocation() as mode:
        losslab.get_loss("gce")(h @ w.T, y).backward()
    assert mode.largest >= n * w.shape[0]  # the probe does see materialised logits


H, W, Y = torch.randn(4, 3), torch.randn(6, 3), torch.randint(0, 6, (4,))
TH, TW = torch.randn(4, 2), torch.randn(6, 2)


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((H, W, Y, "no-such-loss"), {}, ValueError, "unknown loss 'no-such-loss'; losses it can"),
    ((H, W, Y, "ms"), {}, ValueError, "loss 'ms' consumes embeddings"),
    ((H, W, Y, "dice-batch"), {}, ValueError, "'dice-batch' is batch-level"),
    ((H, W, Y, 3), {}, TypeError, "loss must be a registered loss name"),
    ((H, W, Y, "gce"), {"qq": 1.0}, TypeError, "'gce' has no hyperparameter or input 'qq'"),
    ((H, W, Y, "gce"), {"q": 1.5}, ValueError, "loss 'gce'.*q must lie"),
    ((H, W, Y, "gce"), {"impl": "chunked"}, TypeError, "no hyperparameter or input 'impl'"),
    ((H, W, Y, "kd"), {}, ValueError, "'kd' distils from teacher logits; pass teacher_hidden"),
    ((H, W, Y, "kd"), {"teacher_hidden": TH}, ValueError, "pass teacher_hidden"),
    ((H, W, Y, "kd"), {"teacher_hidden": TH, "teacher_weight": torch.randn(7, 2)}, ValueError,
     "teacher_weight has V=7 classes but weight has V=6"),
    ((H, W, Y, "kd"), {"teacher_hidden": TH[:3], "teacher_weight": TW}, ValueError,
     r"teacher_hidden must have shape \(4,\)"),
    ((H, W, Y, "kd"), {"teacher_logits": H @ W.T}, TypeError, "teacher_logits is made block"),
    ((H, W, Y, "gce"), {"teacher_hidden": TH, "teacher_weight": TW}, ValueError,
     "'gce' takes no teacher, got teacher_hidden, teacher_weight; losses with a teacher: kd"),
    ((H, W, torch.tensor([0, 1, 6, 2]), "gce"), {}, ValueError, "target has class 6.*V=6"),
    ((H, W, Y.float(), "gce"), {}, TypeError, "target must hold class indices"),
    ((H, W, Y[:3], "gce"), {}, ValueError, r"target must have shape \(4,\)"),
    ((H, torch.randn(6, 5), Y, "gce"), {}, ValueError, "hidden has D=3.*weight has D=5"),
    ((H.long(), W.long(), Y, "gce"), {}, TypeError, "hidden must be a floating-point"),
    ((H.double(), W, Y, "gce"), {}, TypeError, "same dtype"),
    ((H, W, Y, "gce"), {"bias": torch.randn(5)}, ValueError, r"bias must have shape \(6,\)"),
    ((H, W, Y, "gce"), {"softcap": 0.0}, ValueError, "softcap"),
    ((H, W, Y, "gce"), {"softcap": -2.0}, ValueError, "softcap"),
    ((H, W, Y, "gce"), {"chunk_size": 0}, ValueError, "chunk_size"),
    ((H, W, Y, "gce"), {"reduction": "avg"}, ValueError, "reduction"),
    ((H, W, Y, "gce"), {"class_weight": torch.ones(5)}, ValueError,
     r"class_weight must have shape \(6,\)"),
    ((H, W, Y, "gce"), {"class_weight": -torch.ones(6)}, ValueError, "non-negative"),
    ((H, W, Y, "multi-aspect-kd"), {"aspect_targets": torch.rand(4, 2)}, TypeError,
     "needs the extra input 'aspect_logits'"),
    ((H, W, Y, "aldr-kl"), {"sample_ids": torch.arange(5)}, ValueError,
     r"sample_ids must have leading shape \(4,\)"),
    ((H, W, Y, "gce"), {"shift": 1}, TypeError, "shift must be a bool"),
])
def test_bad_input_gives_a_clear_error(args, kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        losslab.linear_loss(*args, **kwargs)
    assert str(info.value).startswith("linear_loss:")


def test_a_detached_teacher_gets_no_gradient_like_the_materialised_loss():
    g = _gen(4)
    h = torch.randn(9, D, generator=g, requires_grad=True)
    w = torch.randn(V, D, generator=g, requires_grad=True)
    th = torch.randn(9, 5, generator=g, requires_grad=True)
    tw = torch.randn(V, 5, generator=g, requires_grad=True)
    y = torch.randint(0, V, (9,), generator=g)
    losslab.linear_loss(h, w, y, "kd", teacher_hidden=th, teacher_weight=tw,
                        chunk_size=4).backward()
    assert th.grad is None and tw.grad is None and h.grad is not None
    losslab.get_loss("kd")(h @ w.T, y, teacher_logits=th @ tw.T).backward()
    assert th.grad is None and tw.grad is None


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_retained_graph_backward_twice_gives_the_same_gradients(reduction):
    g = _gen(5)
    h = torch.randn(11, D, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(V, D, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, V, (11,), generator=g)
    loss = losslab.linear_loss(h, w, y, "focal", reduction=reduction, chunk_size=4).sum()
    first = torch.autograd.grad(loss * 2.0, [h, w], retain_graph=True)
    second = torch.autograd.grad(loss * 3.0, [h, w])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a * 1.5, b)


def test_no_grad_computes_only_the_value():
    h = torch.randn(10, D, requires_grad=True)
    w = torch.randn(V, D, requires_grad=True)
    y = torch.randint(0, V, (10,))
    with torch.no_grad():
        loss = losslab.linear_loss(h, w, y, "gce", chunk_size=4)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, losslab.get_loss("gce")(h @ w.T, y).detach())


def test_create_graph_is_refused_with_a_clear_error():
    h = torch.randn(5, D, requires_grad=True)
    w = torch.randn(V, D, requires_grad=True)
    loss = losslab.linear_loss(h, w, torch.randint(0, V, (5,)), "gce")
    with pytest.raises(NotImplementedError, match="linear_loss has a hand-written first-order"):
        torch.autograd.grad(loss, h, create_graph=True)


def test_module_form_validates_at_construction_and_equals_the_function():
    g = _gen(6)
    h, w = torch.randn(7, D, generator=g), torch.randn(V, D, generator=g)
    y = torch.randint(0, V, (7,), generator=g)
    cw = torch.rand(V, generator=g) + 0.5
    t_kw = _teacher(7)
    module = losslab.nn.LinearLoss("kd", temperature=2.0, class_weight=cw, chunk_size=3)
    assert "class_weight" in dict(module.named_buffers())
    torch.testing.assert_close(
        module(h, w, y, **t_kw),
        losslab.linear_loss(h, w, y, "kd", temperature=2.0, class_weight=cw, **t_kw))
    assert "'kd', temperature=2.0" in repr(module)
    for kwargs, exc, match in [({"loss": "gce", "q": 2.0}, ValueError, "q must lie"),
                               ({"loss": "gce", "qq": 1.0}, TypeError, "'qq'"),
                               ({"loss": "gce", "bias": torch.zeros(V)}, TypeError,
                                "pass bias at call time"),
                               ({"loss": "kd", "teacher_hidden": h}, TypeError, "call time"),
                               ({"loss": "dice-batch"}, ValueError, "batch-level"),
                               ({"loss": "gce", "softcap": 0.0}, ValueError, "softcap"),
                               ({"loss": "gce", "reduction": "avg"}, ValueError, "reduction"),
                               ({"loss": "gce", "chunk_size": -1}, ValueError, "chunk_size")]:
        with pytest.raises(exc, match=match):
            losslab.nn.LinearLoss(**kwargs)


def test_linear_loss_is_public():
    assert losslab.linear_loss is losslab.fused.linear_loss
    assert "linear_loss" in losslab.__all__ and "linear_loss" in losslab.__doc__
    assert "LinearLoss" in losslab.nn.__all__


def test_teacher_may_have_another_width_and_dtype():
    g = _gen(7)
    h = torch.randn(10, D, generator=g, requires_grad=True)
    w = torch.randn(V, D, generator=g, requires_grad=True)
    y = torch.randint(0, V, (10,), generator=g)
    th, tw = torch.randn(10, 5, generator=g).bfloat16(), torch.randn(V, 5, generator=g).bfloat16()
    ours = losslab.linear_loss(h, w, y, "kd", teacher_hidden=th, teacher_weight=tw, chunk_size=3)
    ref = losslab.get_loss("kd")(h @ w.T, y, teacher_logits=(th @ tw.T).float())
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, w)[0], torch.autograd.grad(ref, w)[0])


def test_docstring_examples_run():
    import doctest

    from losslab.fused import loss_api
    from losslab.nn import fused

    for module in (loss_api, fused):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0
