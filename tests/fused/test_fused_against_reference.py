"""linear_cross_entropy (chunked, both strategies) against the materialised reference."""

import random

import pytest
import torch

import losslab
from losslab.fused import blocks, vocab_major
from losslab.fused.reference import reference_linear_cross_entropy

IMPLS = ["chunked", "chunked_forward_grads", "chunked_recompute", "chunked_vocab_major"]


def _case(seed):
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    lead = rng.choice([(), (1,), (7,), (3, 5), (2, 3, 4), (13,)])
    shift = bool(lead) and rng.random() < 0.3
    if shift and lead[-1] < 2:
        lead = (*lead[:-1], 3)
    dim, vocab = rng.choice([1, 2, 5, 9, 16]), rng.choice([1, 2, 3, 11, 37, 64])
    h = torch.randn(*lead, dim, generator=g, dtype=torch.float64) * rng.choice([0.3, 1.0, 4.0])
    w = torch.randn(vocab, dim, generator=g, dtype=torch.float64)
    b = torch.randn(vocab, generator=g, dtype=torch.float64) if rng.random() < 0.5 else None
    ignore_index = rng.choice([-100, -1, 0]) if vocab > 1 else -100
    t = torch.randint(0, vocab, lead, generator=g)
    share = rng.choice([0.0, 0.0, 0.3, 0.9, 1.0])
    t[torch.rand(lead, generator=g) < share] = ignore_index
    reduction = rng.choice(["mean", "sum", "none"])
    impl = rng.choice(IMPLS if reduction != "none"
                      else ["chunked", "chunked_recompute", "chunked_vocab_major"])
    opts = dict(
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=rng.choice([0.0, 0.0, 0.1, 0.5, 1.0]),
        z_loss=rng.choice([0.0, 0.0, 1e-4, 0.3]),
        softcap=rng.choice([None, None, 0.7, 5.0]),
        shift=shift,
    )
    chunk = rng.choice([None, 1, 2, 3, 8])
    return h, w, b, t, opts, impl, chunk


def _loss_and_grads(fn, h, w, b, t, opts, upstream_seed, **extra):
    leaves = [x.clone().requires_grad_() for x in (h, w) + ((b,) if b is not None else ())]
    loss = fn(leaves[0], leaves[1], t, bias=leaves[2] if b is not None else None, **opts, **extra)
    up = torch.rand(loss.shape, dtype=loss.dtype, generator=torch.Generator().manual_seed(upstream_seed))
    (loss * (up + 0.5)).sum().backward()
    return [loss.detach()] + [x.grad for x in leaves]


def _close(a, b, what):
    scale = max(float(b.abs().max()) if b.numel() else 0.0, 1e-12)
    err = float((a - b).abs().max()) if b.numel() else 0.0
    assert err <= 1e-7 * scale + 1e-13, f"{what}: max error {err:.3g} vs scale {scale:.3g}"


@pytest.mark.parametrize("seed", range(240))
def test_random_options_match_reference_in_float64(seed, monkeypatch):
    h, w, b, t, opts, impl, chunk = _case(seed)
    if seed % 2:  # logits GEMMs in several vocabulary tiles, the last one partial
        monkeypatch.setattr(blocks, "CPU_VOCAB_TILE", random.Random(-seed).choice([1, 5, 16]))
    if seed % 3:  # vocabulary-major backward over several vocabulary and row tiles
        monkeypatch.setattr(vocab_major, "_VOCAB_TILE", random.Random(seed).choice([1, 4, 7]))
        monkeypatch.setattr(vocab_major, "_TILE_BYTES", random.Random(seed).choice([8, 100, 10**6]))
    ours = _loss_and_grads(losslab.linear_cross_entropy, h, w, b, t, opts, seed,
                           impl=impl, chunk_size=chunk)
    ref = _loss_and_grads(reference_linear_cross_entropy, h, w, b, t, opts, seed)
    assert ours[0].shape == ref[0].shape
    for name, a, r in zip(["loss", "d_hidden", "d_weight", "d_bias"], ours, ref, strict=False):
        _close(a, r, f"{name} ({impl}, chunk={chunk}, {opts})")


