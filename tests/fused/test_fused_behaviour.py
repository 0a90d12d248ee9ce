"""Half precision, gradient filtering, input errors and the no-O(N·V) memory guarantee."""

import math

import pytest
import torch
from allocation_probe import LargestAllocation

import losslab
from losslab.fused import vocab_major
from losslab.fused.filtering import resolve_filter_eps
from losslab.fused.reference import reference_linear_cross_entropy


@pytest.mark.parametrize(
    "impl", ["chunked_forward_grads", "chunked_recompute", "chunked_vocab_major", "chunked"]
)
def test_bf16_inputs_accumulate_in_fp32_and_match_the_reference(impl):
    g = torch.Generator().manual_seed(0)
    h = (torch.randn(50, 32, generator=g) * 0.5).bfloat16().requires_grad_()
    w = (torch.randn(300, 32, generator=g) * 0.5).bfloat16().requires_grad_()
    t = torch.randint(0, 300, (50,), generator=g)
    loss = losslab.linear_cross_entropy(h, w, t, impl=impl, chunk_size=16, z_loss=1e-3)
    assert loss.dtype == torch.float32
    loss.backward()
    assert h.grad.dtype == torch.bfloat16 and w.grad.dtype == torch.bfloat16
    h64, w64 = h.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    ref = reference_linear_cross_entropy(h64, w64, t, z_loss=1e-3)
    ref.backward()
    assert abs(loss.item() - ref.item()) < 1e-2 * ref.item()
    for ours, exact in ((h.grad, h64.grad), (w.grad, w64.grad)):
        rel = (ours.double() - exact).norm() / exact.norm()
        assert rel < 2e-2, rel


def test_filter_auto_thresholds_follow_cce():
    assert resolve_filter_eps("f", "auto", torch.bfloat16) == pytest.approx(2 ** -7 / 32)
    assert resolve_filter_eps("f", "auto", torch.float32) == pytest.approx(2 ** -23 / 32)
    assert resolve_filter_eps("f", None, torch.float32) is None


