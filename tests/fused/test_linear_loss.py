"""linear_loss against the materialised loss, for every registered per-row logit loss: value
and gradients of hidden, weight, bias (and of extra inputs that require grad), every
reduction, ignored rows, class weights, soft-capping, shift and 3-D hidden states."""

import inspect

import pytest
import torch

import losslab

INFOS = losslab.list_losses(kind="logits")
PER_ROW = [i for i in INFOS if not i.batch_level]
BATCH_LEVEL = [i for i in INFOS if i.batch_level]
V, D, D_T = 50, 8, 6
TIGHT = {"rtol": 1e-9, "atol": 1e-11}
TEACHER_NAMES = ("teacher_hidden", "teacher_weight", "teacher_bias")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def make_extras(info, target_shape, grad):
    """The loss's row-aligned extra inputs (teacher logits excluded), leading shape = target's."""
    out = {}
    for name in info.extra_inputs:
        if name == "sample_ids":
            out[name] = torch.arange(int(torch.tensor(target_shape).prod())).reshape(target_shape)
        elif name == "aspect_logits":
            out[name] = torch.randn(*target_shape, 3, dtype=torch.float64, generator=_gen(8))
        elif name == "aspect_targets":
            out[name] = torch.rand(*target_shape, 3, dtype=torch.float64, generator=_gen(9))
        elif name == "view_logits":
            out[name] = torch.randn(*target_shape, V, dtype=torch.float64, generator=_gen(10))
        elif name != "teacher_logits":
            raise KeyError(f"test_linear_loss.make_extras has no factory for {name!r}")
    for name in ("aspect_logits", "view_logits"):
        if grad and name in out:
            out[name].requires_grad_()
    return out


def takes_teacher(info):
    return "teacher_logits" in info.extra_inputs


def materialised(name, h, w, y, *, bias=None, shift=False, softcap=None, class_weight=None,
                 reduction="mean", ignore_index=-100, teacher=None, extras=None, **hp):
    """get_loss(name) on the logits hidden @ W.T + b (rows flattened), the reference."""
    extras = dict(extras or {})
    if shift:
        h, y = h[..., :-1, :], y[..., 1:]
        extras = {k: v[..., :-1, :] if v.dim() > y.dim() else v[..., :-1] for k, v in extras.items()}
        if teacher is not None:
            teacher = (teacher[0][..., :-1, :], *teacher[1:])
    z = h @ w.T
    if bias is not None:
        z = z + bias
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    rows = y.numel()
    kw = {k: v.reshape(rows, *v.shape[y.dim():]) for k, v in extras.items()}
    if teacher is not None:
        th, tw, tb = teacher
        kw["teacher_logits"] = (th @ tw.T + (0 if tb is None else tb)).reshape(rows, -1)
    fn = losslab.get_loss(name, weight=class_weight, ignore_index=ignore_index,
                          reduction=reduction, **hp)
    out = fn(z.reshape(rows, -1), y.reshape(-1), **kw)
    return out.reshape(y.shape) if reduction == "none" else out


def problem(info, *, batch=None, n=37, seed=0, ignore=True, grad_extras=True):
    g = _gen(seed)
    lead = (n,) if batch is None else batch
    h = torch.randn(*lead, D, dtype=torch.float64, generator=g).requires_grad_()
    w = (torch.randn(V, D, dtype=torch.float64, generator=g) * 0.7).requires_grad_()
    b = (torch.randn(V, dtype=torch.float64, generator=g) * 0.3).requires_grad_()
    y = torch.randint(0, V, lead, generator=g)
    if ignore:
        y.view(-1)[::5] = -100
    teacher = None
    if takes_teacher(info):
        teacher = (torch.randn(*lead, D_T, dtype=torch.float64, generator=g),
                   torch.randn(V, D_T, dtype=torch.float64, generator=g),
                   torch.randn(V, dtype=torch.float64, generator=g))
    return h, w, b, y, teacher, make_extras(info, lead, grad_extras)


