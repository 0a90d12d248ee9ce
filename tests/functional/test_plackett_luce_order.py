"""The Plackett–Luce fast path: int32 keys (quantised teacher + class index) and their
repair reproduce the exact order of ``ascending_pl_order`` on data built to collide, and the
loss computed with its gradient in the forward matches autograd through the log-space
formula."""

import pytest
import torch

import losslab.functional as LF
from losslab._core.scratch import Scratch
from losslab.functional._core import plackett_luce as PL
from losslab.functional._core import row_blocks as _row_chunks


def _fast(t, y):
    order, ts = PL._order(t, y, Scratch(t.device))
    assert order.dtype == torch.int32  # the fast path ran
    return order.long(), ts


def _check_order(t, y):
    order, ts = _fast(t, y)
    exact = PL.ascending_pl_order(t, y)
    assert torch.equal(order, exact)
    assert torch.equal(ts, t.gather(1, exact))


@pytest.mark.parametrize("c", [3, 6, 37, 1000, 4096])
def test_quantized_order_equals_exact_order_on_random_teachers(c):
    g = torch.Generator().manual_seed(c)
    t = torch.randn(64, c, generator=g) * 3
    t[::7, -1] = 40.0  # a dominant class stretches the range: coarser steps, more sharing
    y = torch.randint(0, c, (64,), generator=g)
    _check_order(t, y)


def test_quantized_order_ties_signed_zeros_and_coarse_steps():
    g = torch.Generator().manual_seed(1)
    t = (torch.randn(128, 50, generator=g) * 2).round()  # many exact ties
    t[0, :4] = torch.tensor([0.0, -0.0, 0.0, -0.0])
    # values a few ulps apart inside one step of a wide row: long runs of shared steps
    t[1] = torch.linspace(0, 1, 50)
    t[1, 10:30] = 0.5 + torch.arange(20) * 1e-7
    t[2] = torch.arange(50.0).flip(0) * 1e-30  # tiny range: steps are fine again
    y = torch.randint(0, 50, (128,), generator=g)
    _check_order(t, y)


def test_a_lone_pair_in_a_step_is_swapped_and_longer_runs_resorted(monkeypatch):
    counts = []
    repair = PL._repair
    monkeypatch.setattr(PL, "_repair", lambda *a: counts.append(repair(*a)) or counts[-1])
    a = torch.tensor(0.3)
    b = torch.nextafter(a, torch.tensor(1.0))
    # class 1 holds the smaller value: the quantised sort (ties by descending class) puts
    # class 2 first, one ulp too early; range 10 makes a step ~5e-6 wide.
    t = torch.tensor([[-5.0, a.item(), b.item(), 5.0, 1.0]])
    y = torch.tensor([4])
    _check_order(t, y)
    assert counts == [(1, 0)]
    counts.clear()
    t3 = torch.tensor([[-5.0, a.item(), b.item(), torch.nextafter(b, torch.tensor(1.0)).item(), 5.0]])
    _check_order(t3, torch.tensor([0]))
    assert counts == [(0, 1)]


def test_quantized_order_on_non_finite_and_degenerate_rows():
    t = torch.tensor(
        [
            [1.0, float("-inf"), 2.0, float("-inf"), 0.5],
            [1.0, float("inf"), 2.0, -1.0, 0.5],
            [3.0, 3.0, 3.0, 3.0, 3.0],
            [-3e38, 3e38, 0.0, 1.0, -1.0],  # the range overflows
            [2.0, 1.0, 2.0, 1.0, 2.0],
        ]
    )
    y = torch.tensor([2, 0, 4, 1, 3])
    _check_order(t, y)


def test_int32_keys_only_where_they_fit():
    t = torch.randn(4, PL.INT32_KEY_MAX_CLASSES + 1)
    y = torch.zeros(4, dtype=torch.long)
    assert PL._order(t, y, Scratch(t.device))[0].dtype == torch.int64
    assert PL._order(t[:, :2], y, Scratch(t.device))[0].dtype == torch.int64
    assert PL._order(t.double()[:, :8], y, Scratch(t.device))[0].dtype == torch.int64


