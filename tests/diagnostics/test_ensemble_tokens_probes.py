"""Ensemble log-loss, per-token CE comparison and the logistic probe (against scikit-learn)."""

import math

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from losslab.diagnostics.ensemble import ensemble_log_loss
from losslab.diagnostics.probes import compare_probes, fit_logistic_probe
from losslab.diagnostics.token_compare import TokenLossComparison, plot_token_loss_differences


def test_ensemble_worked_example_and_jensen():
    p1 = torch.tensor([[0.9, 0.1]])
    p2 = torch.tensor([[0.1, 0.9]])
    y = torch.tensor([0])
    loss = ensemble_log_loss([p1, p2], y, from_logits=False)
    assert loss.item() == pytest.approx(math.log(2))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 50, 6, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 6, (50,), generator=g)
    ens = ensemble_log_loss(logits, labels)
    members = torch.stack([torch.nn.functional.cross_entropy(z, labels) for z in logits])
    assert ens.item() <= members.mean().item()
    # direct formula: -log mean_m softmax(z_m)_y
    probs = logits.softmax(-1)[:, torch.arange(50), labels]
    assert ens.item() == pytest.approx(-probs.mean(0).log().mean().item(), rel=1e-12)
    # weights: all weight on one member gives that member's CE; huge logits stay finite
    one = ensemble_log_loss(logits, labels, weights=[0, 1, 0, 0])
    assert one.item() == pytest.approx(members[1].item(), rel=1e-12)
    assert math.isfinite(ensemble_log_loss(logits * 1e4, labels).item())
    with pytest.raises(ValueError, match=r"^ensemble_log_loss: weights must be 4"):
        ensemble_log_loss(logits, labels, weights=[1, 1])


def test_token_comparison_from_logits_and_hidden(tmp_path):
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(3, 7, 8, generator=g)
    weight = torch.randn(11, 8, generator=g)
    other = weight + 0.3 * torch.randn(11, 8, generator=g)
    target = torch.randint(0, 11, (3, 7), generator=g)
    target[0, :2] = -100
    by_logits = TokenLossComparison()
    by_logits.update(hidden @ weight.T, hidden @ other.T, target)
    s = by_logits.compute()
    assert s.tokens == 19
    keep = target.reshape(-1) != -100
    ce_a = torch.nn.functional.cross_entropy((hidden @ weight.T).reshape(-1, 11),
                                             target.reshape(-1), reduction="none")[keep]
    torch.testing.assert_close(s.ce_a, ce_a.double())
    assert s.mean_diff == pytest.approx(s.mean_b - s.mean_a, abs=1e-12)
    assert s.mean_diff_ci[0] < s.mean_diff < s.mean_diff_ci[1]
    assert s.quantiles[0.5] == pytest.approx(float(s.diff.median()), abs=0.5)
    fused = TokenLossComparison()
    fused.update_hidden(hidden, weight, hidden, other, target)
    torch.testing.assert_close(fused.compute().diff, s.diff, rtol=1e-5, atol=1e-5)
    plot_token_loss_differences(s, path=tmp_path / "tok.png")
    assert (tmp_path / "tok.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no tokens"):
        TokenLossComparison().compute()


def test_logistic_probe_matches_sklearn_and_probe_comparison():
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(3, 4, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (120,), generator=g)
    x = centres[y] + torch.randn(120, 4, generator=g, dtype=torch.float64)
    w, b = fit_logistic_probe(x, y, C=0.5)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(x.numpy(), y.numpy())
    ours = torch.softmax(x @ w.T + b, 1).numpy()
    assert abs(ours - ref.predict_proba(x.numpy())).max() < 1e-5
    cmp = compare_probes(x[:60], y[:60], x[60:], y[60:])
    assert cmp.train_size == 60
    assert cmp.naive_bayes_accuracy > 0.6 and cmp.logistic_accuracy > 0.6
