"""Scaling-law fits (spec B§17): worked values, and recovery of known parameters from noisy
synthetic curves with bootstrap intervals that cover the truth."""

import numpy as np
import pytest
import torch

from losslab.diagnostics.scaling import (
    annealing_areas,
    fit_lr_annealing,
    fit_power_law,
    fit_scaling_law,
    make_schedule,
    optimal_mixture,
    predict_lr_annealing,
)
from losslab.diagnostics.scaling.fit import huber
from losslab.diagnostics.scaling.laws import LAWS


def _predict(law, theta, **cols):
    data = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in cols.items()}
    return LAWS[law].log_predict(torch.tensor(theta, dtype=torch.float64), data).exp().numpy()


def test_spec_worked_values():
    assert _predict("power", [np.log(1e6), 0.1, np.log(1.5)], x=[1e8])[0] == pytest.approx(
        2.1309573, abs=1e-7)
    nmt = _predict("nmt", [np.log(2.0), 0.3, 0.5, 0.0], n_enc=[2e8], n_dec=[4e8],
                   ref_enc=1e8, ref_dec=1e8)
    assert nmt[0] == pytest.approx(1.8122524, abs=1e-7)
    s1, s2 = annealing_areas([1, 1, 0.5, 0.25])
    np.testing.assert_allclose(s1, [1, 2, 2.5, 2.75])
    np.testing.assert_allclose(s2, [0, 0, 0.5, 1.2495], atol=1e-12)
    loss = _predict("lr-annealing", [2.0, 1.0, 0.5, 0.3], s1=s1, s2=s2)
    np.testing.assert_allclose(loss, [3.0, 2.707107, 2.482456, 2.228173], atol=1e-6)
    p = optimal_mixture([0.08, 0.10, 0.15])
    np.testing.assert_allclose(p, [0.241523, 0.303583, 0.454894], atol=1e-6)
    assert np.sum(p ** -np.array([0.08, 0.10, 0.15])) == pytest.approx(3.3723983, abs=1e-7)
    np.testing.assert_allclose(huber(torch.tensor([5e-4, -2e-3], dtype=torch.float64)).numpy(),
                               [1.25e-7, 1.5e-6])


def test_annealing_areas_match_double_sum_and_warmup_modes():
    lrs = make_schedule("cosine:lr=2,final=0.1,warmup=5", 40)
    s1, s2 = annealing_areas(lrs, decay=0.9)
    eta = np.concatenate([[lrs[0]], lrs])  # eta_0 = eta_1
    slow = [sum((eta[k - 1] - eta[k]) * 0.9 ** (i - k) for k in range(1, i + 1))
            for i in range(1, 41)]
    np.testing.assert_allclose(s2, np.cumsum(slow), atol=1e-12)
    assert lrs[:5].tolist() == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0])
    peak, _ = annealing_areas(lrs, warmup_steps=5, warmup="as_peak")
    assert peak[4] == pytest.approx(10.0)
    excl, excl2 = annealing_areas(lrs, warmup_steps=5, warmup="exclude")
    assert excl[4] == 0 and excl[5] == pytest.approx(lrs[5]) and excl2[5] == 0


def test_schedules():
    assert make_schedule("constant:lr=0.5", 3).tolist() == [0.5, 0.5, 0.5]
    np.testing.assert_allclose(make_schedule("step:lr=1,gamma=0.1,milestones=2/3", 4),
                               [1, 0.1, 0.01, 0.01])
    wsd = make_schedule("wsd:lr=1,decay=0.5,final=0", 10)
    assert wsd[:5].tolist() == [1.0] * 5 and wsd[-1] == 0.0
    with pytest.raises(ValueError, match=r"^make_schedule: schedule kind"):
        make_schedule("linear:lr=1", 3)
    with pytest.raises(ValueError, match=r"^make_schedule: unknown options \['gama'\]"):
        make_schedule("step:lr=1,gama=0.1", 3)


def test_power_law_recovery_with_intervals():
    rng = np.random.default_rng(0)
    x = np.logspace(5, 10, 25)
    loss = (1.5 + (1e6 / x) ** 0.1) * np.exp(rng.normal(0, 0.002, x.size))
    fit = fit_power_law(x, loss, bootstrap=30, seed=1)
    assert fit.params["L_inf"] == pytest.approx(1.5, abs=0.08)
    assert fit.params["alpha"] == pytest.approx(0.1, abs=0.01)
    for name, truth in (("L_inf", 1.5), ("alpha", 0.1), ("x0", 1e6)):
        lo, hi = fit.intervals[name]
        assert lo <= fit.params[name] <= hi
        # the truth lies within one interval width of the interval (30 resamples are few)
        assert lo - (hi - lo) <= truth <= hi + (hi - lo), (name, lo, hi)
    assert np.abs(fit.residuals).max() < 0.01
    np.testing.assert_allclose(fit.predict(x=x), loss, rtol=0.01)