def compare(info, h, w, b, y, teacher, extras, *, reduction, **kw):
    """Value and gradients (hidden, weight, bias, extra inputs with grad) of linear_loss
    against the materialised loss, under a non-constant upstream gradient for ``none``."""
    t_kw = {} if teacher is None else dict(zip(TEACHER_NAMES, teacher, strict=True))
    ours = losslab.linear_loss(h, w, y, info.name, bias=b, reduction=reduction, chunk_size=8,
                               **t_kw, **extras, **kw)
    ref = materialised(info.name, h, w, y, bias=b, reduction=reduction, teacher=teacher,
                       extras=extras, **kw)
    torch.testing.assert_close(ours, ref, **TIGHT)
    up = (torch.rand(ref.shape, dtype=torch.float64, generator=_gen(11)) * 4 - 1
          if reduction == "none" else torch.tensor(1.7, dtype=torch.float64))
    graded = {"hidden": h, "weight": w, "bias": b,
              **{k: x for k, x in extras.items() if x.requires_grad}}
    ours_g = torch.autograd.grad((ours * up).sum(), list(graded.values()))
    ref_g = torch.autograd.grad((ref * up).sum(), list(graded.values()))
    for name, a, e in zip(graded, ours_g, ref_g, strict=True):
        torch.testing.assert_close(a, e, **TIGHT, msg=lambda m, name=name: f"{name}: {m}")
    assert any(bool(x.abs().sum() > 0) for x in ours_g), "all gradients zero: the check is void"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("info", PER_ROW, ids=[i.name for i in PER_ROW])
