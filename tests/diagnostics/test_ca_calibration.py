"""Correctness-aware calibrator (spec A§11): learns low temperatures where transformed views
agree with the prediction (correct samples here) and high ones where they do not."""

import pytest
import torch

import losslab.functional as LF
from losslab.diagnostics.calibration.correctness_aware import CorrectnessAwareCalibrator, view_features


def _data(n=1200, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g) * 2
    correct = torch.rand(n, generator=g) < 0.6
    labels = torch.where(correct, logits.argmax(1), (logits.argmax(1) + 1) % c)
    views = []
    for _ in range(3):
        agree = logits + 0.3 * torch.randn(n, c, generator=g)
        other = torch.randn(n, c, generator=g) * 2
        views.append(torch.where(correct.unsqueeze(1), agree, other))
    return logits, views, labels, correct


def test_view_features_pick_top_k_of_original():
    z = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    v = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    f = view_features(z, [v, z], top_k=2)
    torch.testing.assert_close(f[0, :2], torch.tensor([0.25, 0.25]))
    p = z.softmax(1)[0]
    torch.testing.assert_close(f[0, 2:], torch.stack([p[0], p[2]]))
    with pytest.raises(ValueError, match=r"^view_features: top_k must lie in"):
        view_features(z, [v], top_k=5)


def test_fit_separates_correct_from_wrong_and_keeps_accuracy():
    torch.manual_seed(0)
    logits, views, labels, correct = _data()
    cal = CorrectnessAwareCalibrator()
    before = LF.ca_calib(cal(logits, views), labels).item()
    history = cal.fit(logits, views, labels, epochs=40, lr=3e-2, batch_size=400)
    with torch.no_grad():
        out = cal(logits, views)
    after = LF.ca_calib(out, labels).item()
    assert after < 0.7 * before and history[-1] < history[0]
    assert torch.equal(out.argmax(1), logits.argmax(1))
    conf = out.softmax(1).max(1).values
    t = cal.temperature(logits, views)
    assert t[correct].mean() < t[~correct].mean()
    assert conf[correct].mean() - conf[~correct].mean() > 0.3
    assert ((t >= 0.1) & (t <= 10)).all()