def test_worked_value():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # rows: log(1 + e^-2) = 0.126928, log(1 + e^-1) = 0.313262
    loss = losslab.linear_cross_entropy(h, w, torch.tensor([0, 1]), reduction="none")
    torch.testing.assert_close(loss, torch.tensor([0.126928, 0.313262]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_all_ignored_mean_is_zero_with_zero_gradients(impl):
    h = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(7, 3, requires_grad=True)
    loss = losslab.linear_cross_entropy(h, w, torch.full((5,), -100), impl=impl)
    loss.backward()
    assert loss.item() == 0.0 and loss.dtype == torch.float32
    assert torch.count_nonzero(h.grad) == 0 and torch.count_nonzero(w.grad) == 0


def test_ignored_rows_do_not_change_the_mean():
    g = torch.Generator().manual_seed(3)
    h, w = torch.randn(9, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 6, (9,), generator=g)
    t2 = t.clone()
    t2[[1, 4]] = -100
    full = losslab.linear_cross_entropy(h[t2 != -100], w, t[t2 != -100])
    torch.testing.assert_close(losslab.linear_cross_entropy(h, w, t2), full)


def test_return_lse_and_no_grad_path():
    g = torch.Generator().manual_seed(4)
    h, w = torch.randn(2, 5, 3, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 8, (2, 5), generator=g)
    t[0, 0] = -100
    with torch.no_grad():
        loss, lse = losslab.linear_cross_entropy(h, w, t, return_lse=True, softcap=2.0)
    ref_lse = torch.logsumexp(2.0 * torch.tanh(h @ w.T / 2.0), -1)
    ref_lse[0, 0] = 0.0
    torch.testing.assert_close(lse, ref_lse)
    torch.testing.assert_close(loss, reference_linear_cross_entropy(h, w, t, softcap=2.0))
    _, lse_ref = losslab.linear_cross_entropy(h, w, t, return_lse=True, softcap=2.0, impl="reference")
    torch.testing.assert_close(lse_ref, ref_lse)


def test_shift_none_shape_and_values():
    g = torch.Generator().manual_seed(5)
    h, w = torch.randn(2, 6, 4, generator=g, dtype=torch.float64), torch.randn(9, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 9, (2, 6), generator=g)
    ours = losslab.linear_cross_entropy(h, w, t, shift=True, reduction="none")
    assert ours.shape == (2, 5)
    manual = losslab.functional.cross_entropy((h[:, :-1] @ w.T).reshape(-1, 9), t[:, 1:].reshape(-1), reduction="none")
    torch.testing.assert_close(ours, manual.reshape(2, 5))


def test_forward_grads_refuses_a_second_backward_but_recompute_allows_it():
    h = torch.randn(6, 3, requires_grad=True)
    w = torch.randn(5, 3, requires_grad=True)
    t = torch.randint(0, 5, (6,))
    loss = losslab.linear_cross_entropy(h, w, t, impl="chunked_forward_grads")
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="chunked_recompute"):
        loss.backward()
    loss = losslab.linear_cross_entropy(h, w, t, impl="chunked_recompute")
    h.grad = None
    loss.backward(retain_graph=True)
    first = h.grad.clone()
    loss.backward()
    torch.testing.assert_close(h.grad, 2 * first)


def test_frozen_weight_and_scaled_upstream():
    g = torch.Generator().manual_seed(6)
    h = torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(10, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 10, (7,), generator=g)
    (3.5 * losslab.linear_cross_entropy(h, w, t, impl="chunked_forward_grads")).backward()
    ours = h.grad.clone()
    h.grad = None
    (3.5 * reference_linear_cross_entropy(h, w, t)).backward()
    torch.testing.assert_close(ours, h.grad)


def test_module_equals_function():
    g = torch.Generator().manual_seed(7)
    h, w = torch.randn(5, 3, generator=g), torch.randn(11, 3, generator=g)
    b = torch.randn(11, generator=g)
    t = torch.randint(0, 11, (5,), generator=g)
    mod = losslab.nn.LinearCrossEntropy(label_smoothing=0.2, z_loss=1e-3)
    torch.testing.assert_close(
        mod(h, w, t, bias=b),
        losslab.linear_cross_entropy(h, w, t, bias=b, label_smoothing=0.2, z_loss=1e-3))
    with pytest.raises(ValueError, match="label_smoothing"):
        losslab.nn.LinearCrossEntropy(label_smoothing=2.0)
