"""The hand-written backward passes of the softmax-family fast paths (log-softmax row
statistics, LDR-KL rows, the standardised target of the spherical Z-loss) against plain
autograd references written here from the formulas, in float64, with blocked temporaries
forced to many small blocks."""

import math

import pytest
import torch

import losslab.functional as LF
from losslab.functional._core import row_blocks as RB
from losslab.functional._core import softmax_row_stats as SRS
from losslab.functional.logits import ldr as L
from losslab.functional.logits import normalized as N
from losslab.functional.logits import softmax as S


@pytest.fixture(params=[1 << 21, 7], ids=["one-block", "many-blocks"])
def block(request, monkeypatch):
    monkeypatch.setattr(RB, "_BLOCK_ELEMENTS", request.param)
    return request.param


def _batch(n=11, c=6, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    return x, torch.randint(0, c, (n,), generator=g)


def _ref_stats(z, y, q):
    log_p = torch.log_softmax(z, dim=1)
    log_p_y = log_p.gather(1, y.unsqueeze(1)).squeeze(1)
    return log_p_y, log_p.sum(dim=1), (1 - torch.exp(q * log_p)).sum(dim=1)


def _ref_ldr(z, y, c, lam):
    d = z - z.gather(1, y.unsqueeze(1)) + c * (1 - torch.nn.functional.one_hot(y, z.shape[1]))
    lam_col = lam.unsqueeze(1) if isinstance(lam, torch.Tensor) else lam
    return lam * (torch.logsumexp(d / lam_col, dim=1) - math.log(z.shape[1]))


def _ref_z_hat(z, y):
    mu = z.mean(dim=1)
    sigma = ((z - mu.unsqueeze(1)) ** 2).mean(dim=1).sqrt()
    return (z.gather(1, y.unsqueeze(1)).squeeze(1) - mu) / sigma


def _value_and_grad(fn, x):
    x = x.clone().requires_grad_()
    out = fn(x)
    upstream = torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * upstream).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("outputs", [(0,), (1,), (2,), (0, 1), (0, 2), (0, 1, 2)])
def test_row_stats_match_autograd_and_gradcheck(block, outputs):
    x, t = _batch()
    weights = (1.0, -0.3, 0.7)

    def fast(z):
        stats = SRS.softmax_row_stats(z, t, "test", want_sum=True, q=0.4)
        return sum(weights[i] * stats[i] for i in outputs)

    def ref(z):
        stats = _ref_stats(z, t, 0.4)
        return sum(weights[i] * stats[i] for i in outputs)

    (v1, g1), (v2, g2) = _value_and_grad(fast, x), _value_and_grad(ref, x)
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(fast, (x.clone().requires_grad_(),))


def test_small_q_gap_sum_has_no_cancellation(block):
    # Σ(1 - p^q) ≈ C·q·H for small q: summed directly, not as C - Σ p^q.
    x, t = _batch(scale=1.0)
    _, _, gap = SRS.softmax_row_stats(x.float(), t, "test", q=1e-4)
    _, _, ref = _ref_stats(x, t, 1e-4)
    torch.testing.assert_close(gap.double(), ref, rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("fn, ref", [
    (N.normalized_cross_entropy,
     lambda z, t: (lambda a, b, _: a / b)(*_ref_stats(z, t, 0.7))),
    (N.normalized_generalized_cross_entropy,
     lambda z, t: (lambda a, _, c: (1 - torch.exp(0.7 * a)) / c)(*_ref_stats(z, t, 0.7))),
])
def test_normalised_losses_match_autograd(block, fn, ref):
    x, t = _batch()
    (v1, g1) = _value_and_grad(lambda z: fn(z, t, reduction="none"), x)
    (v2, g2) = _value_and_grad(lambda z: ref(z, t), x)
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lam, c", [(10.0, 0.1), (0.5, 2.0), (1e-2, 1.0), (1e3, 0.0)])
def test_ldr_rows_match_autograd(lam, c):
    x, t = _batch()
    v1, g1 = _value_and_grad(lambda z: L._ldr_rows(z, t, c, lam, "ldr_kl"), x)
    v2, g2 = _value_and_grad(lambda z: _ref_ldr(z, t, c, lam), x)
    # The reference's logsumexp - log C cancels at large λ (≈1e-9 relative at λ = 1e3).
    torch.testing.assert_close(v1, v2, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12)


def test_ldr_rows_with_per_row_lambda_gradcheck():
    x, t = _batch()
    lam = torch.linspace(0.3, 5.0, x.shape[0], dtype=torch.float64)
    v1, g1 = _value_and_grad(lambda z: L._ldr_rows(z, t, 0.4, lam, "ldr_kl"), x)
    v2, g2 = _value_and_grad(lambda z: _ref_ldr(z, t, 0.4, lam), x)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)
    assert torch.autograd.gradcheck(lambda z: L._ldr_rows(z, t, 0.4, lam, "ldr_kl"),
                                    (x.clone().requires_grad_(),))


def test_aldr_lambda_is_the_same_in_blocks(monkeypatch):
    x, t = _batch(n=13)
    _, lam_one = LF.aldr_kl_step(x, t, None, lam0=1.0)
    monkeypatch.setattr(RB, "_BLOCK_ELEMENTS", 5)
    _, lam_many = LF.aldr_kl_step(x, t, None, lam0=1.0)
    torch.testing.assert_close(lam_many, lam_one, rtol=0.0, atol=0.0)


def test_standardised_target_matches_autograd():
    x, t = _batch()
    for scale in (1.0, 1e-30, 1e30):
        v1, g1 = _value_and_grad(lambda z: S._standardised_target(z, t), x * scale)
        v2, g2 = _value_and_grad(lambda z: _ref_z_hat(z, t), x * scale)
        torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g1 * scale, g2 * scale, rtol=1e-9, atol=1e-12)


def test_standardised_target_on_equal_rows_has_centred_one_hot_gradient():
    z = torch.full((2, 4), 3.0, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([1, 3])
    z_hat = S._standardised_target(z, t)
    assert z_hat.tolist() == [0.0, 0.0]
    z_hat.sum().backward()
    expected = torch.nn.functional.one_hot(t, 4).double() - 0.25
    torch.testing.assert_close(z.grad, expected)
