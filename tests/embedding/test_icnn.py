"""ICNN loss (SuSana Distancia): hand value, plain-loop reference for both scores, gradcheck,
invariances, bad inputs, and a zero-loss batch whose gradient stays connected."""

import math

import pytest
import torch

import losslab
from losslab.functional.embedding.icnn import icnn_loss, icnn_score


def _neighbours(x, y, rx, ry, same, i, count):
    """Plain-Python sorted (distance, same-class) neighbours of anchor i."""
    rows = []
    for j in range(len(rx)):
        if same and j == i:
            continue
        rows.append((math.dist(x[i], rx[j]), ry[j] == y[i]))
    rows.sort(key=lambda t: t[0])
    return rows[:count]


def _loop_score(x, y, rx=None, ry=None, k=4, search_k=None, score="modified", p=2.0, r=2.0):
    same = rx is None
    rx, ry = (x, y) if same else (rx, ry)
    x, rx = x.tolist(), rx.tolist()
    y, ry = y.tolist(), ry.tolist()
    n = len(x)
    available = len(rx) - (1 if same else 0)
    if score == "original":
        k = k if k <= available else min(3, available)
        lam_rows, gam = [], []
        for i in range(n):
            nb = _neighbours(x, y, rx, ry, same, i, k)
            lo, hi = min(d for d, _ in nb), max(d for d, _ in nb)
            scaled = [(d - lo) / (hi - lo) if hi > lo else 0.0 for d, _ in nb]
            lam_rows.append(sum(1 - s if c else s for s, (_, c) in zip(scaled, nb, strict=True)))
            gam.append((sum(c for _, c in nb) / k) ** (1 / r))
        top = max(lam_rows)
        lam = sum((v / top) ** (1 / p) if top > 0 else 0.0 for v in lam_rows) / n
        return (lam + sum(gam) / n) / 2
    clamped = k >= available - 1
    k = min(k, available - 1)
    window = min(max(k + 1 if search_k is None else search_k, k), available)
    intra, inter_d, gam = [], [], []
    for i in range(n):
        nb = _neighbours(x, y, rx, ry, same, i, window)
        others = [d for d, c in nb if not c]
        delta = min(others) if others else math.inf
        first = nb[:k]
        den = max(delta if others else 0.0, max(d for d, _ in first))
        ratio = [(d / den if den > 0 else 1.0) if others else 0.0 for d, _ in first]
        same_r = [q for q, (_, c) in zip(ratio, first, strict=True) if c]
        if same_r:
            intra.append(sum(same_r) / len(same_r))
        inter_d.append([d for d, c in first if not c])
        gam.append(len(same_r) / k)
    lam_intra = 1 - (sum(intra) / len(intra) if intra else 0.0)
    biggest = max((d for row in inter_d for d in row), default=0.0)
    means = [sum(d / biggest for d in row) / len(row) for row in inter_d if row]
    lam_inter = sum(means) / len(means) if means else 1.0
    gamma = 1.0 if clamped else sum(gam) / n
    return ((lam_intra + lam_inter) / 2 + gamma) / 2


def test_hand_value():
    # 1-D points; k=2, window 3. Worked by hand: lambda_intra = 1 - (1/3+1/2+2/3+1)/4 = 0.375,
    # lambda_inter = (1 + 2/3 + 1/2 + 1/6 + 1/3)/5 = 8/15, gamma = 4/10.
    x = torch.tensor([[0.0], [1.0], [3.0], [4.0], [4.5]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 0])
    s = ((0.375 + 8 / 15) / 2 + 0.4) / 2
    torch.testing.assert_close(icnn_loss(x, y, k=2), torch.tensor(-math.log(s), dtype=torch.float64))
    assert _loop_score(x, y, k=2) == pytest.approx(s, rel=1e-12)
    # original score by hand: Lambda = [2, 2, 2, 0, 1], gamma roots of [1/2]*4 + [0].
    s_orig = ((3 + 0.5**0.5) / 5 + 4 * 0.5**0.5 / 5) / 2
    torch.testing.assert_close(icnn_score(x, y, k=2, score="original"),
                               torch.tensor(s_orig, dtype=torch.float64))


def test_coincident_embeddings_across_classes_are_finite():
    # Collapsed features (all zero): the other-class distance delta is 0. k=4 >= available-1, so
    # gamma = 1; every rho = 1 (all distances 0) -> lambda_intra = 0; lambda_inter = 0/0 = 0;
    # s = ((0 + 0)/2 + 1)/2 = 1/2.
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    z = torch.zeros(6, 4, requires_grad=True)
    loss = icnn_loss(z, y)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2.0))
    assert torch.isfinite(z.grad).all()
    # delta = 0 with other non-zero distances: equals the loop reference, finite gradient.
    x = torch.tensor([[0.0], [0.0], [0.0], [3.0], [4.0], [5.0]], dtype=torch.float64)
    x.requires_grad_()
    loss = icnn_loss(x, y, k=2)
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(_loop_score(x.detach(), y, k=2)), rel=1e-12)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("score", ["modified", "original"])
@pytest.mark.parametrize(("n", "classes", "k", "search_k"), [(20, 4, 4, None), (24, 3, 3, 7), (6, 2, 4, None), (5, 2, 5, None)])
def test_loop_reference(score, n, classes, k, search_k):
    g = torch.Generator().manual_seed(n + k)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    out = icnn_score(x, y, k=k, search_k=search_k, score=score)
    assert out.item() == pytest.approx(_loop_score(x, y, k=k, search_k=search_k, score=score), rel=1e-10)
    assert 0.25 <= out.item() <= 1.0 if score == "modified" else 0.0 < out.item() <= 1.0


