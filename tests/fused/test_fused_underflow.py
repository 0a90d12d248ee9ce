"""Rows whose target probability underflows after the in-place softmax.

The chunked path recovers each row's LSE as z_y − log p_y from the probabilities; when p_y
is below the smallest normal number (z_y more than ~87 nats under the LSE in fp32, ~708 in
fp64) that is impossible and the row's LSE is recomputed. Without the fallback these rows
would report an infinite loss.
"""

import pytest
import torch

import losslab
from losslab.fused import chunked
from losslab.fused.reference import reference_linear_cross_entropy


def _extreme_batch(dtype: torch.dtype, spread: float, seed: int = 0):
    """Logits spanning ``spread`` nats per row; every other row targets its least likely
    class (an underflowing probability), the rest their most likely one."""
    g = torch.Generator().manual_seed(seed)
    n, d, v = 40, 6, 70
    w = torch.randn(v, d, generator=g, dtype=torch.float64)
    h = torch.randn(n, d, generator=g, dtype=torch.float64)
    z = h @ w.T
    h = h * (spread / (z.amax(1) - z.amin(1))).unsqueeze(1)
    z = h @ w.T
    t = torch.where(torch.arange(n) % 2 == 0, z.argmin(1), z.argmax(1))
    return h.to(dtype), w.to(dtype), t


@pytest.fixture
def recompute_calls(monkeypatch):
    calls = []
    real = chunked.relog_block

    def spy(buf, h, *args, **kwargs):
        calls.append(h.shape[0])
        return real(buf, h, *args, **kwargs)

    monkeypatch.setattr(chunked, "relog_block", spy)
    return calls


@pytest.mark.parametrize(
    "impl", ["chunked_forward_grads", "chunked_recompute", "chunked_vocab_major"]
)
@pytest.mark.parametrize(
    ("dtype", "spread", "opts", "rtol"),
    [
        (torch.float64, 1500.0, {}, 1e-10),
        (torch.float64, 1500.0, {"label_smoothing": 0.1, "z_loss": 1e-4}, 1e-10),
        (torch.float64, 4000.0, {"softcap": 500.0}, 1e-10),
        (torch.float32, 300.0, {"bias": True}, 1e-5),
    ],
)
def test_underflowing_target_probability_matches_reference(impl, dtype, spread, opts, rtol,
                                                           recompute_calls):
    h, w, t = _extreme_batch(dtype, spread)
    opts = dict(opts)
    bias = None
    if opts.pop("bias", False):
        bias = torch.linspace(-3, 3, w.shape[0], dtype=dtype).requires_grad_()
    hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss = losslab.linear_cross_entropy(hh, ww, t, bias=bias, impl=impl, chunk_size=8, **opts)
    loss.backward()
    if impl != "chunked_vocab_major":  # its backward uses the forward's log-domain LSE
        assert recompute_calls, "the underflow fallback was not exercised"
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    b64 = None if bias is None else bias.detach().double()
    ref = reference_linear_cross_entropy(h64, w64, t, bias=b64, **opts)
    ref.backward()
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), ref, rtol=rtol, atol=0)
    for ours, exact in ((hh.grad, h64.grad), (ww.grad, w64.grad)):
        # entries far below the largest one carry the fp32 rounding of the large logits
        torch.testing.assert_close(ours.double(), exact, rtol=rtol,
                                   atol=rtol * float(exact.abs().max()))


def test_per_row_losses_and_lse_of_underflowing_rows(recompute_calls):
    h, w, t = _extreme_batch(torch.float64, 1500.0, seed=3)
    up = torch.linspace(-1, 1, h.shape[0], dtype=torch.float64)
    hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss, lse = losslab.linear_cross_entropy(hh, ww, t, reduction="none", chunk_size=8,
                                             return_lse=True)
    (loss * up).sum().backward()
    h64, w64 = h.clone().requires_grad_(), w.clone().requires_grad_()
    ref = reference_linear_cross_entropy(h64, w64, t, reduction="none")
    (ref * up).sum().backward()
    assert recompute_calls  # the backward's sweep normalises with its own softmax
    assert bool((ref[::2] > 708).all())  # the even rows really underflow in fp64
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lse, torch.logsumexp(h @ w.T, 1), rtol=1e-12, atol=0)
    torch.testing.assert_close(hh.grad, h64.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ww.grad, w64.grad, rtol=1e-10, atol=1e-12)