def test_equals_materialised_loss_with_weights_ignore_and_softcap(info, reduction):
    h, w, b, y, teacher, extras = problem(info)
    cw = torch.rand(V, dtype=torch.float64, generator=_gen(3)) + 0.2
    compare(info, h, w, b, y, teacher, extras, reduction=reduction, class_weight=cw,
            softcap=4.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("info", PER_ROW, ids=[i.name for i in PER_ROW])
def test_equals_materialised_loss_with_shift_on_3d_hidden(info, reduction):
    h, w, b, y, teacher, extras = problem(info, batch=(3, 13), seed=1)
    compare(info, h, w, b, y, teacher, extras, reduction=reduction, shift=True)


@pytest.mark.parametrize("name,hp", [
    ("gce", {"q": 0.4, "truncate_k": 0.02}), ("focal", {"gamma": 0.5, "alpha": torch.linspace(0.2, 1.0, V, dtype=torch.float64)}),
    ("kd", {"temperature": 2.0, "ce_weight": 0.5}), ("pld", {"teacher_temperature": 3.0}),
    ("ce", {"temperature": 2.0, "label_smoothing": 0.1, "z_loss": 1e-2}),
    ("ldr-kl", {"lam": 2.0, "normalize": "l1_mean"}), ("sce", {"alpha": 0.5, "beta": 0.3}),
])
def test_hyperparameters_reach_the_loss(name, hp):
    info = next(i for i in PER_ROW if i.name == name)
    h, w, b, y, teacher, extras = problem(info, seed=2)
    compare(info, h, w, b, y, teacher, extras, reduction="mean", **hp)


def test_every_per_row_loss_is_covered_and_extra_inputs_are_known():
    assert len(PER_ROW) >= 25 and BATCH_LEVEL
    for info in PER_ROW:
        make_extras(info, (2,), grad=False)  # raises for an extra input without a factory


@pytest.mark.parametrize("info", BATCH_LEVEL, ids=[i.name for i in BATCH_LEVEL])
def test_batch_level_losses_are_refused(info):
    h, w, y = torch.randn(4, D), torch.randn(V, D), torch.randint(0, V, (4,))
    with pytest.raises(ValueError, match=rf"linear_loss: loss '{info.name}' is batch-level.*get_loss"):
        losslab.linear_loss(h, w, y, info.name)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fully_ignored_batch_gives_zero_with_zero_gradients(reduction):
    h = torch.randn(6, D, dtype=torch.float64, requires_grad=True)
    w = torch.randn(V, D, dtype=torch.float64, requires_grad=True)
    y = torch.full((6,), -100)
    loss = losslab.linear_loss(h, w, y, "gce", reduction=reduction)
    assert bool((loss == 0).all())
    gh, gw = torch.autograd.grad(loss.sum(), [h, w])
    assert bool((gh == 0).all()) and bool((gw == 0).all())


def test_ce_runs_the_fused_cross_entropy_with_its_options(monkeypatch):
    from losslab.fused import loss_api as module

    calls = []
    real = module.linear_cross_entropy
    monkeypatch.setattr(module, "linear_cross_entropy",
                        lambda *a, **k: calls.append(k) or real(*a, **k))
    info = next(i for i in PER_ROW if i.name == "ce")
    h, w, b, y, _, _ = problem(info, seed=4)
    compare(info, h, w, b, y, None, {}, reduction="none", label_smoothing=0.1, z_loss=1e-2,
            softcap=5.0)
    assert calls and calls[0]["label_smoothing"] == 0.1 and calls[0]["z_loss"] == 1e-2
    losslab.linear_loss(h, w, y, "ce", impl="chunked_recompute", filter_eps=None)
    assert calls[-1]["impl"] == "chunked_recompute"
    with pytest.raises(ValueError, match="impl apply to the fused cross-entropy"):
        losslab.linear_loss(h, w, y, "ce", impl="chunked", temperature=2.0)
    n = len(calls)
    losslab.linear_loss(h, w, y, "ce", class_weight=torch.ones(V, dtype=torch.float64))
    assert len(calls) == n  # class weights: the generic path (linear_cross_entropy has none)
    assert "impl" not in inspect.signature(losslab.get_loss("ce").function).parameters


@pytest.mark.parametrize("name", ["gce", "focal", "kd"])
def test_gradcheck_float64(name):
    info = next(i for i in PER_ROW if i.name == name)
    g = _gen(5)
    h = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(9, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randint(0, 9, (7,), generator=g)
    y[2] = -100
    t_kw = {}
    if takes_teacher(info):
        t_kw = {"teacher_hidden": torch.randn(7, 2, dtype=torch.float64, generator=g),
                "teacher_weight": torch.randn(9, 2, dtype=torch.float64, generator=g)}
    for reduction in ["mean", "none"]:
        assert torch.autograd.gradcheck(
            lambda *x, r=reduction: losslab.linear_loss(*x[:2], y, name, bias=x[2], reduction=r,
                                                        chunk_size=3, softcap=2.5, **t_kw),
            (h, w, b), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["gce", "kd", "ce"])
def test_logits_made_over_several_ragged_vocabulary_tiles(name, monkeypatch):
    from losslab.fused import blocks

    monkeypatch.setattr(blocks, "CPU_VOCAB_TILE", 16)  # V = 50: tiles of 16, 16, 16 and 2
    info = next(i for i in PER_ROW if i.name == name)
    h, w, b, y, teacher, extras = problem(info, seed=7)
    compare(info, h, w, b, y, teacher, extras, reduction="none", softcap=3.0,
            class_weight=torch.rand(V, dtype=torch.float64, generator=_gen(2)) + 0.5)


@pytest.mark.parametrize("name", ["gce", "ce", "pld"])
def test_ignore_index_may_be_a_class_index(name):
    info = next(i for i in PER_ROW if i.name == name)
    h, w, b, y, teacher, extras = problem(info, seed=8, ignore=False)
    y[::3] = 7  # class 7 is the ignored value here: those rows drop out entirely
    compare(info, h, w, b, y, teacher, extras, reduction="mean", ignore_index=7)
