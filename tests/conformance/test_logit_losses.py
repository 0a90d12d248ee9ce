"""The shared conformance suite: every registered loss of kind "logits" runs through these
checks (design.md's API contract). A loss joins by being registered, nothing more."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab._core.registry import LossInfo

from .extras import make_extras, subset_rows

INFOS = losslab.list_losses(kind="logits")
PER_ROW = [i for i in INFOS if not i.batch_level]
BATCH_LEVEL = [i for i in INFOS if i.batch_level]
IDS = [i.name for i in INFOS]
C = 5


def _ids(infos: list[LossInfo]) -> list[str]:
    return [i.name for i in infos]


def batch(n: int = 12, c: int = C, *, dtype=torch.float64, seed: int = 0, scale: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(dtype)
    t = torch.randint(0, c, (n,), generator=g)
    return x, t


def call(info: LossInfo, x, t, **kw):
    extras = make_extras(info.extra_inputs, x, t)
    return info.function(x, t, **extras, **kw)


# --------------------------------------------------------------------------- registry


def test_registry_is_not_empty_and_names_are_unique():
    assert len(INFOS) >= 1
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_record_has_paper_family_and_defaults(info):
    assert info.family and info.paper.title and 1900 < info.paper.year < 2100
    assert isinstance(info.defaults, dict)
    assert info.summary, f"{info.function.__name__} needs a docstring"


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_module_from_registry_equals_function(info):
    x, t = batch()
    module = losslab.get_loss(info.name)
    extras = make_extras(info.extra_inputs, x, t)
    torch.testing.assert_close(module(x, t, **extras), info.function(x, t, **extras))


def test_get_loss_rejects_unknown_name_and_hyperparameter():
    with pytest.raises(ValueError, match="unknown loss 'no-such-loss'"):
        losslab.get_loss("no-such-loss")
    with pytest.raises(TypeError, match="no_such_hp"):
        losslab.get_loss(INFOS[0].name, no_such_hp=1.0)


# --------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("info", PER_ROW, ids=_ids(PER_ROW))
def test_reductions_agree(info):
    x, t = batch()
    none = call(info, x, t, reduction="none")
    assert none.shape == t.shape
    torch.testing.assert_close(call(info, x, t, reduction="sum"), none.sum())
    torch.testing.assert_close(call(info, x, t, reduction="mean"), none.mean())


@pytest.mark.parametrize("info", BATCH_LEVEL, ids=_ids(BATCH_LEVEL))
def test_batch_level_reductions(info):
    """A loss that couples rows has one value L per batch: ``mean`` is L, ``sum`` is K·L over
    the K kept rows, ``none`` holds L at kept positions and 0 at ignored ones."""
    x, t = batch(n=9)
    t[4] = -100
    mean = call(info, x, t, reduction="mean")
    none = call(info, x, t, reduction="none")
    torch.testing.assert_close(call(info, x, t, reduction="sum"), 8 * mean)
    assert none.shape == t.shape and none[4] == 0
    torch.testing.assert_close(none[t != -100], mean.expand(8))


@pytest.mark.parametrize("info", PER_ROW, ids=_ids(PER_ROW))
def test_class_weights(info):
    x, t = batch()
    w = torch.rand(C, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.2
    none_w = call(info, x, t, weight=w, reduction="none")
    none = call(info, x, t, reduction="none")
    torch.testing.assert_close(none_w, none * w[t])
    torch.testing.assert_close(call(info, x, t, weight=w), none_w.sum() / w[t].sum())
    torch.testing.assert_close(call(info, x, t, weight=torch.ones(C, dtype=torch.float64)), call(info, x, t))


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ignore_index_equals_dropping_rows(info, reduction):
    x, t = batch(n=10)
    ignored = torch.tensor([1, 4, 7])
    keep = torch.ones(10, dtype=torch.bool)
    keep[ignored] = False
    t_ign = t.clone()
    t_ign[ignored] = -100
    x1 = x.clone().requires_grad_()
    extras = make_extras(info.extra_inputs, x, t)
    full = info.function(x1, t_ign, reduction=reduction, **extras)
    dropped = info.function(x[keep], t[keep], reduction=reduction, **subset_rows(extras, keep))
    torch.testing.assert_close(full, dropped)
    full.backward()
    assert torch.all(x1.grad[ignored] == 0)


@pytest.mark.parametrize("info", PER_ROW, ids=_ids(PER_ROW))
def test_ignored_positions_are_zero_under_none(info):
    x, t = batch(n=6)
    t[2] = 3
    t_ign = t.clone()
    t_ign[2] = -1
    out = call(info, x, t_ign, ignore_index=-1, reduction="none")
    assert out[2] == 0
    keep = t_ign != -1
    torch.testing.assert_close(out[keep], call(info, x, t, reduction="none")[keep])


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("case", ["empty", "all_ignored"])
def test_empty_and_all_ignored_give_zero_with_zero_gradient(info, case):
    if case == "empty":
        x, t = torch.randn(0, C, dtype=torch.float64, requires_grad=True), torch.zeros(0, dtype=torch.long)
    else:
        x = torch.randn(4, C, dtype=torch.float64, requires_grad=True)
        t = torch.full((4,), -100)
    for reduction in ["mean", "sum"]:
        loss = call(info, x, t, reduction=reduction)
        assert loss.shape == () and loss.item() == 0.0, f"{reduction}: {loss}"
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
        assert grad is None or torch.all(grad == 0)
    assert torch.all(call(info, x, t, reduction="none") == 0)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_spatial_layout_equals_flattened(info, reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, C, 4, 2, generator=g, dtype=torch.float64)
    t = torch.randint(0, C, (3, 4, 2), generator=g)
    flat_x = x.movedim(1, -1).reshape(-1, C)
    flat_t = t.reshape(-1)
    extras = make_extras(info.extra_inputs, x, t)
    flat_extras = {
        # extras shaped like the target flatten like it; (N, K, d1, ...) ones like the logits
        k: v.reshape(-1) if v.shape == t.shape else v.movedim(1, -1).reshape(-1, v.shape[1])
        for k, v in extras.items()
    }
    spatial = info.function(x, t, reduction=reduction, **extras)
    flat = info.function(flat_x, flat_t, reduction=reduction, **flat_extras)
    if reduction == "none":
        assert spatial.shape == t.shape
        flat = flat.reshape(t.shape)
    torch.testing.assert_close(spatial, flat)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_gradcheck_float64(info):
    x, t = batch(n=4, scale=1.0)
    x.requires_grad_()
    extras = make_extras(info.extra_inputs, x.detach(), t)
    for reduction in ["mean", "none"]:
        assert torch.autograd.gradcheck(
            lambda inp, r=reduction: info.function(inp, t, reduction=r, **extras), (x,), eps=1e-6, atol=1e-5
        )


@pytest.mark.parametrize("info", PER_ROW, ids=_ids(PER_ROW))
def test_none_backward_with_random_upstream_equals_per_row_gradients(info):
    x, t = batch(n=7)
    x1 = x.clone().requires_grad_()
    extras = make_extras(info.extra_inputs, x, t)
    upstream = torch.rand(7, generator=torch.Generator().manual_seed(11), dtype=torch.float64) * 4 - 1
    (info.function(x1, t, reduction="none", **extras) * upstream).sum().backward()
    expected = torch.zeros_like(x)
    for i in range(7):
        xi = x[i : i + 1].clone().requires_grad_()
        row = info.function(xi, t[i : i + 1], reduction="sum", **subset_rows(extras, torch.tensor([i])))
        (gi,) = torch.autograd.grad(row, xi)
        expected[i] = upstream[i] * gi[0]
    torch.testing.assert_close(x1.grad, expected)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_at_extreme_logits(info, dtype):
    x, t = batch(n=8, dtype=torch.float64)
    x = (torch.sign(x) * 1e4).to(dtype).requires_grad_()
    loss = call(info, x, t)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad.float()).all()


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_logits_match_float64(info, dtype):
    """Finite is not enough: at logit scale 1e4 the low-precision result must equal the float64
    value computed on the same (rounded) logits."""
    x, t = batch(n=8, dtype=torch.float64)
    x = (x * 5e3).to(dtype)
    extras = make_extras(info.extra_inputs, x, t)
    extras64 = {k: v.double() if v.is_floating_point() else v for k, v in extras.items()}
    torch.testing.assert_close(
        info.function(x, t, **extras).double(),
        info.function(x.double(), t, **extras64),
        rtol=1e-3,
        atol=1e-3,
    )


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_integer_target_dtypes(info):
    x, t = batch()
    torch.testing.assert_close(call(info, x, t.int()), call(info, x, t))
    with pytest.raises(TypeError, match="target"):
        call(info, x, t > 2)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_hyperparameters_of_the_wrong_type_are_rejected(info):
    numeric = [
        k for k, v in info.defaults.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    if not numeric:
        pytest.skip(f"{info.name} has no numeric hyperparameter")
    x, t = batch()
    for name in numeric:
        with pytest.raises(TypeError, match=name):
            call(info, x, t, **{name: "0.5"})


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_half_precision_is_computed_in_float32(info):
    x, t = batch(dtype=torch.float32)
    out_half = call(info, x.half(), t)
    assert out_half.dtype == torch.float32
    torch.testing.assert_close(out_half, call(info, x.half().float(), t))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_bad_input_raises_clear_errors(info):
    fn_name = info.function.__name__
    x, t = batch()
    if not info.soft_targets:
        with pytest.raises(TypeError, match=f"{fn_name}: target"):
            call(info, x, t.double())
    else:
        with pytest.raises(ValueError, match=f"{fn_name}: .*target"):
            call(info, x, torch.rand(12, C + 1, dtype=torch.float64))
    bad_class = t.clone()
    bad_class[0] = C
    with pytest.raises(ValueError, match=rf"{fn_name}: target has class {C} but input has only {C} classes"):
        call(info, x, bad_class)
    negative = t.clone()
    negative[0] = -3
    with pytest.raises(ValueError, match=f"{fn_name}: target has negative class -3"):
        call(info, x, negative)
    with pytest.raises(ValueError, match=f"{fn_name}: target must have shape"):
        info.function(x, t[:-1], **make_extras(info.extra_inputs, x, t))
    with pytest.raises(ValueError, match=f"{fn_name}: input must be logits"):
        info.function(x[0, 0], t[0], **make_extras(info.extra_inputs, x, t))
    with pytest.raises(TypeError, match=f"{fn_name}: input must be a floating-point"):
        call(info, t.unsqueeze(1).repeat(1, C), t)
    with pytest.raises(ValueError, match=f"{fn_name}: weight must have shape"):
        call(info, x, t, weight=torch.ones(C + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=f"{fn_name}: reduction must be one of"):
        call(info, x, t, reduction="average")


@pytest.mark.parametrize(
    "info,bad",
    [(i, b) for i in INFOS for b in i.invalid_hyperparameters],
    ids=[f"{i.name}-{'-'.join(map(str, b.items()))}" for i in INFOS for b in i.invalid_hyperparameters],
)
def test_invalid_hyperparameters_are_rejected(info, bad):
    x, t = batch()
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        call(info, x, t, **bad)
    with pytest.raises(ValueError, match=name):
        losslab.get_loss(info.name, **bad)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_some_invalid_hyperparameter_is_declared(info):
    if not info.defaults:
        pytest.skip(f"{info.name} has no hyperparameters")
    assert info.invalid_hyperparameters, f"{info.name}: declare invalid_hyperparameters"


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_second_derivatives_are_right_or_refused(info):
    """Hessian-vector products through a loss (create_graph=True) either equal a finite
    difference of gradients or raise NotImplementedError; they are never silently wrong."""
    x, t = batch(n=5, scale=1.0)
    extras = make_extras(info.extra_inputs, x, t)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def grad_at(inp, create_graph=False):
        inp = inp if inp.requires_grad else inp.clone().requires_grad_()
        (g,) = torch.autograd.grad(info.function(inp, t, **extras), inp, create_graph=create_graph)
        return g

    x1 = x.clone().requires_grad_()
    try:
        g = grad_at(x1, create_graph=True)
    except NotImplementedError as err:
        assert "first-order" in str(err)
        return
    (hvp,) = torch.autograd.grad((g * v).sum(), x1, allow_unused=True)
    hvp = torch.zeros_like(x) if hvp is None else hvp
    eps = 1e-6
    finite_difference = (grad_at(x + eps * v) - grad_at(x - eps * v)) / (2 * eps)
    torch.testing.assert_close(hvp, finite_difference, atol=1e-5, rtol=1e-4)
