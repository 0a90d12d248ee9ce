"""Multi-Similarity loss and miner: worked values (spec B§1), pytorch-metric-learning,
a loop reference, gradcheck, empty-pair and bad-input behaviour."""

import math

import pytest
import torch
from pytorch_metric_learning import distances, losses, miners
from references import embedding as ref

from losslab.functional.embedding.pair_losses import multi_similarity_loss, multi_similarity_miner


def _circle(degrees):
    a = torch.tensor(degrees, dtype=torch.float64).deg2rad()
    return torch.stack([a.cos(), a.sin()], 1)


X4, Y4 = _circle([0.0, 60.0, 90.0, 150.0]), torch.tensor([0, 0, 1, 1])


def test_worked_values():
    per = multi_similarity_loss(X4, Y4, reduction="none")
    torch.testing.assert_close(
        per, torch.tensor([0.346574, 0.712599, 0.712599, 0.346574], dtype=torch.float64),
        atol=1e-6, rtol=0,
    )
    assert multi_similarity_loss(X4, Y4).item() == pytest.approx(0.5295863, abs=1e-7)
    assert multi_similarity_loss(X4, Y4, base=1.0).item() == pytest.approx(0.6566432, abs=1e-7)
    official = multi_similarity_loss(X4, Y4, beta=40.0, epsilon=0.1, variant="official")
    assert official.item() == pytest.approx(0.3562995, abs=1e-7)


def _pml_distance(name):
    return {
        "cosine": distances.CosineSimilarity(),
        "dot": distances.DotProductSimilarity(normalize_embeddings=False),
        "euclidean": distances.LpDistance(normalize_embeddings=False),
    }[name]


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("epsilon", [None, 0.1])
def test_equals_pml_loss_and_gradient(metric, epsilon):
    g = torch.Generator().manual_seed(7)
    e = torch.randn(40, 8, generator=g, dtype=torch.float64)
    lab = torch.randint(0, 6, (40,), generator=g)
    kw = dict(alpha=3.0, beta=30.0, base=0.4)
    e1, e2 = e.clone().requires_grad_(), e.clone().requires_grad_()
    pml = losses.MultiSimilarityLoss(distance=_pml_distance(metric), **kw)
    if epsilon is None:
        expected = pml(e1, lab)
    else:
        miner = miners.MultiSimilarityMiner(epsilon=epsilon, distance=_pml_distance(metric))
        expected = pml(e1, lab, miner(e1, lab))
    ours = multi_similarity_loss(e2, lab, epsilon=epsilon, distance=metric, **kw)
    torch.testing.assert_close(ours, expected)
    expected.backward()
    ours.backward()
    torch.testing.assert_close(e2.grad, e1.grad)


def test_reference_set_equals_pml_and_loop():
    g = torch.Generator().manual_seed(8)
    e, r = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randn(9, 5, generator=g, dtype=torch.float64)
    lab, rlab = torch.randint(0, 3, (12,), generator=g), torch.randint(0, 3, (9,), generator=g)
    ours = multi_similarity_loss(e, lab, ref_embeddings=r, ref_labels=rlab)
    pml = losses.MultiSimilarityLoss()(e, lab, ref_emb=r, ref_labels=rlab)
    torch.testing.assert_close(ours, pml)
    assert ours.item() == pytest.approx(ref.multi_similarity(e, lab, r, rlab), rel=1e-10)
    mined = multi_similarity_loss(e, lab, ref_embeddings=r, ref_labels=rlab, epsilon=0.1)
    assert mined.item() == pytest.approx(ref.multi_similarity(e, lab, r, rlab, epsilon=0.1), rel=1e-10)


def test_miner_equals_pml_miner_as_sets():
    g = torch.Generator().manual_seed(9)
    e = torch.randn(30, 6, generator=g, dtype=torch.float64)
    lab = torch.randint(0, 5, (30,), generator=g)
    ours = multi_similarity_miner(e, lab, epsilon=0.1)
    theirs = miners.MultiSimilarityMiner(epsilon=0.1)(e, lab)
    for k in (0, 2):
        mine = set(zip(ours[k].tolist(), ours[k + 1].tolist(), strict=True))
        pml = set(zip(theirs[k].tolist(), theirs[k + 1].tolist(), strict=True))
        assert mine == pml and len(mine) > 0
    # composing the miner's pairs with the loss equals mining inside the loss
    torch.testing.assert_close(
        multi_similarity_loss(e, lab, pairs=ours), multi_similarity_loss(e, lab, epsilon=0.1)
    )


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(10)
    e = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda u: multi_similarity_loss(u, lab, beta=10.0), (e,))


def test_large_beta_is_stable_and_loop_agrees():
    e = torch.randn(10, 4, dtype=torch.float64)
    lab = torch.randint(0, 3, (10,))
    big = multi_similarity_loss(e.float(), lab, beta=500.0, alpha=200.0)
    assert torch.isfinite(big)
    assert multi_similarity_loss(e, lab).item() == pytest.approx(ref.multi_similarity(e, lab), rel=1e-10)


def test_no_valid_pairs_gives_connected_zero():
    e = torch.randn(3, 4, requires_grad=True)
    loss = multi_similarity_loss(e, torch.tensor([0, 1, 2]), epsilon=0.1)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(e.grad, torch.zeros_like(e))
    single = multi_similarity_loss(e[:0], torch.tensor([], dtype=torch.long))
    assert single.item() == 0.0


def test_half_precision_computes_in_float32():
    e = torch.randn(8, 4).half()
    out = multi_similarity_loss(e, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert out.dtype == torch.float32
    assert math.isfinite(out.item())


def test_bad_inputs():
    e = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"multi_similarity_loss: labels must have shape \(4,\)"):
        multi_similarity_loss(e, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="multi_similarity_loss: embeddings must be 2-D"):
        multi_similarity_loss(torch.randn(4), torch.tensor([0, 1, 2, 3]))
    bad = e.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="multi_similarity_loss: embeddings contains NaN"):
        multi_similarity_loss(bad, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="alpha must lie in"):
        multi_similarity_loss(e, torch.tensor([0, 1, 2, 3]), alpha=0.0)
    with pytest.raises(ValueError, match="variant must be one of"):
        multi_similarity_loss(e, torch.tensor([0, 1, 2, 3]), variant="paper")
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        multi_similarity_loss(e, torch.zeros(4))
    with pytest.raises(ValueError, match="give ref_embeddings and ref_labels together"):
        multi_similarity_loss(e, torch.tensor([0, 1, 2, 3]), ref_embeddings=e)


def test_fused_kernel_equals_autograd_through_the_formula():
    from losslab.functional._core.multi_similarity_rows import multi_similarity_rows
    from losslab.functional._core.pair_batch import log1p_sum_exp

    g = torch.Generator().manual_seed(11)
    sim = (torch.rand(7, 9, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    pos = torch.rand(7, 9, generator=g) < 0.3
    neg = ~pos & (torch.rand(7, 9, generator=g) < 0.6)
    pos[0], neg[0] = False, False  # an anchor without pairs
    up = torch.rand(7, generator=g, dtype=torch.float64)
    fused = multi_similarity_rows(sim, pos, neg, 2.0, 50.0, 0.5)
    (g1,) = torch.autograd.grad((fused * up).sum(), sim)
    plain = log1p_sum_exp(2.0 * (0.5 - sim), pos) / 2.0 + log1p_sum_exp(50.0 * (sim - 0.5), neg) / 50.0
    (g2,) = torch.autograd.grad((plain * up).sum(), sim)
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(g1, g2)
    assert fused[0].item() == 0.0 and torch.all(g1[0] == 0)
