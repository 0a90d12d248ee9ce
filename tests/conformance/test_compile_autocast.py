"""CPU ``torch.autocast(bfloat16)`` for every registered loss, and ``torch.compile`` for the
kinds that ``test_traced_and_meta.py`` does not cover.

Autocast: on bf16-representable float32 inputs, a loss called under
``torch.autocast("cpu", dtype=torch.bfloat16)`` is finite, float32, and equals the float32
eager value (logit, value and embedding losses: they are computed in float32,
docs/conventions.md, so the two agree to float32 rounding; their gradients too; the
embedding losses' Gram matrix is taken with autocast switched off, docs/embedding.md). A model
loss runs the user's model under autocast: it is only required to be float32 and close at
bf16 precision.

Compile: every logit loss already has ``torch.compile(fullgraph=True)`` value-and-gradient
checks in ``test_traced_and_meta.py``. Here the value, model and embedding kinds: compiled
(graph breaks allowed) equals eager, and with ``fullgraph=True`` too, except for the losses in
``FULLGRAPH_BREAKS`` (strict xfail, so the marker must go when it starts to work). A compiled
embedding loss under autocast is float32 and equals eager as well.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import losslab

from .extras import make_extras

INFOS = losslab.list_losses()
IDS = [i.name for i in INFOS]
C, M, D = 5, 6, 4
VALUE_SUPPORT = {"v_min": -2.0, "v_max": 3.0, "num_bins": M}
PGD = {"steps": 2, "epsilon": 0.1, "step_size": 0.05, "clip": None}


def _bf16_exact(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).float()


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, C))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(_bf16_exact(p))
    return m


def _case(info):
    """(loss of the differentiable input, that input) on bf16-representable float32 data."""
    g = torch.Generator().manual_seed(0)
    if info.kind == "logits":
        x = _bf16_exact(torch.randn(8, C, generator=g) * 3)
        t = torch.randint(0, C, (8,), generator=g)
        t[2] = -100
        extras = {
            k: _bf16_exact(v) if v.is_floating_point() else v
            for k, v in make_extras(info.extra_inputs, x, t).items()
        }
        if info.batch_level:  # some batch-level losses couple rows; keep every row
            t[2] = 0
        return (lambda inp: info.function(inp, t, **extras)), x
    if info.kind == "value":
        x = _bf16_exact(torch.randn(8, M, generator=g) * 3)
        y = _bf16_exact(torch.rand(8, generator=g) * 6 - 2.5)
        y[3] = float("nan")
        return (lambda inp: info.function(inp, y, **VALUE_SUPPORT)), x
    if info.kind == "embeddings":
        e = _bf16_exact(torch.randn(12, D, generator=g))
        labels = torch.arange(12) % 3
        return (lambda inp: info.function(inp, labels)), e
    assert info.kind == "model", info.kind
    m = _model()
    x = _bf16_exact(torch.randn(6, D, generator=g))
    t = torch.randint(0, C, (6,), generator=g)
    return (lambda inp: info.function(m, inp, t, generator=torch.Generator().manual_seed(1), **PGD)), x


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_cpu_autocast_bf16_is_float32_and_matches_eager(info):
    fn, x = _case(info)
    x_eager = x.clone().requires_grad_()
    eager = fn(x_eager)
    (eager_grad,) = torch.autograd.grad(eager, x_eager)
    x_auto = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = fn(x_auto)
    assert auto.dtype == torch.float32, f"{info.name}: {auto.dtype} under autocast"
    assert torch.isfinite(auto), f"{info.name}: {auto}"
    (auto_grad,) = torch.autograd.grad(auto, x_auto)
    assert auto_grad.dtype == torch.float32 and torch.isfinite(auto_grad).all()
    if info.kind in ("logits", "value", "embeddings"):
        # Computed in float32: autocast changes nothing on bf16-representable inputs.
        torch.testing.assert_close(auto, eager, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(auto_grad, eager_grad, rtol=1e-4, atol=1e-6)
    else:
        # The user's model runs in bf16 under autocast: bf16 precision, eps 2^-8.
        torch.testing.assert_close(auto, eager, rtol=5e-2, atol=5e-2)


def test_autocast_row_dot_products_stay_float32():
    """Regression: the row dot product shared by KD, PLD, DKL, LER and SCE-consistency
    (``torch.linalg.vecdot``) was autocast to bfloat16, so ``kd`` was off by 4e-3 and ``ler``
    returned a bfloat16 loss."""
    g = torch.Generator().manual_seed(0)
    x = _bf16_exact(torch.randn(8, C, generator=g) * 3)
    teacher = _bf16_exact(torch.randn(8, C, generator=g) * 3)
    t = torch.randint(0, C, (8,), generator=g)
    eager = losslab.functional.kd(x, t, teacher_logits=teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = losslab.functional.kd(x, t, teacher_logits=teacher)
        auto_ler = losslab.get_loss("ler")(x, t)
    assert auto.dtype == torch.float32 and auto_ler.dtype == torch.float32
    torch.testing.assert_close(auto, eager, rtol=1e-6, atol=0)
    torch.testing.assert_close(auto_ler, losslab.get_loss("ler")(x, t), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- compile

COMPILE_KINDS = [i for i in INFOS if i.kind in ("value", "model", "embeddings")]
EMBEDDING_KINDS = [i for i in INFOS if i.kind == "embeddings"]

FULLGRAPH_BREAKS = {
    "adv-comp-sum": "smooth_adversarial_comp_sum (functional/logits/adversarial.py) drops ignored "
    "rows by boolean indexing (`inputs[kept]`, a data-dependent row count) and branches on it "
    "(`x.shape[0] > 0`) before its PGD loop (torch.autograd.grad per step)",
    "mw": "mw_loss (functional/embedding/pair_losses.py) takes the positive pairs with "
    "torch.where(mask), a data-dependent count, and scores them in chunks of chunk_size with a "
    "Python range over that count (the chunks bound its (pairs, negatives) memory)",
}


def _module(info):
    if info.kind == "value":
        return losslab.get_loss(info.name, **VALUE_SUPPORT)
    if info.kind == "embeddings":
        return losslab.get_loss(info.name)
    # A fresh seeded generator per module keeps the random PGD start identical.
    return losslab.get_loss(info.name, generator=torch.Generator().manual_seed(1), **PGD)


def _inputs(info):
    g = torch.Generator().manual_seed(0)
    if info.kind == "value":
        y = torch.rand(8, generator=g) * 6 - 2.5
        y[3] = float("nan")
        return torch.randn(8, M, generator=g) * 2, (y,), {}
    if info.kind == "embeddings":
        return torch.randn(12, D, generator=g), (torch.arange(12) % 3,), {}
    x = torch.randn(6, D, generator=g)
    return x, (torch.randint(0, C, (6,), generator=g),), {"model": _model()}


def _compiled_equals_eager(info, fullgraph: bool, autocast: bool = False):
    x, rest, kw = _inputs(info)

    def run(loss, inp):
        if "model" in kw:
            return loss(kw["model"], inp, *rest)
        return loss(inp, *rest)

    x_eager = x.clone().requires_grad_()
    value = run(_module(info), x_eager)
    (grad,) = torch.autograd.grad(value, x_eager)
    torch._dynamo.reset()
    compiled = torch.compile(_module(info), fullgraph=fullgraph, backend="aot_eager")
    x_c = x.clone().requires_grad_()
    # PyTorch traces a compiled backward under the forward's autocast unless told otherwise
    # (torch._functorch.config.backward_pass_autocast, default "same_as_forward"); eager
    # backward runs outside autocast, as the AMP recipe does, so compare with "off".
    # (The option exists from about PyTorch 2.8; older versions trace backward outside autocast.)
    off = ({"backward_pass_autocast": "off"}
           if autocast and hasattr(torch._functorch.config, "backward_pass_autocast") else {})
    with torch._functorch.config.patch(**off), torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=autocast
    ):
        c_value = run(compiled, x_c)
    assert c_value.dtype == torch.float32
    (c_grad,) = torch.autograd.grad(c_value, x_c)
    torch.testing.assert_close(c_value, value)
    torch.testing.assert_close(c_grad, grad)


@pytest.mark.slow
@pytest.mark.parametrize("info", COMPILE_KINDS, ids=[i.name for i in COMPILE_KINDS])
def test_compile_equals_eager_value_model_and_embedding_kinds(info):
    _compiled_equals_eager(info, fullgraph=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "info",
    [
        pytest.param(i, id=i.name, marks=[] if i.name not in FULLGRAPH_BREAKS else pytest.mark.xfail(
            strict=True, raises=torch._dynamo.exc.TorchDynamoException,
            reason=f"fullgraph=True: {FULLGRAPH_BREAKS[i.name]}",
        ))
        for i in COMPILE_KINDS
    ],
)
def test_compile_fullgraph_value_model_and_embedding_kinds(info):
    _compiled_equals_eager(info, fullgraph=True)


@pytest.mark.slow
@pytest.mark.parametrize("info", EMBEDDING_KINDS, ids=[i.name for i in EMBEDDING_KINDS])
def test_compiled_embedding_loss_under_autocast_is_float32_and_equals_eager(info):
    _compiled_equals_eager(info, fullgraph=False, autocast=True)
