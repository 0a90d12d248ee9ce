"""Harmonic loss and HarmonicHead: worked values (spec A§5), both official-code conventions,
every distance, zero-distance safety, gradcheck, bad input."""

import pytest
import torch
import torch.nn.functional as TF
from references.harmonic import harmonic_loss_from_distances, official_harmonic_probabilities

from losslab.functional._core.distances import DISTANCES, pairwise_distance
from losslab.heads.harmonic import HarmonicHead, harmonic_logits, harmonic_loss

D = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
Y = torch.tensor([0])


@pytest.mark.parametrize("n,expected", [(1.0, 0.559616), (2.0, 0.271934), (0.5, 0.791683)])
def test_worked_values(n, expected):
    assert harmonic_loss(D, Y, n=n, eps=0.0).item() == pytest.approx(expected, abs=1e-6)
    assert harmonic_loss(D, Y, n=n, eps=0.0).item() == pytest.approx(
        harmonic_loss_from_distances([1.0, 2.0, 4.0], 0, n), rel=1e-12
    )
    # the code's convention: squared distances with n = 1 equal n = 2 on distances
    assert harmonic_loss(D.square(), Y, n=1.0, eps=0.0).item() == pytest.approx(0.271934, abs=1e-6)


def test_min_normalisation_changes_logits_not_probabilities_or_gradients():
    g = torch.Generator().manual_seed(0)
    d = (torch.rand(6, 5, generator=g, dtype=torch.float64) * 3).requires_grad_()
    y = torch.randint(0, 5, (6,), generator=g)
    plain = harmonic_logits(d, n=4.0)
    normed = harmonic_logits(d, n=4.0, min_normalize=True)
    torch.testing.assert_close(normed.amax(1), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(plain.softmax(1), normed.softmax(1))
    g1, = torch.autograd.grad(harmonic_loss(d, y, n=4.0), d)
    g2, = torch.autograd.grad(harmonic_loss(d, y, n=4.0, min_normalize=True), d)
    torch.testing.assert_close(g1, g2)
    assert torch.autograd.gradcheck(lambda u: harmonic_loss(u, y, n=3.0, reduction="none"), (d,))


@pytest.mark.parametrize("min_normalize", [False, True])
def test_head_official_convention_equals_loop_reference(min_normalize):
    torch.manual_seed(1)
    head = HarmonicHead(3, 4, n=2.0, squared=True, min_normalize=min_normalize).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = torch.tensor(official_harmonic_probabilities(x, head.weight.detach(), 2.0), dtype=torch.float64)
    torch.testing.assert_close(head.probabilities(x), expected)
    # paper convention with twice the exponent gives the same probabilities (eps aside)
    paper = HarmonicHead(3, 4, n=4.0, eps=0.0).double()
    paper.weight.data = head.weight.data.clone()
    close = HarmonicHead(3, 4, n=2.0, eps=0.0, squared=True, min_normalize=min_normalize).double()
    close.weight.data = head.weight.data.clone()
    torch.testing.assert_close(paper.probabilities(x), close.probabilities(x))


def _head(metric):
    kw = {"p": 1.5} if metric == "minkowski" else {}
    return HarmonicHead(3, 4, distance=metric, n=2.0, **kw).double()


@pytest.mark.parametrize("metric", DISTANCES)
def test_every_distance_equals_direct_formula_and_is_safe_at_the_centre(metric):
    torch.manual_seed(2)
    head = _head(metric)
    x = torch.randn(5, 3, dtype=torch.float64)
    matrix = head.metric_matrix()
    d = pairwise_distance(x, head.weight.detach(), metric=metric, p=head.p,
                          matrix=None if matrix is None else matrix.detach())
    torch.testing.assert_close(head(x), -2.0 * torch.log(d + 1e-4))
    y = torch.tensor([0, 1, 2, 3, 0])
    at_centre = head.weight.detach()[:2].clone().requires_grad_()  # d = 0 to its own centre
    loss = TF.cross_entropy(head(at_centre), y[:2])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(at_centre.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    xx = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda u: TF.cross_entropy(head(u), y), (xx,))


def test_mahalanobis_parametrisations():
    torch.manual_seed(3)
    x = torch.randn(4, 3, dtype=torch.float64)
    eu = HarmonicHead(3, 2).double()
    for kind in ["cholesky", "diagonal"]:
        m = HarmonicHead(3, 2, distance="mahalanobis", mahalanobis=kind).double()
        m.weight.data = eu.weight.data.clone()
        torch.testing.assert_close(m(x), eu(x))  # identity at initialisation
        TF.cross_entropy(m(x), torch.tensor([0, 1, 0, 1])).backward()
        learned = m.cholesky if kind == "cholesky" else m.log_diagonal
        assert learned.grad is not None and learned.grad.abs().sum() > 0
    p = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 0.5]], dtype=torch.float64)
    fixed = HarmonicHead(3, 2, distance="mahalanobis", mahalanobis="fixed", matrix=p).double()
    diff = x.unsqueeze(1) - fixed.weight.detach().unsqueeze(0)
    direct = torch.einsum("ncd,de,nce->nc", diff, p, diff).sqrt()
    torch.testing.assert_close(fixed.distances(x), direct)


def test_bad_inputs():
    with pytest.raises(ValueError, match="HarmonicHead: distance must be one of"):
        HarmonicHead(3, 2, distance="dot")
    with pytest.raises(ValueError, match="HarmonicHead: n must lie in"):
        HarmonicHead(3, 2, n=0.0)
    with pytest.raises(ValueError, match="needs matrix"):
        HarmonicHead(3, 2, distance="mahalanobis", mahalanobis="fixed")
    with pytest.raises(ValueError, match="harmonic_loss: input must hold non-negative"):
        harmonic_loss(torch.tensor([[-1.0, 2.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"HarmonicHead: features must have shape \(N, 3\)"):
        HarmonicHead(3, 2)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="HarmonicHead: matrix must be symmetric positive semi-definite"):
        HarmonicHead(2, 2, distance="mahalanobis", mahalanobis="fixed", matrix=-torch.eye(2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", DISTANCES)
def test_half_precision_head_computes_in_float32(metric, dtype):
    torch.manual_seed(6)
    head = _head(metric) if metric != "mahalanobis" else HarmonicHead(3, 4, distance=metric, n=2.0)
    x = 100 * torch.randn(5, 3)  # squared distances ~ 3e4·3: beyond float16's 65504
    expected = head(x)
    half = head.to(dtype)
    xh = x.to(dtype).requires_grad_()
    logits = half(xh)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # same result as float32 on the rounded parameters and inputs
    ref = _head(metric) if metric != "mahalanobis" else HarmonicHead(3, 4, distance=metric, n=2.0)
    ref.load_state_dict({k: v.float() for k, v in half.state_dict().items()})
    torch.testing.assert_close(logits, ref(xh.detach().float()))
    assert torch.isfinite(expected).all()
    loss = TF.cross_entropy(logits, torch.tensor([0, 1, 2, 3, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(xh.grad).all()
