"""VCL (spec B§14), Cauchy-Schwarz divergence terms (B§9), WDR and GPG (B§13): worked values,
loop references, gradcheck, bad input."""

import pytest
import torch
import torch.nn.functional as TF
from references import regularizers as ref

from losslab.functional.regularizers.cs_divergence import (
    cs_conditional_divergence,
    cs_ib_loss,
    cs_mutual_information,
)
from losslab.functional.regularizers.elastic_quantization import (
    gpg_loss,
    quantizable_weights,
    weight_distribution_loss,
)
from losslab.functional.regularizers.vcl import vcl_contrastive_term, vcl_loss, vcl_rank_term

P = torch.tensor([0.9, 0.2, 0.6, 0.1], dtype=torch.float64)
SOL = torch.tensor([[1, 0, 1, 0]])


@pytest.mark.parametrize("tau,expected", [(1.0, 0.0338134), (0.5, 0.0008986), (0.1, 3.6e-15)])
def test_vcl_worked_values(tau, expected):
    assert vcl_contrastive_term(P, SOL, temperature=tau).item() == pytest.approx(expected, abs=1e-7)
    assert vcl_rank_term(P, SOL).item() == pytest.approx(0.3)
    total = vcl_loss(P, SOL, temperature=tau)
    assert total.item() == pytest.approx(expected + 0.01 * 0.3, abs=1e-7)


def test_vcl_weighted_solutions_match_loop_and_skip_rules():
    sols = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    c = torch.tensor([10.0, 12.0, 9.0, 11.0], dtype=torch.float64)
    con = vcl_contrastive_term(P, sols, objective_values=c, temperature=0.5)
    rank = vcl_rank_term(P, sols, objective_values=c, margin=0.9)
    exp_con, exp_rank = ref.vcl(P.numpy(), sols.numpy(), c.numpy(), 100.0, 0.5, 0.9)
    assert con.item() == pytest.approx(exp_con, rel=1e-10)
    assert rank.item() == pytest.approx(exp_rank, rel=1e-10)
    w = torch.softmax(-torch.tensor([10.0, 12.0]) / 100, 0)
    torch.testing.assert_close(w, torch.tensor([0.505, 0.495]), atol=5e-4, rtol=0)
    p = P.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda u: vcl_loss(u, sols, objective_values=c, temperature=0.5, alpha=0.5), (p,)
    )


def test_vcl_bad_inputs():
    with pytest.raises(ValueError, match="vcl_loss|vcl_contrastive_term: probabilities must lie"):
        vcl_loss(torch.tensor([1.5, 0.2]), torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match=r"vcl_rank_term: solutions must have shape \(Q, 4\)"):
        vcl_rank_term(P, torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="vcl_contrastive_term: solutions must hold only 0 and 1"):
        vcl_contrastive_term(P, torch.tensor([[2, 0, 1, 0]]))


X = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
Y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
YP = torch.tensor([0.1, 0.8, 0.3], dtype=torch.float64)
T = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=torch.float64)


def test_cs_worked_values_both_normalisations():
    assert cs_conditional_divergence(X, Y, YP).item() == pytest.approx(0.0310482, abs=1e-7)
    assert cs_conditional_divergence(X, Y, YP, denominator="sq_sum").item() == pytest.approx(0.0326024, abs=1e-7)
    assert cs_mutual_information(X, T).item() == pytest.approx(0.4552421, abs=1e-7)
    assert cs_mutual_information(X, T, normalized=True).item() == pytest.approx(0.9467952, abs=1e-7)
    total = cs_ib_loss(X, Y, YP, T, beta=0.5)
    assert total.item() == pytest.approx(0.0310482 + 0.5 * 0.9467952, abs=1e-6)


def test_cs_random_against_loop_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.randn(7, generator=g, dtype=torch.float64)
    yp = (y + 0.3 * torch.randn(7, generator=g, dtype=torch.float64)).requires_grad_()
    for paper in [False, True]:
        ours = cs_conditional_divergence(x, y, yp, sigma=0.8, denominator="sq_sum" if paper else "sum_sq")
        assert ours.item() == pytest.approx(
            ref.cs_divergence(x.numpy(), y.numpy(), yp.detach().numpy(), 0.8, paper), rel=1e-9
        )
    assert cs_conditional_divergence(x, y, y, sigma=0.8).item() == pytest.approx(0.0, abs=1e-12)
    assert torch.autograd.gradcheck(lambda u: cs_conditional_divergence(x, y, u, sigma=0.8), (yp,))
    t = torch.randn(7, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u: cs_mutual_information(x, u, normalized=True), (t,))
    auto = cs_conditional_divergence(x, y, yp, sigma=None)  # median rule
    assert torch.isfinite(auto)