def _reference(z, t, y, tau):
    order = PL.ascending_pl_order(t, y)
    alpha = torch.softmax(t.double() / tau, 1).gather(1, order)
    s = z.double().gather(1, order)
    return (alpha * (torch.logcumsumexp(s, 1) - s)).sum(1)


@pytest.mark.parametrize("tau", [1.0, 4.0])
@pytest.mark.parametrize("block", [None, 3000])
def test_loss_and_gradient_match_log_space_autograd(monkeypatch, tau, block):
    if block:  # several blocks of 3 rows and a partial last one
        monkeypatch.setattr(PL, "BLOCK_ELEMENTS", block)
        monkeypatch.setattr(_row_chunks, "MIN_ROWS", 1)
    g = torch.Generator().manual_seed(7)
    z = (torch.randn(20, 1000, generator=g) * 3).requires_grad_()
    t = torch.randn(20, 1000, generator=g) * 3
    t[:, 500:520] = 0.25 + torch.arange(20) * 3e-8  # shared steps in every row
    y = torch.randint(0, 1000, (20,), generator=g)
    value, bad = PL.plackett_luce(z, t, y, tau=tau)
    assert not bad.any()
    up = torch.rand(20, generator=g)
    (grad,) = torch.autograd.grad(value, z, up)
    zd = z.detach().double().requires_grad_()
    ref = _reference(zd, t, y, tau)
    (ref_grad,) = torch.autograd.grad(ref, zd, up.double())
    torch.testing.assert_close(value.double(), ref.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-6)


def test_kept_gradient_under_retain_graph_no_grad_and_double_backward(monkeypatch):
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, 9, generator=g, requires_grad=True)
    t, y = torch.randn(6, 9, generator=g), torch.randint(0, 9, (6,), generator=g)
    loss = LF.pld(z, y, teacher_logits=t, reduction="none")
    up1, up2 = torch.rand(6, generator=g), torch.rand(6, generator=g)
    (first,) = torch.autograd.grad(loss, z, up1, retain_graph=True)
    (second,) = torch.autograd.grad(loss, z, up2)
    zd = z.detach().double().requires_grad_()
    ref = _reference(zd, t, y, 1.0)
    for got, up in ((first, up1), (second, up2)):
        (want,) = torch.autograd.grad(ref, zd, up.double(), retain_graph=True)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-7)
    # without a graph to follow, no gradient is made in the forward
    grads = []
    block = PL._block
    monkeypatch.setattr(PL, "_block", lambda *a: grads.append(a[4]) or block(*a))
    with torch.no_grad():
        assert torch.equal(LF.pld(z, y, teacher_logits=t, reduction="none"), loss.detach())
    LF.pld(z.detach(), y, teacher_logits=t)
    assert grads == [None, None]
    with pytest.raises(NotImplementedError, match="PlackettLuce has a hand-written first-order"):
        torch.autograd.grad(LF.pld(z, y, teacher_logits=t), z, create_graph=True)


@pytest.mark.parametrize("mask", [float("-inf"), -1e9, torch.finfo(torch.float32).min, -2000.0])
def test_masked_teacher_classes_keep_the_fast_path(monkeypatch, mask):
    counts = []
    repair = PL._repair
    monkeypatch.setattr(PL, "_repair", lambda *a: counts.append(repair(*a)) or counts[-1])
    g = torch.Generator().manual_seed(4)
    t = torch.randn(64, 1000, generator=g) * 3
    t[:, :10] = mask
    t[1, 3] = mask * 2 if mask > -1e30 else mask  # unequal masks in one row: repaired exactly
    y = torch.randint(0, 1000, (64,), generator=g)
    _check_order(t, y)
    assert sum(resorted for _, resorted in counts) <= 1  # not every masked row sorted twice
