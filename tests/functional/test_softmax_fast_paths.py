"""The hand-written backward passes of the issue-5 fast paths: float64 gradcheck against
finite differences, values against the plain autograd formulas they replace, and the
exactness claims (sorted Plackett–Luce order, banded HL-Gauss / two-hot targets)."""

import pytest
import torch

import losslab.functional as LF
from losslab.functional._core import plackett_luce as _plackett_luce
from losslab.functional._core import row_blocks as _row_chunks
from losslab.functional._core.plackett_luce import ascending_pl_order, plackett_luce
from losslab.functional._core.softmax_objectives import (
    selected_self_adjusted_entropy,
    softmax_kl,
    sparse_soft_cross_entropy,
    student_teacher_symmetric_ce,
)
from losslab.functional._core.softmax_sums import softmax_column_stats, softmax_rational_sum
from losslab.functional.logits.distributional import _hl_gauss_band, _two_hot_band

D = torch.float64


@pytest.fixture(params=["one block", "row blocks"])
def blocks(request, monkeypatch):
    """Block-wise kernels run as one block and as blocks of one or two rows (odd sizes)."""
    if request.param == "row blocks":
        monkeypatch.setattr(_row_chunks, "CPU_BLOCK_ELEMENTS", 11)
        monkeypatch.setattr(_row_chunks, "MIN_ROWS", 1)
        monkeypatch.setattr(_plackett_luce, "BLOCK_ELEMENTS", 11)
    return request.param


def _data(n=5, c=6, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, c, generator=g, dtype=D) * scale).requires_grad_()
    y = torch.randint(0, c, (n,), generator=g)
    other = torch.randn(n, c, generator=g, dtype=D)
    return z, y, other


def test_softmax_kl_value_and_gradcheck_in_both_inputs(blocks):
    z, _, v = _data()
    v.requires_grad_()
    log_p, log_q = torch.log_softmax(z / 0.3, 1), torch.log_softmax(v / 0.3, 1)
    ref = (log_p.exp() * (log_p - log_q)).sum(1)
    torch.testing.assert_close(softmax_kl(z, v, scale=1 / 0.3), ref)
    assert torch.autograd.gradcheck(lambda a, b: softmax_kl(a, b, scale=1 / 0.3), (z, v))


def test_softmax_kl_detached_reference_and_masked_classes(blocks):
    z, _, v = _data()
    t = z.detach().clone()
    t[0, 2] = float("-inf")  # a class the reference gives no mass: 0 * inf counts as 0
    v.requires_grad_()
    kl = softmax_kl(t, v)
    log_p, log_q = torch.log_softmax(t, 1), torch.log_softmax(v, 1)
    ref = (log_p.exp() * (log_p - log_q).masked_fill(torch.isinf(t), 0.0)).sum(1)
    torch.testing.assert_close(kl, ref)
    (grad,) = torch.autograd.grad(kl.sum(), v)
    torch.testing.assert_close(grad, torch.softmax(v, 1) - torch.softmax(t, 1))
    assert torch.equal(softmax_kl(t, t.clone()), torch.zeros(5, dtype=D))


def test_selected_self_adjusted_entropy_value_gradcheck_and_selection(blocks):
    z, _, other = _data(n=9, scale=3.0)
    shift = other[0]
    v = (torch.softmax(z / 0.5, 1) * torch.log_softmax(z / 0.5 + shift, 1)).sum(1)
    top, pred = torch.softmax(z / 0.7, 1).max(1)
    selected = (top >= 0.6) & (pred < 4)
    assert 0 < int(selected.sum()) < 9  # both kinds of rows are exercised
    kw = {"scale": 2.0, "selection_temperature": 0.7, "threshold": 0.6, "known": 4}
    out = selected_self_adjusted_entropy(z, shift, **kw)
    torch.testing.assert_close(out, torch.where(selected, -v, 0.0))
    assert torch.autograd.gradcheck(lambda z: selected_self_adjusted_entropy(z, shift, **kw), (z,))
    (grad,) = torch.autograd.grad(out.sum(), z)
    assert torch.equal(grad[~selected], torch.zeros_like(grad[~selected]))


def test_student_teacher_symmetric_ce_value_and_gradcheck(blocks):
    z, _, t = _data(n=7)
    log_p, log_q = torch.log_softmax(z, 1), torch.log_softmax(t, 1)
    ref = -0.5 * ((log_q.exp() * log_p).sum(1) + (log_p.exp() * log_q).sum(1))
    torch.testing.assert_close(student_teacher_symmetric_ce(z, t), ref)
    assert torch.autograd.gradcheck(lambda z: student_teacher_symmetric_ce(z, t), (z,))


def test_sparse_soft_cross_entropy_equals_dense_and_gradcheck():
    z, _, other = _data()
    idx = torch.tensor([[0, 2], [1, 1], [5, 4], [3, 0], [2, 3]])
    w = torch.rand(5, 2, dtype=D, generator=torch.Generator().manual_seed(1))
    dense = torch.zeros(5, 6, dtype=D).scatter_add_(1, idx, w)
    torch.testing.assert_close(
        sparse_soft_cross_entropy(z, idx, w), -(dense * torch.log_softmax(z, 1)).sum(1)
    )
    assert torch.autograd.gradcheck(lambda z: sparse_soft_cross_entropy(z, idx, w), (z,))


