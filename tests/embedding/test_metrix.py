"""Metrix mixup wrapper and utilization metric (spec B§3)."""

import math

import pytest
import torch
from pytorch_metric_learning import losses, reducers

from losslab.functional.embedding.contrastive import nt_xent_loss
from losslab.functional.embedding.metrix import metrix_loss, metrix_pairs, mix, soft_pair_loss, utilization
from losslab.functional.embedding.pair_losses import multi_similarity_loss, mw_loss


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


def test_clean_part_equals_nt_xent_and_mw():
    x, y = _batch(4)
    n = x.shape[0]
    torch.testing.assert_close(metrix_loss(x, y, strength=0.0, base_loss="ntxent"),
                               nt_xent_loss(x, y, reduction="sum") / n)
    torch.testing.assert_close(metrix_loss(x, y, strength=0.0, base_loss="ntxent", temperature=0.3),
                               nt_xent_loss(x, y, reduction="sum", temperature=0.3) / n)
    torch.testing.assert_close(metrix_loss(x, y, strength=0.0, base_loss="mw"), mw_loss(x, y))
    torch.testing.assert_close(metrix_loss(x, y, strength=0.0, base_loss="mw", temperature=0.5),
                               mw_loss(x, y, temperature=0.5))


def test_soft_nt_xent_and_mw_by_hand():
    # one anchor a, refs v1 (positive weight 0.5) and v2 (pure negative); cosine scores s1, s2.
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[math.cos(0.3), math.sin(0.3)], [0.0, 1.0]], dtype=torch.float64)
    soft = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    s1, s2, t = math.cos(0.3), 0.0, 0.5
    # NT-Xent: 0.5·softplus(log(0.5 e^{s1/t} + e^{s2/t}) - s1/t)
    nt = 0.5 * math.log1p(0.5 * math.exp(s1 / t) / math.exp(s1 / t) + math.exp(s2 / t) / math.exp(s1 / t))
    out = soft_pair_loss(a, v, soft, base_loss="ntxent", temperature=t)
    assert out.item() == pytest.approx(nt, rel=1e-12)
    # MW: positive (a, v1) weight 0.5 against negatives v1 (0.5) and v2 (1)
    sp = lambda u: math.log1p(math.exp(u))  # noqa: E731
    mw = 0.5 * (0.5 * sp(0.0) + 1.0 * sp((s2 - s1) / t))
    assert soft_pair_loss(a, v, soft, base_loss="mw", temperature=t).item() == pytest.approx(mw, rel=1e-12)


@pytest.mark.parametrize("base_loss", ["ntxent", "mw"])
def test_mixed_nt_xent_and_mw_gradcheck_and_finite(base_loss):
    x, y = _batch(5, n=8)
    pairs = metrix_pairs(y)
    xx = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda u: metrix_loss(u, y, pairs=pairs, base_loss=base_loss, temperature=0.5), (xx,)
    )
    big = (1e4 * x).requires_grad_()
    loss = metrix_loss(big, y, pairs=pairs, base_loss=base_loss)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()
    with pytest.raises(ValueError, match="metrix_loss: temperature"):
        metrix_loss(x, y, base_loss=base_loss, temperature=0.0)
    with pytest.raises(TypeError, match="has no hyperparameter 'alpha'"):
        metrix_loss(x, y, base_loss=base_loss, alpha=2.0)


@pytest.mark.parametrize("base_loss", ["ms", "contrastive", "ntxent", "mw"])
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