@pytest.mark.parametrize("impl", ["chunked", "chunked_vocab_major"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_filtered_gradients_stay_within_the_documented_bound(reduction, impl, monkeypatch):
    monkeypatch.setattr(vocab_major, "_VOCAB_TILE", 16)  # tiles that can be skipped
    monkeypatch.setattr(vocab_major, "_TILE_BYTES", 8 * 16 * 8)
    g = torch.Generator().manual_seed(1)
    n, d, v, eps = 64, 8, 400, 1e-3
    w = torch.randn(v, d, generator=g, dtype=torch.float64)
    t = torch.randint(0, 20, (n,), generator=g)  # a peaked model: mass on a few hot tokens
    h = (w[t] * 3 + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64))
    up = torch.rand(n, generator=g, dtype=torch.float64) - 0.5

    def grads(filter_eps):
        hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
        loss = losslab.linear_cross_entropy(hh, ww, t, reduction=reduction, chunk_size=16,
                                            filter_eps=filter_eps, impl=impl)
        (loss * up).sum().backward() if reduction == "none" else loss.backward()
        return loss.detach(), hh.grad, ww.grad

    l0, dh0, dw0 = grads(None)
    l1, dh1, dw1 = grads(eps)
    # The loss is exact (filtering only skips backward work); filtered rows are processed in
    # target order, so blocks hold other rows and BLAS may round the last bit differently.
    torch.testing.assert_close(l1, l0, rtol=1e-13, atol=0)
    wi = up.abs() if reduction == "none" else torch.full((n,), 1.0 / n, dtype=torch.float64)
    bound_h = wi[:, None] * eps * w.abs().sum(0)[None, :]
    bound_w = eps * (wi[:, None] * h.abs()).sum(0)[None, :]
    assert bool(((dh1 - dh0).abs() <= bound_h + 1e-15).all())
    assert bool(((dw1 - dw0).abs() <= bound_w + 1e-15).all())
    assert float((dw1 - dw0).abs().max()) > 0, "the filter skipped nothing; the test is void"


@pytest.mark.parametrize("impl,reduction", [("chunked_forward_grads", "mean"),
                                            ("chunked_recompute", "sum"),
                                            ("chunked", "none"),
                                            ("chunked_vocab_major", "mean")])
def test_chunked_path_never_allocates_n_by_v(impl, reduction, monkeypatch):
    n, d, v, rows = 600, 16, 500, 32
    # vocabulary-major tiles: `rows` rows × a whole (here: the only) vocabulary tile
    monkeypatch.setattr(vocab_major, "_TILE_BYTES", rows * v * 4)
    h = torch.randn(n, d, requires_grad=True)
    w = torch.randn(v, d, requires_grad=True)
    t = torch.randint(0, v, (n,))
    t[::7] = -100
    with LargestAllocation() as mode:
        loss = losslab.linear_cross_entropy(h, w, t, impl=impl, reduction=reduction,
                                            chunk_size=rows, softcap=3.0, label_smoothing=0.1)
        loss.sum().backward()
    # Largest tensors: a (rows, V) block, the (V, D) / (N, D) gradients; never N·V.
    assert mode.largest <= max(rows * v, n * d, v * d), mode.largest
    with LargestAllocation() as mode:
        reference_linear_cross_entropy(h, w, t).backward()
    assert mode.largest >= n * v  # the probe does see a materialised logits tensor


H, W, T = torch.randn(4, 3), torch.randn(6, 3), torch.randint(0, 6, (4,))


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((H, torch.randn(6, 5), T), {}, ValueError, "hidden has D=3.*weight has D=5"),
    ((H, W, torch.randint(0, 6, (5,))), {}, ValueError, r"target must have shape \(4,\)"),
    ((H, W, torch.tensor([0, 1, 6, 2])), {}, ValueError, "target has class 6.*V=6"),
    ((H, W, torch.tensor([0, -3, 1, 2])), {}, ValueError, "target has class -3"),
    ((H, W, T.float()), {}, TypeError, "target must hold class indices"),
    ((H.double(), W, T), {}, TypeError, "same dtype"),
    ((H.long(), W.long(), T), {}, TypeError, "hidden must be a floating-point"),
    ((H, W, T), {"bias": torch.randn(5)}, ValueError, r"bias must have shape \(6,\)"),
    ((H, W, T), {"reduction": "avg"}, ValueError, "reduction"),
    ((H, W, T), {"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ((H, W, T), {"softcap": 0.0}, ValueError, "softcap"),
    ((H, W, T), {"z_loss": -1.0}, ValueError, "z_loss"),
    ((H, W, T), {"impl": "cuda"}, ValueError, "impl must be one of"),
    ((H, W, T), {"chunk_size": 0}, ValueError, "chunk_size"),
    ((H, W, T), {"filter_eps": "fast"}, ValueError, "filter_eps"),
    ((H, W, T), {"filter_eps": -1.0}, ValueError, "filter_eps"),
    ((H, W, T), {"reduction": "none", "impl": "chunked_forward_grads"}, ValueError, "scalar loss"),
    ((H[0], W, T[0]), {"shift": True}, ValueError, r"hidden must have shape \(..., T, D\)"),
    ((H, W, T), {"process_group": object()}, ValueError, "not initialised"),
    (([1.0], W, T), {}, TypeError, "hidden must be a torch.Tensor"),
])
def test_bad_input_gives_a_clear_error(args, kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        losslab.linear_cross_entropy(*args, **kwargs)
    assert str(info.value).startswith("linear_cross_entropy:")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_filtering_row_order_keeps_positions_with_ignored_rows_and_shift(reduction):
    # A tiny filter_eps filters nothing but still processes the rows in target order.
    g = torch.Generator().manual_seed(5)
    h = torch.randn(3, 11, 6, generator=g, dtype=torch.float64)
    w = torch.randn(40, 6, generator=g, dtype=torch.float64)
    t = torch.randint(0, 40, (3, 11), generator=g)
    t[0, 2] = t[1, 7] = t[2, 0] = -100

    def run(filter_eps):
        hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
        loss = losslab.linear_cross_entropy(hh, ww, t, shift=True, reduction=reduction,
                                            chunk_size=4, filter_eps=filter_eps)
        up = torch.rand(loss.shape, generator=torch.Generator().manual_seed(0), dtype=loss.dtype)
        (loss * up).sum().backward()
        return loss.detach(), hh.grad, ww.grad

    for got, want in zip(run(1e-300), run(None), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_hidden_gradient_split_over_threads_matches_one_gemm(threads):
    from losslab.fused.blocks import hidden_grad_product

    g = torch.Generator().manual_seed(0)
    v, c, d = 101, 7, 5  # V not divisible by the thread count: a remainder tile
    gt = torch.randn(v, c, generator=g, dtype=torch.float64)  # vocabulary-major block
    w = torch.randn(v, d, generator=g, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for later_rows in (0, c * threads, 3 * c * threads):  # no room: plain mm; room: split
            dh = torch.full((c + later_rows, d), float("nan"), dtype=torch.float64)
            out = hidden_grad_product(gt.t(), w, dh[:c], dh)
            assert out.data_ptr() == dh.data_ptr()
            torch.testing.assert_close(dh[:c], gt.t() @ w, rtol=1e-12, atol=1e-12)
        out = torch.empty(c, d, dtype=torch.float64)
        hidden_grad_product(gt.t(), w, out, None)  # gathered rows: no room, plain mm
        torch.testing.assert_close(out, gt.t() @ w, rtol=1e-12, atol=1e-12)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("impl,first_skipped", [("chunked", 1), ("chunked_recompute", 1),
                                                ("chunked_vocab_major", 16)])
def test_filtering_bound_holds_with_a_negative_z_loss_factor_and_exact_bias_gradient(
        impl, first_skipped, monkeypatch):
    # One dominant class at logit -1 makes LSE < 0, so a = 1 + 2 c_z LSE < 0 (c_z = 2), and
    # every other class has p·|a| just below filter_eps; with label smoothing each skipped
    # entry p·a − ε/V then has magnitude p·|a| + ε/V > filter_eps unless the test adds ε/V.
    monkeypatch.setattr(vocab_major, "_VOCAB_TILE", 16)
    v, eps, cz, ls, top = 400, 1e-3, 2.0, 0.2, -1.0
    for delta in (x / 10 for x in range(40, 120)):
        e = math.exp(-delta)
        p = e / (1 + (v - 1) * e)
        a = 1 + 2 * cz * (top + math.log(1 + (v - 1) * e))
        if a < 0 and 0.55 * eps < p * abs(a) < 0.95 * eps:
            break
    w = torch.full((v, 1), top - delta, dtype=torch.float64)
    w[0] = top
    h = torch.ones(4, 1, dtype=torch.float64)
    t = torch.zeros(4, dtype=torch.long)

    def grads(filter_eps):
        hh, bb = h.clone().requires_grad_(), torch.zeros(v, dtype=torch.float64).requires_grad_()
        losslab.linear_cross_entropy(hh, w, t, bias=bb, reduction="sum", z_loss=cz,
                                     label_smoothing=ls, filter_eps=filter_eps,
                                     impl=impl).backward()
        return hh.grad, bb.grad

    (dh0, db0), (dh1, db1) = grads(None), grads(eps)
    assert float((dh1 - dh0).abs().max()) <= eps * float(w[first_skipped:].abs().sum())
    torch.testing.assert_close(db1, db0, rtol=1e-12, atol=1e-15)  # the bias gradient is exact


@pytest.mark.parametrize(
    "impl", ["chunked", "chunked_vocab_major", "chunked_forward_grads", "chunked_recompute"]
)
def test_fp16_survives_a_loss_scaler_sized_upstream_gradient(impl):
    g = torch.Generator().manual_seed(0)
    h = (torch.randn(8, 16, generator=g) * 0.01).half().requires_grad_()
    w = (torch.randn(50, 16, generator=g) * 0.02).half().requires_grad_()
    t = torch.randint(0, 50, (8,), generator=g)
    (losslab.linear_cross_entropy(h, w, t, reduction="sum", impl=impl) * 1e5).backward()
    h32, w32 = h.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    (reference_linear_cross_entropy(h32, w32, t, reduction="sum") * 1e5).backward()
    for ours, exact in ((h.grad, h32.grad), (w.grad, w32.grad)):
        assert bool(torch.isfinite(ours).all())
        assert float((ours.float() - exact).norm() / exact.norm()) < 2e-2


def test_half_precision_runs_the_strategy_the_budget_plans(monkeypatch):
    """The planned strategy is the one that runs: a budget below the (V, D) fp32 accumulator
    of the row-major strategies takes the vocabulary-major backward, 4 MiB does not (the
    default's choices are the strategy-table cases of test_fused_budget.py)."""
    from losslab.fused import chunked

    calls = []
    real = chunked.vocab_major_grads
    monkeypatch.setattr(chunked, "vocab_major_grads",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    g = torch.Generator().manual_seed(0)
    h = torch.randn(64, 64, generator=g).bfloat16()
    w = torch.randn(3000, 64, generator=g).bfloat16()
    t = torch.randint(0, 3000, (64,), generator=g)
    # the accumulator is 3000 x 64 x 4 = 750 KiB
    for filter_eps, budget, expected in ((None, 2**19, 1), ("auto", 2**19, 1), (None, 2**22, 0),
                                         ("auto", 2**22, 0)):
        calls.clear()
        hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
        losslab.linear_cross_entropy(hh, ww, t, filter_eps=filter_eps,
                                     memory_budget=budget).backward()
        assert len(calls) == expected, (filter_eps, budget)
