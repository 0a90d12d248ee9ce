"""memory_budget of the fused linear losses: the strategy table case by case, the argument's
forms and errors, equal values and gradients under any budget, and the bytes actually held
staying within the budget."""

import pytest
import torch
from allocation_probe import PeakLiveBytes

import losslab
from losslab.fused import api, strategy
from losslab.fused.reference import reference_linear_cross_entropy
from losslab.fused.strategy import (
    STRATEGY_TABLE,
    Problem,
    half_accumulator_bytes,
    plan,
    table_key,
)

torch.set_num_threads(1)

MIB = 2**20


def _problem(dtype: torch.dtype, filtering: bool, n=4096, d=512, v=32768, threads=2):
    return Problem(rows=n, kept=n, dim=d, vocab=v, compute_bytes=4,
                   storage_bytes=torch.tensor([], dtype=dtype).element_size(), softcap=False,
                   smoothing=False, filtering=filtering, gathered=filtering, bias_grad=False,
                   hidden_grad=True, threads=threads)


# (dtype, filtering, reduction, budget as a fraction of the 512 MiB fp32 logits or None,
#  the strategy and rows per block docs/fused.md's table gives at N=4096, D=512, V=32768)
CASES = [
    (torch.float32, False, "mean", None, "forward_grads", 128),
    (torch.float32, False, "mean", 0.02, "forward_grads", 80),
    (torch.float32, False, "sum", 0.25, "forward_grads", 512),
    (torch.float32, False, "none", None, "recompute", 128),
    (torch.float32, True, "mean", 0.1, "forward_grads", 176),
    (torch.float32, True, "none", 0.1, "recompute", 176),
    (torch.bfloat16, False, "mean", None, "vocab_major", 128),
    (torch.bfloat16, False, "mean", 0.5, "forward_grads", 512),
    (torch.bfloat16, False, "mean", 0.13, "vocab_major", 352),
    (torch.bfloat16, False, "none", 1.0, "vocab_major", 512),
    (torch.bfloat16, True, "mean", None, "forward_grads", 128),
    (torch.bfloat16, True, "mean", 1.0, "forward_grads", 512),
    (torch.bfloat16, True, "mean", 0.05, "vocab_major", 128),
    (torch.bfloat16, True, "none", None, "recompute", 128),
    (torch.bfloat16, True, "none", 1.0, "recompute", 512),
    (torch.bfloat16, True, "none", 0.05, "vocab_major", 128),
]


@pytest.mark.parametrize("dtype,filtering,reduction,fraction,expected,rows", CASES)
def test_strategy_table_case(dtype, filtering, reduction, fraction, expected, rows):
    p = _problem(dtype, filtering)
    budget = None if fraction is None else int(fraction * p.logits_bytes)
    chosen = plan(p, table_key(dtype, filtering, reduction, False), budget, fn="t")
    assert (chosen.strategy, chosen.rows_per_block) == (expected, rows)
    assert chosen.strategy in STRATEGY_TABLE[table_key(dtype, filtering, reduction, False)]
    assert chosen.predicted_bytes <= chosen.budget
    if budget is not None:
        assert chosen.budget == budget
    else:  # the default: 2 % of the logits at least, 10 % at most, beyond the fp32 (V, D)
        # accumulator that filtered half-precision calls keep for their fast path
        exempt = half_accumulator_bytes(p) if filtering and expected != "vocab_major" else 0
        assert 0.02 * p.logits_bytes <= chosen.budget - exempt <= 0.10 * p.logits_bytes


def test_default_budget_reaches_the_default_rows_only_within_ten_percent():
    p = _problem(torch.float32, False, n=1024, d=512, v=262144)
    chosen = plan(p, table_key(torch.float32, False, "mean", False), None, fn="t")
    assert chosen.budget == int(0.10 * p.logits_bytes)  # 128 rows would be 12.5 %
    assert chosen.rows_per_block == 96  # 10 % of 1024 rows less the fixed bytes, rounded to 16


@pytest.mark.parametrize("n,d,v,rows", [(512, 4096, 262144, 240), (1024, 4096, 32768, 240),
                                        (1024, 2048, 131072, 112)])
def test_default_budget_holds_a_sixteenth_of_the_weight(n, d, v, rows):
    """Few tokens, wide hidden states: 10 % of the logits would leave 25–100 rows per block;
    the default takes 1/16 of the weight's bytes for the block instead (about D/16 rows)."""
    p = _problem(torch.float32, False, n=n, d=d, v=v)
    chosen = plan(p, table_key(torch.float32, False, "mean", False), None, fn="t")
    weight_bytes = v * d * 4
    fixed = strategy.footprint("forward_grads", p).fixed
    assert chosen.budget == fixed + weight_bytes // 16
    assert chosen.budget > 0.10 * p.logits_bytes
    assert chosen.rows_per_block == rows and chosen.predicted_bytes <= chosen.budget