def test_cs_bad_inputs():
    with pytest.raises(ValueError, match="cs_conditional_divergence: denominator must be one of"):
        cs_conditional_divergence(X, Y, YP, denominator="paper")
    with pytest.raises(ValueError, match=r"cs_conditional_divergence: y must have shape \(3,\)"):
        cs_conditional_divergence(X, Y[:2], YP)
    with pytest.raises(ValueError, match="cs_mutual_information: sigma must lie in"):
        cs_mutual_information(X, T, sigma=0.0)


W = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.3, 1.2], dtype=torch.float64)


@pytest.mark.parametrize(
    "kurt_w,unbiased,expected",
    [(1.0, False, 0.0906183), (0.015, False, 0.0650878), (1.0, True, 0.2294591), (0.015, True, 0.0403218)],
)
def test_wdr_worked_values(kurt_w, unbiased, expected):
    out = weight_distribution_loss([W], kurtosis_weight=kurt_w, unbiased=unbiased)
    assert out.item() == pytest.approx(expected, abs=1e-7)


def test_wdr_model_layers_loop_and_gradcheck():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(16, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 3)).double()
    layers = quantizable_weights(model)
    assert len(layers) == 2 and layers[0] is model[2].weight
    ours = weight_distribution_loss(layers)
    expected = ref.wdr([w.detach().numpy() for w in layers], 1.0, 0.015, 1)
    assert ours.item() == pytest.approx(expected, rel=1e-10)
    w = W.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda u: weight_distribution_loss([u, 2 * u[:4]]), (w,))
    with pytest.raises(ValueError, match="weight_distribution_loss: weights is empty"):
        weight_distribution_loss([])


def test_gpg_worked_value_teachers_detached():
    h = torch.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    r = torch.tensor([[1.5, 1.0, -0.5]], requires_grad=True)
    low = torch.tensor([[0.5, 0.8, 0.0]], requires_grad=True)
    y = torch.tensor([0])
    out = gpg_loss(h, r, low, y)
    assert out.item() == pytest.approx(1.1773467, abs=1e-6)
    out.backward()
    # the high net is trained by its CE only: teachers are detached
    h2 = h.detach().clone().requires_grad_()
    TF.cross_entropy(h2, y).backward()
    torch.testing.assert_close(h.grad, h2.grad)
    with pytest.raises(ValueError, match="gpg_loss: lam must lie in"):
        gpg_loss(h, r, low, y, lam=1.5)
    with pytest.raises(ValueError, match="gpg_loss: the three logits must share"):
        gpg_loss(h, r[:, :2], low, y)


def test_cs_median_bandwidth_follows_the_official_rule():
    """σ for sigma=None: 10 × the median below the diagonal of cat([X, X])'s squared distances.

    By hand, x = [0, 1, 3, 4.5, 7]: the distinct squared distances are 1, 2.25, 4, 6.25, 9,
    12.25, 16, 20.25, 36, 49; the 45 lower-triangle values of the stacked 10-point sample are
    5 zeros (a point and its copy) and 4 copies of each, so the 23rd (the median) is 9 and
    σ = 90. The full 5 × 5 matrix with its diagonal zeros gives 6.25 (σ = 62.5): the old rule.
    """
    from losslab.functional.regularizers.cs_divergence import median_bandwidth

    x = torch.tensor([[0.0], [1.0], [3.0], [4.5], [7.0]], dtype=torch.float64)
    assert median_bandwidth(x) == 90.0
    # N = 4 (an even count, 28): 4 zeros then 4 copies each of 1, 2.25, 4, 9, 12.25, 20.25;
    # the middle two (14th, 15th) are both 4.
    assert median_bandwidth(x[:4]) == pytest.approx(40.0)
    y = torch.tensor([0.0, 1.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    yp = torch.tensor([0.1, 0.8, 0.3, 1.5, 1.2], dtype=torch.float64)
    auto = cs_mutual_information(x, x, sigma=None)
    assert auto.item() == pytest.approx(cs_mutual_information(x, x, sigma=90.0).item(), rel=1e-12)
    assert auto.item() != pytest.approx(cs_mutual_information(x, x, sigma=62.5).item(), rel=1e-6)
    assert cs_conditional_divergence(x, y, yp, sigma=None).item() == pytest.approx(
        cs_conditional_divergence(x, y, yp, sigma=90.0).item(), rel=1e-12
    )
    assert cs_ib_loss(x, y, yp, x, sigma=None).item() == pytest.approx(
        cs_ib_loss(x, y, yp, x, sigma=90.0).item(), rel=1e-12
    )
