"""Analytic ridge classifier (spec B§19) and the naive-Bayes probe (spec B§18)."""

import numpy as np
import pytest
import torch

from losslab.heads.analytic import AnalyticClassifier
from losslab.heads.naive_bayes import GaussianNaiveBayesProbe


def test_analytic_spec_example():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    head = AnalyticClassifier(2, gamma=0.1).fit(x, torch.tensor([0, 1, 0]))
    expected = torch.tensor([[0.938416, -0.293255], [0.029326, 0.615836]], dtype=torch.float64)
    torch.testing.assert_close(head.W, expected, atol=1e-6, rtol=0)
    rec = AnalyticClassifier(2, gamma=0.1)
    for i in range(3):
        rec.update(x[i : i + 1], torch.tensor([[0, 1, 0][i]]))
    torch.testing.assert_close(rec.W, head.W, atol=1e-12, rtol=0)


@pytest.mark.parametrize("buffer_size", [None, 64])
def test_recursive_equals_joint_with_classes_appearing_late(buffer_size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(90, 12, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (90,), generator=g)
    labels[50:] = torch.randint(0, 6, (40,), generator=g)  # classes 3..5 only appear later
    labels[70:75] = 1  # and an old class re-appears
    joint = AnalyticClassifier(12, gamma=0.1, buffer_size=buffer_size).fit(x, labels)
    rec = AnalyticClassifier(12, gamma=0.1, buffer_size=buffer_size)
    for start, stop in ((0, 20), (20, 50), (50, 51), (51, 90)):
        rec.update(x[start:stop], labels[start:stop])
    assert rec.num_classes == joint.num_classes == 6
    assert (rec.W - joint.W).abs().max().item() < 1e-10
    # the joint solution against numpy's linear solver
    feats = joint.expand(x).numpy()
    y = np.eye(6)[labels.numpy()]
    ref = np.linalg.solve(feats.T @ feats + 0.1 * np.eye(feats.shape[1]), feats.T @ y)
    assert np.abs(joint.W.numpy() - ref).max() < 1e-10
    logits = rec(x.float())
    assert logits.dtype == torch.float32 and logits.shape == (90, 6)


def test_analytic_errors():
    with pytest.raises(ValueError, match=r"^AnalyticClassifier: gamma must lie in"):
        AnalyticClassifier(3, gamma=0.0)
    with pytest.raises(ValueError, match=r"^AnalyticClassifier.update: features must have shape"):
        AnalyticClassifier(3).update(torch.zeros(2, 4), torch.tensor([0, 1]))


X_NB = torch.tensor([[0.0, 0], [1, 1], [3, 1], [4, 3], [5, 2]], dtype=torch.float64)
Y_NB = torch.tensor([0, 0, 1, 1, 1])


def test_naive_bayes_spec_example():
    probe = GaussianNaiveBayesProbe(2, 2).fit(X_NB, Y_NB)
    torch.testing.assert_close(probe.mean, torch.tensor([[0.5, 0.5], [4.0, 2.0]],
                                                        dtype=torch.float64))
    torch.testing.assert_close(probe.shared_variance, torch.tensor([0.5, 0.5],
                                                                   dtype=torch.float64))
    scores = probe(torch.tensor([[2.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(scores, torch.tensor([[-3.4162907, -5.5108256]],
                                                    dtype=torch.float64), atol=1e-7, rtol=0)
    assert int(scores.argmax()) == 0


def test_naive_bayes_streaming_linear_form_and_likelihood():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 5, generator=g, dtype=torch.float64) * 2 + 1
    y = torch.randint(0, 4, (200,), generator=g)
    full = GaussianNaiveBayesProbe(5, 4).fit(x, y)
    stream = GaussianNaiveBayesProbe(5, 4)
    for start, stop in ((0, 3), (3, 77), (77, 200)):
        stream.partial_fit(x[start:stop], y[start:stop])
    torch.testing.assert_close(stream(x), full(x), rtol=1e-12, atol=1e-12)
    weight, bias = full.linear_form()
    diff = full(x) - (x @ weight.T + bias)
    torch.testing.assert_close(diff - diff[:, :1], torch.zeros_like(diff), atol=1e-10, rtol=0)
    # log-likelihood against an explicit Gaussian density with the pooled variance
    var = full.shared_variance
    k = 2
    dens = torch.distributions.Normal(full.mean[k], var.sqrt()).log_prob(x).sum(1)
    prior = (y == k).double().mean().log()
    torch.testing.assert_close(full.log_likelihood(x)[:, k], dens + prior, rtol=1e-10, atol=1e-10)


def test_naive_bayes_errors():
    with pytest.raises(ValueError, match=r"classes \[1\] have no samples"):
        GaussianNaiveBayesProbe(2, 2).fit(X_NB[:2], Y_NB[:2])(X_NB)
    with pytest.raises(ValueError, match=r"^GaussianNaiveBayesProbe.partial_fit: labels"):
        GaussianNaiveBayesProbe(2, 2).fit(X_NB, Y_NB + 1)


def test_analytic_rejects_nan_empty_and_predicting_before_fit():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    head = AnalyticClassifier(2, gamma=0.1)
    with pytest.raises(ValueError, match=r"^AnalyticClassifier.forward: the classifier has seen"):
        head(x)
    with pytest.raises(ValueError, match=r"^AnalyticClassifier.update: features is empty"):
        head.update(x[:0], torch.zeros(0, dtype=torch.long))
    head.fit(x, torch.tensor([0, 1, 0]))
    w, r = head.W.clone(), head.R.clone()
    bad = x.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^AnalyticClassifier.update: features must be finite"):
        head.update(bad, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"^AnalyticClassifier.fit: features must be finite"):
        head.fit(bad, torch.tensor([0, 1, 0]))
    # the rejected batches left the fitted solution untouched
    torch.testing.assert_close(head.W, w, rtol=0, atol=0)
    torch.testing.assert_close(head.R, r, rtol=0, atol=0)


def test_naive_bayes_rejects_nan_features():
    probe = GaussianNaiveBayesProbe(2, 2)
    bad = torch.tensor([[0.0, float("nan")], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"^GaussianNaiveBayesProbe.partial_fit: features must be"):
        probe.fit(bad, torch.tensor([0, 1]))
