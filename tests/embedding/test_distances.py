"""Pairwise distances against SciPy's cdist, gradcheck, and zero-distance safety."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from losslab.functional._core.distances import DISTANCES, pairwise_distance, pairwise_similarity

SCIPY_NAME = {"manhattan": "cityblock"}


def _data(seed=0, n=5, m=4, d=3):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(m, d, generator=g, dtype=torch.float64),
        torch.randn(d, d, generator=g, dtype=torch.float64),
    )


def _kwargs(metric, a):
    if metric == "minkowski":
        return {"p": 1.5}
    if metric == "mahalanobis":
        return {"matrix": a @ a.T + 0.1 * torch.eye(a.shape[0], dtype=a.dtype)}
    return {}


@pytest.mark.parametrize("metric", DISTANCES)
def test_matches_scipy_cdist(metric):
    x, y, a = _data()
    kw = _kwargs(metric, a)
    ours = pairwise_distance(x, y, metric=metric, **kw)
    skw = {}
    if metric == "minkowski":
        skw["p"] = 1.5
    if metric == "mahalanobis":
        skw["VI"] = kw["matrix"].numpy()
    ref = cdist(x.numpy(), y.numpy(), SCIPY_NAME.get(metric, metric), **skw)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("metric", DISTANCES)
def test_gradcheck_and_zero_distance_is_safe(metric):
    x, y, a = _data(1, n=3, m=2, d=3)
    kw = _kwargs(metric, a)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda u: pairwise_distance(u, y, metric=metric, **kw), (x,))
    # identical rows: the distance is exactly zero and the gradient finite
    z = torch.cat([x.detach(), x.detach()[:1]]).requires_grad_()
    d = pairwise_distance(z, metric=metric, **kw)
    assert torch.all(d.diagonal() == 0)
    assert d[0, 3].item() == pytest.approx(0.0, abs=1e-12)
    (d * torch.rand_like(d)).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_batched_equals_loop_and_worked_value():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    for metric in ["euclidean", "canberra", "chebyshev", "cosine"]:
        batched = pairwise_distance(x, y, metric=metric)
        for b in range(2):
            torch.testing.assert_close(batched[b], pairwise_distance(x[b], y[b], metric=metric))
    d = pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    torch.testing.assert_close(d, torch.tensor([[0.0, 5.0], [5.0, 0.0]]))


def test_similarity_signs():
    x, y, _ = _data(2)
    cos = pairwise_similarity(x, y)
    ref = 1 - cdist(x.numpy(), y.numpy(), "cosine")
    np.testing.assert_allclose(cos.numpy(), ref, rtol=1e-10)
    torch.testing.assert_close(pairwise_similarity(x, y, metric="dot"), x @ y.T)
    torch.testing.assert_close(
        pairwise_similarity(x, y, metric="manhattan"), -pairwise_distance(x, y, metric="manhattan")
    )


def test_bad_input_messages():
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="pairwise_distance: metric must be one of"):
        pairwise_distance(x, metric="hamming")
    with pytest.raises(ValueError, match="pairwise_distance: y must have shape"):
        pairwise_distance(x, torch.randn(3, 4))
    with pytest.raises(ValueError, match="pairwise_distance: x must have shape"):
        pairwise_distance(torch.randn(3))
    with pytest.raises(ValueError, match="needs matrix"):
        pairwise_distance(x, metric="mahalanobis")
    with pytest.raises(ValueError, match="p must lie in"):
        pairwise_distance(x, metric="minkowski", p=0.5)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        pairwise_distance(torch.ones(3, 2, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", DISTANCES)
def test_half_precision_is_computed_in_float32(metric, dtype):
    # |x| ~ 100 in D=8: squared distances ~ 1e5 overflow float16 (max 65504).
    g = torch.Generator().manual_seed(4)
    x = 100 * torch.randn(4, 8, generator=g)
    y = 100 * torch.randn(3, 8, generator=g)
    kw = {"matrix": torch.eye(8)} if metric == "mahalanobis" else {"p": 3.0} if metric == "minkowski" else {}
    xh, yh = x.to(dtype), y.to(dtype)
    for args, ref in (((xh, yh), (xh.float(), yh.float())), ((xh,), (xh.float(),))):
        out = pairwise_distance(*args, metric=metric, **kw)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, pairwise_distance(*ref, metric=metric, **kw))
    xg = xh.clone().requires_grad_()
    pairwise_distance(xg, yh, metric=metric, **kw).sum().backward()
    assert xg.grad.dtype == dtype and torch.isfinite(xg.grad).all()


def test_mahalanobis_matrix_must_be_symmetric_psd():
    x, y = torch.randn(3, 2), torch.randn(4, 2)
    with pytest.raises(ValueError, match="pairwise_distance: matrix must be symmetric positive semi-definite.*eigenvalue"):
        pairwise_distance(x, y, metric="mahalanobis", matrix=-torch.eye(2))
    with pytest.raises(ValueError, match="pairwise_similarity: matrix must be symmetric.*P - P"):
        pairwise_similarity(x, y, metric="mahalanobis", matrix=torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="matrix must be finite"):
        pairwise_distance(x, y, metric="mahalanobis", matrix=torch.full((2, 2), float("nan")))
    # a singular PSD matrix (rounding-level negative eigenvalue) is accepted
    a = torch.tensor([[1.0, 2.0], [2.0, 4.0]])
    d = pairwise_distance(x, y, metric="mahalanobis", matrix=a)
    diff = x.unsqueeze(1) - y.unsqueeze(0)
    torch.testing.assert_close(d, ((diff @ a) * diff).sum(-1).clamp_min(0).sqrt(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("metric", [*DISTANCES, "dot"])
def test_autocast_bf16_computes_in_float32_like_eager(metric, dtype):
    # Autocast would run the Gram matrix x @ y.T of the Euclidean, cosine, dot and Mahalanobis
    # forms in bfloat16 (relative error ~4e-3); it is switched off, so the result is eager's.
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 8, generator=g).to(dtype)
    y = torch.randn(5, 8, generator=g).to(dtype)
    kw = {"matrix": torch.eye(8) + 0.5} if metric == "mahalanobis" else {"p": 3.0} if metric == "minkowski" else {}
    pairwise = pairwise_similarity if metric in ("dot", "cosine") else pairwise_distance
    for args in ((x, y), (x,)):
        eager_in = [a.clone().requires_grad_() for a in args]
        eager = pairwise(*eager_in, metric=metric, **kw)
        auto_in = [a.clone().requires_grad_() for a in args]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = pairwise(*auto_in, metric=metric, **kw)
        assert auto.dtype == torch.float32, f"{metric}: {auto.dtype} under autocast"
        torch.testing.assert_close(auto, eager, rtol=0, atol=0)
        upstream = torch.randn(auto.shape, generator=g)
        eager_grads = torch.autograd.grad(eager, eager_in, upstream)
        auto_grads = torch.autograd.grad(auto, auto_in, upstream)
        for auto_grad, eager_grad in zip(auto_grads, eager_grads, strict=True):
            assert auto_grad.dtype == dtype
            torch.testing.assert_close(auto_grad, eager_grad, rtol=0, atol=0)