@pytest.mark.parametrize("fraction", [0.017, 0.02, 0.03, 0.05, 0.13])
def test_rows_per_block_are_a_multiple_of_sixteen_below_every_row(fraction):
    p = _problem(torch.float32, False)
    chosen = plan(p, table_key(torch.float32, False, "mean", False),
                  int(fraction * p.logits_bytes), fn="t")
    assert chosen.rows_per_block % 16 == 0
    allowed = strategy.footprint("forward_grads", p).rows_within(int(fraction * p.logits_bytes))
    allowed = min(allowed, 512)  # FUSED_CE_MAX_ROWS
    assert allowed - 16 < chosen.rows_per_block <= allowed


def test_a_block_of_every_row_is_not_rounded():
    p = _problem(torch.float32, False, n=100)
    chosen = plan(p, table_key(torch.float32, False, "mean", False), 2 * p.logits_bytes,
                  fn="t")
    assert chosen.rows_per_block == 100


def test_vocabulary_parallel_calls_use_the_per_row_entry():
    assert table_key(torch.float32, False, "mean", True) == ("full", False, "per_row")
    assert table_key(torch.float16, True, "sum", False) == ("half", True, "scalar")


def test_tiny_problem_default_never_refuses():
    p = _problem(torch.float32, False, n=1, d=1, v=2)
    chosen = plan(p, table_key(torch.float32, False, "mean", False), None, fn="t")
    assert chosen.rows_per_block == 1 and chosen.predicted_bytes <= chosen.budget


