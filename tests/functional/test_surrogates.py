"""AnyLoss: worked values of spec B§5 and a numpy loop reference for the one-vs-rest form."""

import numpy as np
import pytest
import torch

import losslab.functional as LF

P1 = torch.tensor([0.9, 0.6, 0.4, 0.2], dtype=torch.float64)
P2 = torch.tensor([0.7, 0.45, 0.55, 0.1], dtype=torch.float64)
Y = torch.tensor([1, 1, 0, 0])


@pytest.mark.parametrize(
    "p,metric,kw,expected",
    [
        (P1, "acc", {}, 3.3754e-4),
        (P1, "fbeta", {}, 3.3754e-4),
        (P1, "bacc", {}, 3.3754e-4),
        (P1, "gmean", {}, 6.7497e-4),
        (P2, "fbeta", {}, 0.4873338),
        (P2, "acc", {}, 0.4873338),
    ],
)
def test_binary_worked_values(p, metric, kw, expected):
    got = LF.binary_anyloss(torch.logit(p), Y, metric=metric, smooth=0.0, **kw).item()
    assert got == pytest.approx(expected, rel=2e-4, abs=1e-7)


def test_gmean_sqrt_variant_on_worked_example():
    yhat = torch.sigmoid(73 * (P1 - 0.5))
    tp = (yhat * Y).sum()
    tn = ((1 - yhat) * (1 - Y)).sum()
    expected = 1 - torch.sqrt(tp / 2 * tn / 2)
    got = LF.binary_anyloss(torch.logit(P1), Y, metric="gmean", gmean_sqrt=True, smooth=0.0)
    torch.testing.assert_close(got, expected)
    assert got.item() != pytest.approx(6.7497e-4, rel=1e-2)  # differs from the official G-mean²


def _ovr_reference(z, y, metric, amplifier=73.0, s=1e-5, beta=1.0, activation="softmax"):
    if activation == "softmax":
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
    else:
        p = 1 / (1 + np.exp(-z))
    losses = []
    for c in range(z.shape[1]):
        tp = fn = fp = tn = 0.0
        for i in range(len(y)):  # explicit confusion-matrix accumulation
            a = 1 / (1 + np.exp(-amplifier * (p[i, c] - 0.5)))
            if y[i] == c:
                tp += a
                fn += 1 - a
            else:
                fp += a
                tn += 1 - a
        n1, n0 = tp + fn, fp + tn
        f = {
            "acc": (tp + tn) / (n1 + n0 + s),
            "fbeta": (1 + beta**2) * tp / ((1 + beta**2) * tp + beta**2 * fn + fp + s),
            "gmean": tp * tn / (n1 * n0 + s),
            "bacc": (n0 * tp + n1 * tn) / (2 * n1 * n0 + s),
        }[metric]
        losses.append(1 - f)
    return np.mean(losses)


@pytest.mark.parametrize("metric", ["acc", "fbeta", "gmean", "bacc"])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_one_vs_rest_equals_loop_reference(metric, activation):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (12,), generator=g)
    fn = getattr(LF, f"anyloss_{metric}")
    kw = {"beta": 2.0} if metric == "fbeta" else {}
    got = fn(z, y, amplifier=5.0, activation=activation, **kw).item()
    ref = _ovr_reference(z.numpy(), y.numpy(), metric, 5.0, 1e-5, kw.get("beta", 1.0), activation)
    assert got == pytest.approx(ref, rel=1e-10)


def test_absent_class_stays_finite_and_smooth_matters():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])  # classes 3 and 4 absent
    for metric in ("acc", "fbeta", "gmean", "bacc"):
        fn = getattr(LF, f"anyloss_{metric}")
        values = {}
        for s in (0.0, 1e-5, 0.5):
            loss = fn(z, y, amplifier=10.0, smooth=s)
            (grad,) = torch.autograd.grad(loss, z)
            assert torch.isfinite(loss) and torch.isfinite(grad).all(), (metric, s)
            if s > 0:  # the loop reference divides by zero at s = 0 on absent classes
                ref = _ovr_reference(z.detach().numpy(), y.numpy(), metric, 10.0, s)
                assert loss.item() == pytest.approx(ref, rel=1e-10), (metric, s)
            values[s] = loss.item()
        # smooth = 0 is the smooth -> 0+ limit; a large smooth visibly changes the loss.
        assert values[0.0] == pytest.approx(values[1e-5], abs=1e-4), metric
        assert abs(values[0.5] - values[1e-5]) > 1e-3, metric


def test_gmean_sqrt_absent_class_with_zero_smooth():
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    loss = LF.anyloss_gmean(z, y, gmean_sqrt=True, smooth=0.0)
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_loss_falls_as_predictions_improve():
    y = torch.tensor([0, 1, 2, 1])
    good = torch.nn.functional.one_hot(y, 3).double() * 6
    bad = torch.nn.functional.one_hot((y + 1) % 3, 3).double() * 6
    for fn in (LF.anyloss_acc, LF.anyloss_fbeta, LF.anyloss_gmean, LF.anyloss_bacc):
        # One-vs-rest accuracy still counts true negatives, so all-wrong gives 2/3, not 1.
        assert fn(good, y).item() < 0.01 < 0.6 < fn(bad, y).item()


def test_binary_ignore_index_drops_samples():
    x = torch.logit(P2)
    y = torch.tensor([1, 1, 0, -100, 0])
    xx = torch.cat([x[:3], torch.tensor([3.0], dtype=torch.float64), x[3:]])
    torch.testing.assert_close(
        LF.binary_anyloss(xx, y, metric="bacc"), LF.binary_anyloss(x, Y, metric="bacc")
    )
    with pytest.raises(ValueError, match="binary_anyloss: target must hold 0/1 labels"):
        LF.binary_anyloss(x, torch.full((4,), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="binary_anyloss: metric must be one of"):
        LF.binary_anyloss(x, Y, metric="auc")
