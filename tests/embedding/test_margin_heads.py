"""ArcFace / CosFace / UNPG heads: worked values (spec B§6), pytorch-metric-learning's
ArcFaceLoss and CosFaceLoss, finite gradients at cos = ±1, bad input."""

import math

import pytest
import torch
import torch.nn.functional as TF
from pytorch_metric_learning import losses

from losslab.heads.margin import (
    ArcFaceHead,
    CosFaceHead,
    UNPGHead,
    arcface_margin,
    box_and_whisker,
    cosface_margin,
    unpg_negatives,
)

COS = torch.tensor([[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]], dtype=torch.float64)
LAB = torch.tensor([0, 1])
SN = torch.tensor([0.05, -0.1, 0.2, 0.15, 0.9, 0.0, -0.05, 0.1], dtype=torch.float64)


def test_worked_values():
    arc = arcface_margin(COS, LAB)
    assert arc[0, 0].item() == pytest.approx(0.414411, abs=1e-6)
    assert arc[1, 1].item() == pytest.approx(0.023597, abs=1e-6)
    assert TF.cross_entropy(64 * arc, LAB).item() == pytest.approx(12.0452409, abs=1e-6)
    assert TF.cross_entropy(8 * arc, LAB).item() == pytest.approx(1.7918097, abs=1e-7)
    cos = cosface_margin(COS, LAB)
    assert TF.cross_entropy(64 * cos, LAB).item() == pytest.approx(8.0000353, abs=1e-6)
    kept = box_and_whisker(SN)
    torch.testing.assert_close(kept, torch.tensor([-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2], dtype=torch.float64))
    for s, expected in [(8.0, 2.1353240), (64.0, 12.0452429)]:
        aug = torch.cat([arc, kept.expand(2, -1)], 1)
        assert TF.cross_entropy(s * aug, LAB).item() == pytest.approx(expected, abs=1e-6)


def test_arcface_monotone_branch_matches_formula():
    c = torch.tensor([[-0.95, 0.1]], dtype=torch.float64)  # θ_y > π - m
    out = arcface_margin(c, torch.tensor([0]), margin=0.5)
    assert out[0, 0].item() == pytest.approx(-0.95 - 0.5 * math.sin(0.5))
    c2 = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    assert arcface_margin(c2, torch.tensor([0]))[0, 0].item() == pytest.approx(math.cos(math.acos(0.3) + 0.5))


@pytest.mark.parametrize("kind", ["arcface", "cosface"])
def test_heads_equal_pml_losses_including_gradients(kind):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (16,), generator=g)
    if kind == "arcface":
        head = ArcFaceHead(5, 7, scale=16.0, margin=0.4).double()
        pml = losses.ArcFaceLoss(7, 5, margin=math.degrees(0.4), scale=16.0)
    else:
        head = CosFaceHead(5, 7, scale=16.0).double()
        pml = losses.CosFaceLoss(7, 5, margin=0.35, scale=16.0)
    pml.W.data = head.weight.detach().T.clone()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = TF.cross_entropy(head(x1, y), y)
    theirs = pml(x2, y)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(head.weight.grad, pml.W.grad.T)
    torch.testing.assert_close(head(x), pml.get_logits(x))  # inference: no margin


def test_gradient_finite_at_cosine_one_and_gradcheck():
    head = ArcFaceHead(3, 2, scale=4.0).double()
    x = head.weight.detach()[:1].clone().requires_grad_()  # cos θ_y = 1 exactly
    TF.cross_entropy(head(x, torch.tensor([0])), torch.tensor([0])).backward()
    assert torch.isfinite(x.grad).all()
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 1, 0])
    assert torch.autograd.gradcheck(lambda u: TF.cross_entropy(head(u, y), y), (z,))


def test_unpg_head_appends_filtered_negatives():
    g = torch.Generator().manual_seed(1)
    head = ArcFaceHead(4, 3, scale=8.0).double()
    unpg = UNPGHead(head)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = unpg(x, y)
    negatives = unpg_negatives(x, y)
    assert logits.shape == (6, 3 + negatives.numel())
    torch.testing.assert_close(logits[:, :3], head(x, y))
    torch.testing.assert_close(logits[:, 3:], 8.0 * negatives.expand(6, -1))
    # 12 negative pairs in the upper triangle; the filter keeps within-whisker ones only
    assert 0 < negatives.numel() <= 12
    TF.cross_entropy(logits, y).backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(unpg(x), head(x))  # inference: no extra columns
    same = unpg(x, torch.zeros(6, dtype=torch.long))  # no negative pairs at all
    assert same.shape == (6, 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="ArcFaceHead: margin must lie in"):
        ArcFaceHead(4, 3, margin=2.0)
    with pytest.raises(ValueError, match="CosFaceHead: scale must lie in"):
        CosFaceHead(4, 3, scale=0.0)
    head = CosFaceHead(4, 3)
    with pytest.raises(ValueError, match=r"CosFaceHead: features must have shape \(N, 4\)"):
        head(torch.randn(2, 5))
    with pytest.raises(ValueError, match="CosFaceHead: target classes must lie in"):
        head(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="UNPGHead: head must be"):
        UNPGHead(torch.nn.Linear(2, 2))