def test_nmt_law_recovery():
    rng = np.random.default_rng(1)
    ne, nd = np.meshgrid(np.logspace(7, 9, 5), np.logspace(7, 9, 5))
    ne, nd = ne.ravel(), nd.ravel()
    loss = 2.0 * (1e8 / ne) ** 0.3 * (1e8 / nd) ** 0.5 + 1.0
    loss = loss * np.exp(rng.normal(0, 0.002, loss.size))
    fit = fit_scaling_law("nmt", loss, columns={"n_enc": ne, "n_dec": nd},
                          constants={"ref_enc": 1e8, "ref_dec": 1e8})
    for name, truth, tol in (("alpha", 2.0, 0.1), ("p_e", 0.3, 0.03), ("p_d", 0.5, 0.03),
                             ("L_inf", 1.0, 0.1)):
        assert fit.params[name] == pytest.approx(truth, abs=tol), name


def test_multilingual_law_recovery():
    rng = np.random.default_rng(2)
    n = np.repeat(np.logspace(7, 9, 4), 12)
    d = np.tile(np.repeat(np.logspace(9, 11, 4), 3), 4)
    p = np.tile([0.1, 0.4, 1.0], 16)
    loss = p ** -0.12 * (1.8 + 400 * n ** -0.34 + 1200 * d ** -0.28)
    loss = loss * np.exp(rng.normal(0, 0.001, loss.size))
    fit = fit_scaling_law("multilingual", loss, columns={"n": n, "d": d, "p": p})
    assert fit.params["gamma"] == pytest.approx(0.12, abs=0.01)
    assert fit.params["E"] == pytest.approx(1.8, rel=0.1)
    np.testing.assert_allclose(fit.predict(n=n, d=d, p=p), loss, rtol=0.005)


def test_lr_annealing_recovery_and_prediction_of_an_unseen_schedule():
    rng = np.random.default_rng(3)
    truth = np.array([2.0, 1.0, 0.5, 0.05])
    steps = np.arange(20, 3001, 20)
    runs = []
    for spec in ("constant:lr=0.01", "cosine:lr=0.01,final=0.0005"):
        lrs = make_schedule(spec, 3000)
        s1, s2 = annealing_areas(lrs)
        clean = _predict("lr-annealing", truth, s1=s1[steps - 1], s2=s2[steps - 1])
        runs.append((steps, clean * np.exp(rng.normal(0, 0.001, steps.size)), lrs))
    fit = fit_lr_annealing(runs, bootstrap=20)
    for name, value, tol in zip(("L0", "A", "alpha", "C"), truth, (0.1, 0.1, 0.05, 0.005),
                                strict=True):
        assert fit.params[name] == pytest.approx(value, abs=tol), name
        lo, hi = fit.intervals[name]
        assert lo < hi
    wsd = make_schedule("wsd:lr=0.01,decay=0.2,final=0", 3000)
    s1, s2 = annealing_areas(wsd)
    expected = _predict("lr-annealing", truth, s1=s1, s2=s2)
    np.testing.assert_allclose(predict_lr_annealing(fit, wsd), expected, rtol=0.01)


def test_errors():
    with pytest.raises(ValueError, match=r"^fit_scaling_law: law must be one of"):
        fit_scaling_law("kaplan", [1.0, 2.0, 3.0], columns={})
    with pytest.raises(ValueError, match=r"^fit_scaling_law: law 'power' needs columns"):
        fit_scaling_law("power", [1.0, 2.0, 3.0], columns={"n": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"^fit_scaling_law: loss must be"):
        fit_power_law([1.0, 2.0, 3.0], [1.0, -2.0, 3.0])
    with pytest.raises(ValueError, match=r"^annealing_areas: warmup must be"):
        annealing_areas([1.0], warmup="skip")


def test_chinchilla_recovery():
    rng = np.random.default_rng(4)
    n = np.repeat(np.logspace(7, 10, 6), 6)
    d = np.tile(np.logspace(9, 12, 6), 6)
    loss = (1.7 + 400 * n ** -0.34 + 410 * d ** -0.28) * np.exp(rng.normal(0, 0.001, n.size))
    fit = fit_scaling_law("chinchilla", loss, columns={"n": n, "d": d})
    for name, truth, rel in (("E", 1.7, 0.05), ("alpha", 0.34, 0.05), ("beta", 0.28, 0.05)):
        assert fit.params[name] == pytest.approx(truth, rel=rel), name