@pytest.mark.parametrize("k, m, g, alpha", [(1.0, 2, 1.0, 0.0), (0.3, 1, 0.5, 0.0), (1.0, 2, 1.0, 0.4)])
def test_softmax_rational_sum_value_and_gradcheck(k, m, g, alpha, blocks):
    z, y, _ = _data(scale=0.5)  # no class reaches p = 1/2, where alpha > 0 is recomputed
    p = torch.softmax(z, 1)
    d = k * (p * (1 - p) ** alpha) ** m
    total, py, dominant = softmax_rational_sum(z, y, k=k, m=m, g=g, alpha=alpha)
    torch.testing.assert_close(total, (d / (d + g)).sum(1))
    torch.testing.assert_close(py, p.gather(1, y[:, None]).squeeze(1))
    assert not dominant.any()
    assert torch.autograd.gradcheck(
        lambda z: softmax_rational_sum(z, y, k=k, m=m, g=g, alpha=alpha)[:2], (z,)
    )


@pytest.mark.parametrize("transform", ["identity", "square", "amp-sigmoid"])
def test_softmax_column_stats_value_and_gradcheck(transform):
    z, y, _ = _data()
    p = torch.softmax(z, 1)
    u = {"identity": p, "square": p * p, "amp-sigmoid": torch.sigmoid(3.0 * (p - 0.5))}[transform]
    col, py = softmax_column_stats(z, y, transform=transform, amp=3.0)
    torch.testing.assert_close(col, u.sum(0))
    assert torch.autograd.gradcheck(
        lambda z: softmax_column_stats(z, y, transform=transform, amp=3.0), (z,)
    )


def test_plackett_luce_gradcheck_and_sorted_order_with_ties(blocks):
    z, y, t = _data(c=7)
    order = ascending_pl_order(t, y)
    alpha = torch.softmax(t / 0.5, 1).gather(1, order)
    s = z.gather(1, order)  # ascending: S_k is a prefix sum in this order
    ref = (alpha * (torch.logcumsumexp(s, 1) - s)).sum(1)
    value, bad = plackett_luce(z, t, y, tau=0.5)
    torch.testing.assert_close(value, ref)
    assert not bad.any()
    assert torch.autograd.gradcheck(lambda z: plackett_luce(z, t, y, tau=0.5)[0], (z,))
    # float32 keys (unstable int64 sort) reproduce the stable descending order reversed,
    # ties by class index, -0.0 == +0.0, the true label last.
    g = torch.Generator().manual_seed(3)
    t32 = (torch.randn(64, 40, generator=g) * 3).round()
    t32[0, :4] = torch.tensor([0.0, -0.0, 0.0, -0.0])
    y32 = torch.randint(0, 40, (64,), generator=g)
    first = torch.zeros_like(t32, dtype=torch.bool).scatter_(1, y32[:, None], True)
    stable = torch.argsort(t32.masked_fill(first, float("inf")), dim=1, descending=True, stable=True)
    assert torch.equal(ascending_pl_order(t32, y32), stable.flip(1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_min, v_max, m, sigma_ratio", [(-10, 10, 1000, 0.75), (0, 1, 4, 0.75), (-5, 5, 51, 3.0)])
def test_banded_targets_equal_dense_encodings_exactly(dtype, v_min, v_max, m, sigma_ratio):
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(500, generator=g, dtype=D) * 1.4 - 0.2) * (v_max - v_min) + v_min
    y = y.to(dtype)
    dense = LF.hl_gauss_encode(y, v_min=v_min, v_max=v_max, num_bins=m, sigma_ratio=sigma_ratio)
    idx, w = _hl_gauss_band(y, v_min=v_min, v_max=v_max, num_bins=m, sigma_ratio=sigma_ratio)
    assert torch.equal(torch.zeros_like(dense).scatter_(1, idx, w), dense)
    dense2 = LF.two_hot_encode(y, v_min=v_min, v_max=v_max, num_bins=m)
    idx2, w2 = _two_hot_band(y, v_min=v_min, v_max=v_max, num_bins=m)
    assert torch.equal(torch.zeros_like(dense2).scatter_add_(1, idx2, w2), dense2)


def test_fast_paths_refuse_double_backward_naming_the_kernel():
    z, _, other = _data()
    loss = softmax_kl(other, z).sum()
    with pytest.raises(NotImplementedError, match="SoftmaxKL has a hand-written first-order"):
        torch.autograd.grad(loss, z, create_graph=True)


def test_ler_selection_edge_cases():
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = torch.zeros(4, dtype=torch.long)
    # no known class: nothing is selected (and nothing fails)
    loss = LF.ler(z, y, num_known=0, threshold=0.0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    # the arg-max is taken on the probabilities: logits one ulp apart that round to the same
    # probability select the first (known) class
    a = torch.tensor(1.6113746)
    b = torch.nextafter(a, torch.tensor(2.0))
    zz = torch.tensor([[a.item(), b.item(), -30.0]])
    p = torch.softmax(zz / 0.1, 1)
    assert p[0, 0] == p[0, 1] and zz[0, 0] < zz[0, 1]
    assert LF.ler(zz, torch.tensor([0]), num_known=1, threshold=0.0, reduction="none").item() != 0.0


def test_cbc_keeps_second_derivatives():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=g, dtype=D, requires_grad=True)
    t = torch.randn(6, 4, generator=g, dtype=D)
    loss = LF.cbc(z, torch.zeros(6, dtype=torch.long), teacher_logits=t, positive_threshold=0.1)
    (grad,) = torch.autograd.grad(loss, z, create_graph=True)
    assert torch.autograd.gradgradcheck(
        lambda z: LF.cbc(z, torch.zeros(6, dtype=torch.long), teacher_logits=t,
                         positive_threshold=0.1), (z,))


def test_wide_rows_use_blocks_of_at_least_min_rows():
    wide = torch.zeros(100, 2 * _row_chunks.CPU_BLOCK_ELEMENTS)
    assert _row_chunks.rows_per_block(wide) == _row_chunks.MIN_ROWS
    assert _row_chunks.rows_per_block(torch.zeros(100, 1000)) == 65
