"""Metrix mixup wrapper and utilization metric (spec B§3)."""

import math

import pytest
import torch
from pytorch_metric_learning import losses, reducers

from losslab.functional.embedding import multi_similarity_loss
from losslab.functional.metrix import metrix_loss, metrix_pairs, mix, soft_pair_loss, utilization


def _batch(seed=0, n=12, d=5, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def test_clean_part_equals_ms_and_pml_contrastive():
    x, y = _batch()
    torch.testing.assert_close(metrix_loss(x, y, strength=0.0), multi_similarity_loss(x, y))
    torch.testing.assert_close(
        metrix_loss(x, y, strength=0.0, beta=20.0, base=0.3),
        multi_similarity_loss(x, y, beta=20.0, base=0.3),
    )
    pml = losses.ContrastiveLoss(pos_margin=0.0, neg_margin=0.5, reducer=reducers.SumReducer())
    torch.testing.assert_close(
        metrix_loss(x, y, strength=0.0, base_loss="contrastive"), pml(x, y) / x.shape[0]
    )


@pytest.mark.parametrize("base_loss", ["ms", "contrastive"])
def test_lambda_zero_or_one_equals_the_clean_pair(base_loss):
    x, y = _batch(1)
    ref = x[:4]
    binary = (y.unsqueeze(1) == y[:4].unsqueeze(0)).double()
    for lam in [0.0, 1.0]:
        # mixing ref k with ref (k+1)%4 at λ gives ref k (λ=1) or ref k+1 (λ=0)
        i, j = torch.arange(4), (torch.arange(4) + 1) % 4
        pairs = (i, j, torch.full((4,), lam, dtype=torch.float64))
        v = mix(ref, pairs)
        soft = lam * binary[:, i] + (1 - lam) * binary[:, j]
        source = i if lam == 1.0 else j
        mixed = soft_pair_loss(x, v, soft, base_loss=base_loss)
        clean = soft_pair_loss(x, ref[source], binary[:, source], base_loss=base_loss)
        torch.testing.assert_close(mixed, clean)


def test_half_lambda_pos_neg_contrastive_weights_both_sides():
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[math.cos(0.3), math.sin(0.3)]], dtype=torch.float64)
    d = torch.dist(a[0], v[0]).item()
    out = soft_pair_loss(a, v, torch.tensor([[0.5]], dtype=torch.float64), base_loss="contrastive")
    assert out.item() == pytest.approx(0.5 * d + 0.5 * max(0.5 - d, 0.0))
    ms = soft_pair_loss(a, v, torch.tensor([[0.5]], dtype=torch.float64))
    s = math.cos(0.3)
    expected = math.log1p(0.5 * math.exp(-2 * (s - 0.5))) / 2 + math.log1p(0.5 * math.exp(50 * (s - 0.5))) / 50
    assert ms.item() == pytest.approx(expected, rel=1e-12)


def test_metrix_total_and_input_level_mixing():
    x, y = _batch(2)
    torch.manual_seed(0)
    pairs = metrix_pairs(y)
    i, j, lam = pairs
    assert torch.all(y[i] != y[j]) and torch.all((lam > 0) & (lam < 1))
    emb_level = metrix_loss(x, y, pairs=pairs)
    mixed = mix(x, pairs)
    soft = lam.unsqueeze(0) * (y.unsqueeze(1) == y[i]) + (1 - lam.unsqueeze(0)) * (y.unsqueeze(1) == y[j])
    expected = multi_similarity_loss(x, y, reduction="none") + 0.4 * soft_pair_loss(x, mixed, soft)
    torch.testing.assert_close(emb_level, expected.mean())
    # input-level: a model applied to mixed inputs; its embeddings are passed in
    model = torch.nn.Linear(5, 4).double()
    inputs = x
    out = metrix_loss(model(inputs), y, mixed_embeddings=model(mix(inputs, pairs)), pairs=pairs)
    out.backward()
    assert torch.isfinite(model.weight.grad).all()
    xx = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda u: metrix_loss(u, y, pairs=pairs, beta=10.0), (xx,))


def test_utilization():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 0.0]])
    assert utilization(q, x).item() == pytest.approx(math.sqrt(2) / 2)
    assert utilization(q, x, squared=True).item() == pytest.approx(1.0)
    assert utilization(3 * q, x, normalize=False).item() == pytest.approx((2 + math.sqrt(10)) / 2)
    with pytest.raises(ValueError, match="utilization: queries and train must share embedding_dim"):
        utilization(q, torch.randn(2, 3))


def test_bad_inputs():
    x, y = _batch()
    with pytest.raises(ValueError, match="metrix_loss: base_loss must be one of"):
        metrix_loss(x, y, base_loss="triplet")
    with pytest.raises(TypeError, match="metrix_loss: base_loss='ms' has no hyperparameter 'margin'"):
        metrix_loss(x, y, margin=0.1)
    with pytest.raises(ValueError, match="metrix_loss: mixed_embeddings needs the pairs"):
        metrix_loss(x, y, mixed_embeddings=x[:2])
    with pytest.raises(ValueError, match="metrix_loss: strength must lie in"):
        metrix_loss(x, y, strength=-1.0)
    single = torch.zeros(3, dtype=torch.long)
    z = torch.randn(3, 2, requires_grad=True)
    out = metrix_loss(z, single)  # no negatives: no mixing pairs, clean loss only
    out.backward()
    assert torch.isfinite(z.grad).all()
