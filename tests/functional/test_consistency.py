"""Consistency losses: worked values of spec B§10–§12 and independent references."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losslab.functional as LF

ZERO = torch.tensor([0])


def test_sce_worked_value_and_rmt_four_terms():
    zs = torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64)
    zt = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    za = torch.tensor([[0.8, 0.2, -0.5]], dtype=torch.float64)
    assert LF.sce_consistency(zs, ZERO, teacher_logits=zt).item() == pytest.approx(
        1.1298431, abs=1e-7
    )
    rmt = 0.5 * LF.sce_consistency(zs, ZERO, teacher_logits=zt) + 0.5 * LF.sce_consistency(
        za, ZERO, teacher_logits=zt
    )
    assert rmt.item() == pytest.approx(1.1061983, abs=1e-7)


def test_sce_is_symmetric_and_teacher_is_detached():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 4, generator=g, dtype=torch.float64)
    b = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(5, dtype=torch.long)
    torch.testing.assert_close(
        LF.sce_consistency(a, y, teacher_logits=b),
        LF.sce_consistency(b.detach(), y, teacher_logits=a),
    )
    assert not LF.sce_consistency(a, y, teacher_logits=b).requires_grad


Q = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)


def test_ler_worked_value_and_plain_entropy_without_adjustment():
    z = torch.tensor([[0.6, 0.45, 0.1, 0.0]], dtype=torch.float64)
    assert LF.ler(z, ZERO, prior=Q, num_known=2).item() == pytest.approx(0.1917010, abs=1e-7)
    p = torch.softmax(z / 0.05, 1)
    entropy = -(p * p.log()).sum()
    assert LF.ler(z, ZERO, prior=Q, num_known=2, adjustment=0.0).item() == pytest.approx(
        entropy.item(), abs=1e-12
    )
    assert entropy.item() == pytest.approx(0.19141, abs=1e-5)


def test_ler_selection_mask():
    z = torch.tensor(
        [[0.9, 0.1, 0.0, 0.2], [0.1, 0.2, 0.8, 0.0], [0.3, 0.3, 0.29, 0.3]], dtype=torch.float64
    )
    y = torch.zeros(3, dtype=torch.long)
    per = LF.ler(z, y, prior=Q, num_known=2, reduction="none")
    # Row 0: confident, known class -> counted; row 1: confident but novel class 2 -> 0;
    # row 2: not confident -> 0.
    assert per[0] > 0 and per[1] == 0 and per[2] == 0
    pl = torch.softmax(z[0] / 0.05, 0)
    lu = torch.log_softmax(z[0] / 0.05 + 0.4 * torch.log(Q), 0)
    assert per[0].item() == pytest.approx(-(pl * lu).sum().item(), rel=1e-12)
    assert LF.ler(z, y, prior=Q, reduction="none")[1] > 0  # all classes known by default


def test_ler_target_is_not_detached_like_the_official_code():
    z = torch.tensor([[0.6, 0.45, 0.1, 0.0]], dtype=torch.float64, requires_grad=True)
    LF.ler(z, ZERO, prior=Q, num_known=2).backward()
    zz = z.detach().clone().requires_grad_()
    pl = torch.softmax(zz / 0.05, 1).detach()
    (-(pl * torch.log_softmax(zz / 0.05 + 0.4 * torch.log(Q), 1)).sum()).backward()
    assert not torch.allclose(z.grad, zz.grad)


def test_dkl_worked_value_and_torch_kl_div():
    z = torch.tensor([[0.9, 0.1, 0.0, 0.2], [0.1, 0.2, 0.8, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.8, 0.2, 0.0, 0.1], [0.2, 0.1, 0.7, 0.1]], dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.long)
    assert LF.dkl(z, y, view_logits=v).item() == pytest.approx(0.0034895, abs=1e-7)
    ref = TF.kl_div(
        TF.log_softmax(v / 0.1, 1),
        TF.log_softmax(z / 0.1, 1),
        log_target=True,
        reduction="batchmean",
    )
    torch.testing.assert_close(LF.dkl(z, y, view_logits=v), ref)
    v2 = v.clone().requires_grad_()
    LF.dkl(z, y, view_logits=v2).backward()
    assert v2.grad.abs().sum() > 0  # the second view is a student output


V = torch.tensor([[2.0, -1.0], [0.2, 0.1], [-0.5, 1.5]], dtype=torch.float64)
U = torch.tensor([[1.5, -1.5], [0.1, 0.0], [-2.0, 1.0]], dtype=torch.float64)


def test_cbc_binary_worked_value():
    y = torch.zeros(3, dtype=torch.long)
    assert LF.cbc(V, y, teacher_logits=U).item() == pytest.approx(0.0877577, abs=1e-7)
    assert LF.cbc(V, y, teacher_logits=U, negatives="all").item() == pytest.approx(
        0.0877577, abs=1e-7
    )


def _cbc_reference(v, u, gp, gn, mode):
    pt = np.exp(u) / np.exp(u).sum(1, keepdims=True)
    p = np.exp(v) / np.exp(v).sum(1, keepdims=True)
    pos, neg = [], []
    for i in range(len(v)):  # loop reference over rows
        yt, cb = pt[i].argmax(), pt[i].argmin()
        if pt[i].max() >= gp:
            pos.append(-pt[i].max() * np.log(p[i, yt]))
        if pt[i].min() < gn:
            if mode == "argmin":
                neg.append(-pt[i].min() * np.log(1 - p[i, cb]))
            else:
                neg.append(
                    -pt[i].min() * sum(np.log(1 - p[i, c]) for c in range(v.shape[1]) if c != yt)
                )
    return (np.mean(pos) if pos else 0.0) + (np.mean(neg) if neg else 0.0)


@pytest.mark.parametrize("mode", ["argmin", "all"])
def test_cbc_multiclass_equals_loop_reference(mode):
    g = torch.Generator().manual_seed(1)
    v = torch.randn(12, 4, generator=g, dtype=torch.float64) * 2
    u = torch.randn(12, 4, generator=g, dtype=torch.float64) * 3
    y = torch.zeros(12, dtype=torch.long)
    got = LF.cbc(
        v, y, teacher_logits=u, negatives=mode, positive_threshold=0.6, negative_threshold=0.05
    ).item()
    assert got == pytest.approx(_cbc_reference(v.numpy(), u.numpy(), 0.6, 0.05, mode), rel=1e-10)


def test_cbc_empty_sets_give_zero():
    u = torch.zeros(3, 2, dtype=torch.float64)  # uniform teacher: w+ = w- = 0.5
    v = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    loss = LF.cbc(v, torch.zeros(3, dtype=torch.long), teacher_logits=u)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(v.grad == 0)


def test_cbc_rejects_class_weight():
    # target only marks ignored rows in cbc, so a class weight has no meaning: refuse it.
    v, u = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"cbc: weight is not supported, got a tensor of shape \(3,\)"):
        LF.cbc(v, y, teacher_logits=u, weight=torch.ones(3))
    with pytest.raises(ValueError, match="cbc: weight must have shape"):
        LF.cbc(v, y, teacher_logits=u, weight=torch.ones(4))
    with pytest.raises(ValueError, match="cbc: weight is not supported"):
        LF.cbc(v[:0], y[:0], teacher_logits=u[:0], weight=torch.ones(3))
