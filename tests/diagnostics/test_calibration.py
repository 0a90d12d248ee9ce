"""Calibration metrics: hand-worked values, torchmetrics / scikit-learn as independent oracles,
slow loop references for the binnings torchmetrics lacks, and batch-split invariance."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import multiclass_calibration_error

from losslab.diagnostics import (
    AdaptiveCalibrationError,
    BrierScore,
    CalibrationError,
    ClasswiseCalibrationError,
    NegativeLogLikelihood,
    adaptive_calibration_error,
    brier_score,
    calibration_bins,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)

P3 = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
Y3 = torch.tensor([0, 1, 1])


def _data(n=500, c=5, seed=0, scale=2.5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    # labels correlated with logits so accuracy is neither 0 nor 1
    labels = torch.where(
        torch.rand(n, generator=g) < 0.6, logits.argmax(1), torch.randint(0, c, (n,), generator=g)
    )
    return logits, labels


def test_hand_worked_values():
    assert expected_calibration_error(P3, Y3, n_bins=2).item() == pytest.approx(0.2 / 3)
    assert maximum_calibration_error(P3, Y3, n_bins=2).item() == pytest.approx(0.2 / 3)
    assert classwise_calibration_error(P3, Y3, n_bins=2).item() == pytest.approx(0.8 / 3)
    assert adaptive_calibration_error(P3, Y3, n_bins=3).item() == pytest.approx(2.0 / 6)
    assert brier_score(P3, Y3).item() == pytest.approx(0.92 / 3)
    nll = -(math.log(0.9) + math.log(0.4) + math.log(0.7)) / 3
    assert negative_log_likelihood(P3, Y3).item() == pytest.approx(nll)


def test_bin_edges_are_right_closed():
    # 0.5 belongs to (0, 0.5], the first of two bins; 1.0 to the last.
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    bins = calibration_bins(p, torch.tensor([0, 0]), n_bins=2)
    assert bins.count.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_matches_torchmetrics(norm, n_bins):
    logits, labels = _data()
    ours = expected_calibration_error(logits, labels, n_bins=n_bins, norm=norm, from_logits=True)
    ref = multiclass_calibration_error(
        logits.softmax(1), labels, num_classes=5, n_bins=n_bins, norm=norm
    )
    assert ours.item() == pytest.approx(ref.item(), abs=1e-6)  # torchmetrics is float32


def _loop_ece(conf, hit, n_bins, mass, weighted=True):
    """Slow reference: explicit bins; mass bins cut the sorted sample into near-equal runs."""
    conf, hit = np.asarray(conf, float), np.asarray(hit, float)
    n = len(conf)
    if mass:
        order = np.argsort(conf, kind="stable")
        groups = [g for g in np.array_split(order, n_bins) if len(g)]
    else:
        edges = np.linspace(0, 1, n_bins + 1)
        groups = []
        for b in range(n_bins):
            lo, hi = edges[b], edges[b + 1]
            sel = np.where(((conf > lo) | ((b == 0) & (conf >= 0))) & (conf <= hi))[0]
            if len(sel):
                groups.append(sel)
    gaps = [abs(hit[g].mean() - conf[g].mean()) for g in groups]
    if weighted:
        return sum(len(g) / n * gap for g, gap in zip(groups, gaps, strict=True))
    return float(np.mean(gaps))


def test_equal_mass_ece_matches_loop():
    logits, labels = _data(n=203)
    p = logits.softmax(1).numpy()
    conf, hit = p.max(1), p.argmax(1) == labels.numpy()
    for n_bins in (1, 7, 15, 300):
        ours = expected_calibration_error(logits, labels, n_bins=n_bins, binning="mass",
                                          from_logits=True)
        assert ours.item() == pytest.approx(_loop_ece(conf, hit, n_bins, True), abs=1e-12)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_classwise_and_adaptive_match_loop(binning):
    logits, labels = _data(n=157, c=4, seed=3)
    p, y = logits.softmax(1).numpy(), labels.numpy()
    ref = np.mean([_loop_ece(p[:, k], y == k, 10, binning == "mass") for k in range(4)])
    ours = classwise_calibration_error(logits, labels, n_bins=10, binning=binning,
                                       from_logits=True)
    assert ours.item() == pytest.approx(ref, abs=1e-12)
    gaps = []
    for k in range(4):
        order = np.argsort(p[:, k], kind="stable")
        gaps += [abs((y[g] == k).mean() - p[g, k].mean()) for g in np.array_split(order, 10)]
    ace = adaptive_calibration_error(logits, labels, n_bins=10, from_logits=True)
    assert ace.item() == pytest.approx(np.mean(gaps), abs=1e-12)


def test_brier_and_nll_match_sklearn():
    logits, labels = _data(n=300, c=3, seed=1)
    p = logits.softmax(1)
    assert brier_score(p, labels).item() == pytest.approx(
        brier_score_loss(labels.numpy(), p.numpy(), labels=[0, 1, 2], scale_by_half=False),
        abs=1e-10,
    )
    assert negative_log_likelihood(logits, labels, from_logits=True).item() == pytest.approx(
        log_loss(labels.numpy(), p.numpy(), labels=[0, 1, 2]), abs=1e-10
    )
    # binary 1-D input: Brier is twice sklearn's positive-class score
    pb = torch.rand(50, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    yb = (torch.rand(50, generator=torch.Generator().manual_seed(4)) < pb).long()
    assert brier_score(pb, yb).item() == pytest.approx(2 * brier_score_loss(yb, pb), abs=1e-12)


def test_nll_from_extreme_logits_is_finite_and_exact():
    z = torch.tensor([[0.0, 800.0]], dtype=torch.float64)
    assert negative_log_likelihood(z, torch.tensor([0]), from_logits=True).item() == 800.0
    zb = torch.tensor([-30.0], dtype=torch.float64)  # binary logit
    ref = torch.nn.functional.softplus(-zb).item()  # -log sigmoid(z)
    assert negative_log_likelihood(zb, torch.tensor([1]), from_logits=True).item() == (
        pytest.approx(ref, rel=1e-12)
    )


def test_perfectly_calibrated_population_has_small_ece():
    g = torch.Generator().manual_seed(5)
    conf = torch.rand(200_000, generator=g, dtype=torch.float64) * 0.5 + 0.5
    hit = torch.rand(200_000, generator=g, dtype=torch.float64) < conf
    p = torch.stack([conf, 1 - conf], 1)
    y = torch.where(hit, 0, 1)
    assert expected_calibration_error(p, y).item() < 0.01
    overconfident = torch.stack([conf.sqrt(), 1 - conf.sqrt()], 1)
    assert expected_calibration_error(overconfident, y).item() > 0.05


@pytest.mark.parametrize(
    "metric,fn,kw",
    [
        (CalibrationError, expected_calibration_error, {"norm": "l2"}),
        (CalibrationError, expected_calibration_error, {"binning": "mass"}),
        (ClasswiseCalibrationError, classwise_calibration_error, {}),
        (AdaptiveCalibrationError, adaptive_calibration_error, {}),
        (BrierScore, brier_score, {}),
        (NegativeLogLikelihood, negative_log_likelihood, {}),
    ],
)
def test_stateful_equals_functional_over_batches(metric, fn, kw):
    logits, labels = _data(n=250, c=4, seed=7)
    m = metric(from_logits=True, **kw)
    for chunk in (slice(0, 17), slice(17, 120), slice(120, 250)):
        m.update(logits[chunk], labels[chunk])
    assert m.compute().item() == pytest.approx(
        fn(logits, labels, from_logits=True, **kw).item(), abs=1e-12
    )
    m.reset()
    with pytest.raises(ValueError, match="no data"):
        m.compute()


def test_input_errors_name_function_and_argument():
    with pytest.raises(ValueError, match=r"^expected_calibration_error: probs_or_logits .*"
                                         r"from_logits=True"):
        expected_calibration_error(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"^brier_score: labels must lie in \[0, 1\]"):
        brier_score(P3, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match=r"^expected_calibration_error: labels must be an integer"):
        expected_calibration_error(P3, Y3.float())
    with pytest.raises(ValueError, match=r"^expected_calibration_error: n_bins"):
        expected_calibration_error(P3, Y3, n_bins=0)
    with pytest.raises(ValueError, match=r"^expected_calibration_error: norm must be one of"):
        expected_calibration_error(P3, Y3, norm="l3")
    with pytest.raises(ValueError, match=r"empty"):
        expected_calibration_error(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    m = CalibrationError()
    m.update(P3, Y3)
    with pytest.raises(ValueError, match=r"^CalibrationError.update: .*3 classes"):
        m.update(torch.full((2, 3), 1 / 3), torch.tensor([0, 1]))