@pytest.mark.parametrize("score", ["modified", "original"])
def test_reference_set_and_gradcheck(score):
    g = torch.Generator().manual_seed(3)
    support = torch.randn(10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    sl = torch.arange(5).repeat_interleave(2)
    q = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    ql = torch.randint(0, 5, (8,), generator=g)
    out = icnn_score(q, ql, ref_embeddings=support, ref_labels=sl, k=3, score=score)
    expect = _loop_score(q.detach(), ql, support.detach(), sl, k=3, score=score)
    assert out.item() == pytest.approx(expect, rel=1e-10)

    def f(a, b):
        return icnn_loss(a, ql, ref_embeddings=b, ref_labels=sl, k=3, score=score)

    assert torch.autograd.gradcheck(f, (q, support))
    x = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2] * 4)
    assert torch.autograd.gradcheck(lambda u: icnn_loss(u, y, k=3, score=score), (x,))


@pytest.mark.parametrize("score", ["modified", "original"])
def test_invariances(score):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(18, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (18,), generator=g)
    base = icnn_loss(x, y, score=score)
    perm = torch.randperm(18, generator=g)
    torch.testing.assert_close(icnn_loss(x[perm], y[perm], score=score), base)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    torch.testing.assert_close(icnn_loss(x @ rotation + 3.0, y, score=score), base)
    # every term is a ratio of distances, so a uniform scale leaves the loss unchanged
    torch.testing.assert_close(icnn_loss(7.5 * x, y, score=score), base)
    # relabelling classes does not matter
    torch.testing.assert_close(icnn_loss(x, (y + 1) * 10, score=score), base)


def test_zero_loss_batch_has_connected_gradient():
    # two far-apart clusters of 6: every anchor's first k+1 = 5 neighbours share its class.
    g = torch.Generator().manual_seed(7)
    centres = torch.tensor([[0.0, 0.0], [100.0, 0.0]], dtype=torch.float64)
    x = (centres.repeat_interleave(6, 0) + 0.1 * torch.randn(12, 2, generator=g, dtype=torch.float64))
    x.requires_grad_()
    y = torch.tensor([0] * 6 + [1] * 6)
    out = icnn_loss(x, y)
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))
    # a mixed batch has a positive loss and a non-zero gradient
    z = torch.randn(12, 2, generator=g, requires_grad=True)
    loss = icnn_loss(z, y)
    loss.backward()
    assert loss.item() > 0 and z.grad.abs().sum() > 0


def test_float32_module_registry_and_distances():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(15, 4, generator=g)
    y = torch.randint(0, 3, (15,), generator=g)
    module = losslab.get_loss("icnn", k=3, score="original")
    torch.testing.assert_close(module(x, y), icnn_loss(x, y, k=3, score="original"))
    info = next(i for i in losslab.list_losses() if i.name == "icnn")
    assert info.kind == "embeddings" and info.paper.arxiv == "2305.09062"
    for distance in ("sqeuclidean", "cosine", "manhattan", "chebyshev"):
        value = icnn_loss(x, y, distance=distance)
        assert torch.isfinite(value) and value.item() >= 0
    assert icnn_loss(x.half(), y).dtype == torch.float32


def test_bad_inputs():
    x = torch.randn(6, 3)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="icnn_loss: labels"):
        icnn_loss(x, y[:5])
    with pytest.raises(ValueError, match="icnn_loss: embeddings"):
        icnn_loss(torch.randn(6, 3, 2), y)
    with pytest.raises(ValueError, match="icnn_loss: embeddings contains NaN"):
        icnn_loss(x.clone().fill_(float("nan")), y)
    with pytest.raises(ValueError, match="icnn_loss: labels must contain at least 2 classes, got 1"):
        icnn_loss(x, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="icnn_loss: each anchor needs at least 2 neighbours"):
        icnn_loss(x[:2], y[2:4])
    with pytest.raises(ValueError, match="icnn_loss: k must be >= 1"):
        icnn_loss(x, y, k=0)
    with pytest.raises(TypeError, match="icnn_loss: k must be an int"):
        icnn_loss(x, y, k=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="icnn_loss: search_k must be >= 4"):
        icnn_loss(x, y, search_k=3)
    with pytest.raises(ValueError, match="icnn_loss: score"):
        icnn_loss(x, y, score="paper")
    with pytest.raises(ValueError, match="icnn_loss: distance"):
        icnn_loss(x, y, distance="dot")
    with pytest.raises(ValueError, match="ICNNLoss|icnn_loss"):
        losslab.nn.ICNNLoss(k=0)


@pytest.mark.parametrize(
    ("kwargs", "authors"),
    [
        ({}, 0.38250980351224834),
        ({"k": 3, "search_k": 6}, 0.3793943162662925),
        ({"k": 5, "score": "original"}, 0.6308198342958466),
        ({"k": 3, "score": "original"}, 0.571098493004953),
    ],
)
def test_matches_numbers_from_authors_code(kwargs, authors):
    # Values printed by ``modified_score`` / ``score`` of the authors' algorithms/icnn_loss.py
    # (maumruiz/FSL-Loss) on this deterministic set; they differ from the exact formula only
    # through the code's 1e-6/1e-7 guards, hence the tolerance.
    i = torch.arange(14, dtype=torch.float64)
    x = torch.stack([torch.sin(1.3 * i), torch.cos(0.7 * i), torch.sin(0.37 * i * i)], 1)
    y = (i % 3).long()
    assert icnn_score(x, y, **kwargs).item() == pytest.approx(authors, rel=1e-6)