def _data(n=300, d=12, v=700, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(v, d, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(v, generator=g, dtype=dtype, requires_grad=True)
    y = torch.randint(0, v, (n,), generator=g)
    y[::5] = -100
    return h, w, b, y


def _minimum(fn, *args, **kwargs):
    with pytest.raises(ValueError, match="too small") as err:
        fn(*args, memory_budget=1, **kwargs)
    return int(str(err.value).rsplit("memory_budget=", 1)[1])


@pytest.mark.parametrize("impl", ["chunked", "chunked_recompute", "chunked_vocab_major"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_value_and_gradients_do_not_depend_on_the_budget(impl, reduction):
    h, w, b, y = _data()
    opts = dict(bias=b, reduction=reduction, label_smoothing=0.1, z_loss=1e-3, softcap=4.0)
    up = torch.randn(y.shape, dtype=torch.float64)

    def run(fn, **kw):
        loss = fn(h, w, y, **opts, **kw)
        (loss * up).sum().backward() if reduction == "none" else loss.backward()
        out = [loss.detach(), h.grad, w.grad, b.grad]
        h.grad = w.grad = b.grad = None
        return out

    expected = run(reference_linear_cross_entropy)
    smallest = _minimum(losslab.linear_cross_entropy, h, w, y, impl=impl, **opts)
    for budget in (None, smallest, 3 * smallest, 0.3, 1.0, 10**9):
        got = run(losslab.linear_cross_entropy, impl=impl, memory_budget=budget)
        for a, e in zip(got, expected, strict=True):
            torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", ["gce", "ce", "kd"])
def test_linear_loss_value_and_gradients_do_not_depend_on_the_budget(loss):
    h, w, b, y = _data(n=120, v=300)
    teacher = dict(teacher_hidden=torch.randn(120, 5, dtype=torch.float64),
                   teacher_weight=torch.randn(300, 5, dtype=torch.float64)) if loss == "kd" else {}
    results = []
    smallest = _minimum(losslab.linear_loss, h, w, y, loss, bias=b, **teacher)
    for budget in (None, smallest, 2 * smallest, 1.0):
        out = losslab.linear_loss(h, w, y, loss, bias=b, memory_budget=budget, **teacher)
        out.backward()
        results.append([out.detach(), h.grad, w.grad, b.grad])
        h.grad = w.grad = b.grad = None
    for other in results[1:]:
        for a, e in zip(other, results[0], strict=True):
            torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12)


def _held_extra(fn, h, w, y, **kw):
    with PeakLiveBytes(h, w, y, kw.get("bias")) as probe:
        out = fn(h, w, y, **kw)
        (out.sum() if out.dim() else out).backward()
    grads = sum(t.grad.untyped_storage().nbytes() for t in (h, w, kw.get("bias"))
                if t is not None and t.grad is not None)
    h.grad = w.grad = None
    return probe.peak - grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", [dict(), dict(reduction="none"), dict(softcap=3.0),
                                  dict(filter_eps=1e-3), dict(shift=True)])
@pytest.mark.parametrize("budget", [None, 0.06, 0.1, 0.5, 600_000])
def test_bytes_held_stay_within_the_budget(dtype, case, budget):
    n, d, v = 512, 24, 3000
    torch.manual_seed(0)
    h = torch.randn(8, n // 8, d).to(dtype).requires_grad_()
    w = (torch.randn(v, d) / 4).to(dtype).requires_grad_()
    y = torch.randint(0, v, (8, n // 8))
    y[:, ::9] = -100
    chosen = []
    real_plan = api.plan

    def spy(*args, **kwargs):
        chosen.append(real_plan(*args, **kwargs))
        return chosen[-1]

    try:
        api.plan = spy
        held = _held_extra(losslab.linear_cross_entropy, h, w, y, memory_budget=budget, **case)
    finally:
        api.plan = real_plan
    logits = n * v * 4
    limit = chosen[0].budget
    if budget is not None:
        assert limit == (budget if isinstance(budget, int) else int(budget * logits))
    assert 0 < held <= limit, (held, limit, chosen[0])
    assert chosen[0].predicted_bytes <= limit


@pytest.mark.parametrize("loss,budget", [("gce", 0.05), ("focal", 400_000), ("gce", None)])
def test_linear_loss_bytes_held_stay_within_the_budget(loss, budget):
    n, d, v = 256, 16, 4000
    torch.manual_seed(1)
    h = torch.randn(n, d, requires_grad=True)
    w = torch.randn(v, d, requires_grad=True)
    y = torch.randint(0, v, (n,))
    held = _held_extra(losslab.linear_loss, h, w, y, loss=loss, memory_budget=budget)
    limit = budget if isinstance(budget, int) else (budget or 0.1) * n * v * 4
    if budget is None:  # the default 8 MiB block: the budget machinery is not involved
        limit = 8 * MIB + 12 * 8 * v * 4
    assert 0 < held <= limit, (held, limit)


H, W, Y = torch.randn(6, 3), torch.randn(10, 3), torch.randint(0, 10, (6,))


@pytest.mark.parametrize("fn", [losslab.linear_cross_entropy,
                                lambda *a, **k: losslab.linear_loss(*a, loss="gce", **k)])
@pytest.mark.parametrize("kwargs,exc,match", [
    ({"memory_budget": 0}, ValueError, r"memory_budget in bytes must be >= 1, got 0"),
    ({"memory_budget": -5}, ValueError, r"must be >= 1, got -5"),
    ({"memory_budget": 0.0}, ValueError, r"must lie in \(0, 1\], got 0.0"),
    ({"memory_budget": 1.5}, ValueError, r"must lie in \(0, 1\], got 1.5; pass an int"),
    ({"memory_budget": True}, TypeError, "memory_budget must be an int.*got bool"),
    ({"memory_budget": "1MB"}, TypeError, "memory_budget must be an int.*got str"),
    ({"memory_budget": 0.5, "chunk_size": 4}, ValueError,
     r"chunk_size .* or memory_budget .*not both; got chunk_size=4 and memory_budget=0.5"),
    ({"memory_budget": 10}, ValueError,
     r"memory_budget=10 bytes is too small: the smallest block .* needs \d+ bytes .* "
     r"N=6, D=3, V=10; pass at least memory_budget=\d+"),
])
def test_bad_budget_gives_a_clear_error(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(H, W, Y, **kwargs)


def test_the_minimum_named_by_the_error_runs():
    h, w, b, y = _data(n=64, v=200)
    for fn in (losslab.linear_cross_entropy,
               lambda *a, **k: losslab.linear_loss(*a, loss="focal", **k)):
        smallest = _minimum(fn, h, w, y)
        fn(h, w, y, memory_budget=smallest).backward()
        with pytest.raises(ValueError, match="too small"):
            fn(h, w, y, memory_budget=smallest - 1)


def test_reference_impl_refuses_a_budget():
    with pytest.raises(ValueError, match="impl='reference' materialises"):
        losslab.linear_cross_entropy(H, W, Y, impl="reference", memory_budget=0.5)


def test_modules_take_the_budget():
    h, w, b, y = _data(n=40, v=90)
    ce = losslab.nn.LinearCrossEntropy(memory_budget=0.9)
    torch.testing.assert_close(ce(h, w, y), losslab.linear_cross_entropy(h, w, y))
    gce = losslab.nn.LinearLoss("gce", memory_budget=0.9)
    torch.testing.assert_close(gce(h, w, y), losslab.linear_loss(h, w, y, "gce"))
    for cls, args in ((losslab.nn.LinearCrossEntropy, ()), (losslab.nn.LinearLoss, ("gce",))):
        with pytest.raises(ValueError, match="not both"):
            cls(*args, memory_budget=0.2, chunk_size=8)
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            cls(*args, memory_budget=2.0)


def test_filtering_gathers_no_more_columns_than_the_budget_allows():
    p = _problem(torch.float32, True, n=4096, d=512, v=32768)
    key = table_key(torch.float32, True, "mean", False)
    small = plan(p, key, int(0.02 * p.logits_bytes), fn="t")
    large = plan(p, key, int(1.0 * p.logits_bytes), fn="t")
    assert 0 <= small.max_active < large.max_active == int(strategy.MAX_ACTIVE_SHARE * 32768)
    assert small.predicted_bytes <= small.budget and large.predicted_bytes <= large.budget
