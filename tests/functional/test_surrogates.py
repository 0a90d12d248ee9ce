"""AnyLoss: worked values of spec B§5 and a numpy loop reference for the one-vs-rest form."""

import re

import numpy as np
import pytest
import torch

import losslab
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
    k = z.shape[1]
    if activation == "softmax":
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        # Softmax: A centred at the uniform 1/C with amplifier 2L/C.
        centre, amplifier = 1.0 / k, 2.0 * amplifier / k
    else:
        p = 1 / (1 + np.exp(-z))
        centre = 0.5
    if metric == "acc" and activation == "softmax":
        # Multi-class accuracy: the share of rows whose own class is soft-predicted.
        hits = sum(1 / (1 + np.exp(-amplifier * (p[i, y[i]] - centre))) for i in range(len(y)))
        return 1 - hits / (len(y) + s)
    losses = []
    for c in range(z.shape[1]):
        tp = fn = fp = tn = 0.0
        for i in range(len(y)):  # explicit confusion-matrix accumulation
            a = 1 / (1 + np.exp(-amplifier * (p[i, c] - centre)))
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


def test_binary_accuracy_counts_both_classes():
    """binary_anyloss(metric="acc") is (TP + TN)/n on the positive class: the 2-column
    multi-class accuracy, since A(1 − p) = 1 − A(p) at the centre 1/2."""
    x = torch.logit(P2)
    yhat = torch.sigmoid(73 * (P2 - 0.5))
    tp, tn = (yhat * Y).sum(), ((1 - yhat) * (1 - Y)).sum()
    got = LF.binary_anyloss(x, Y, metric="acc", smooth=0.0)
    torch.testing.assert_close(got, 1 - (tp + tn) / 4)


def test_softmax_amplifier_is_centred_at_uniform():
    """At uniform logits each class's soft prediction is A_C(1/C) = 1/2, whatever C."""
    for c in (2, 10, 100):
        z = torch.zeros(c, c, dtype=torch.float64)
        y = torch.arange(c)
        # acc: 1 − mean_i A(p_iy) = 1/2; F1 per class: 2·(1/2) / (1 + c/2).
        assert LF.anyloss_acc(z, y, smooth=0.0).item() == pytest.approx(0.5)
        assert LF.anyloss_fbeta(z, y, smooth=0.0).item() == pytest.approx(1 - 1 / (1 + c / 2))


def test_gradient_at_initialisation_does_not_vanish():
    g = torch.Generator().manual_seed(0)
    z = (0.01 * torch.randn(256, 10, generator=g)).requires_grad_()
    y = torch.randint(0, 10, (256,), generator=g)
    ce = torch.autograd.grad(torch.nn.functional.cross_entropy(z, y), z)[0].abs().max()
    for fn in (LF.anyloss_acc, LF.anyloss_fbeta, LF.anyloss_gmean, LF.anyloss_bacc):
        (grad,) = torch.autograd.grad(fn(z, y), z)
        assert grad.abs().max() > 0.1 * ce, fn.__name__


@pytest.mark.parametrize("name", ["anyloss-acc", "anyloss-fbeta", "anyloss-gmean", "anyloss-bacc"])
def test_ten_class_model_learns_at_defaults(name):
    """A 10-class MLP on scikit-learn's digits trained under the registry defaults learns
    (chance is 10 %; CE reaches about 97 % in this budget)."""
    from sklearn.datasets import load_digits

    import losslab

    torch.set_num_threads(1)
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1300], perm[1300:]
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = losslab.get_loss(name)
    for _ in range(20):
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), 128):
            batch = order[i : i + 128]
            loss = loss_fn(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    assert acc > 0.85, f"{name}: test accuracy {acc:.3f}"


@pytest.mark.parametrize(
    ("name", "registry_name"),
    [
        ("anyloss_acc", "anyloss-acc"),
        ("anyloss_fbeta", "anyloss-fbeta"),
        ("anyloss_gmean", "anyloss-gmean"),
        ("anyloss_bacc", "anyloss-bacc"),
    ],
)
def test_each_anyloss_names_itself_in_hyperparameter_errors(name, registry_name):
    # The four functions share one checked entry; the function and its module (checked at
    # construction) must still report under the public name.
    z, y = torch.zeros(3, 2), torch.tensor([0, 1, 0])
    fn = getattr(LF, name)
    for bad, message in [
        ({"amplifier": 0.0}, f"{name}: amplifier must lie in (0, inf), got 0"),
        ({"smooth": -1.0}, f"{name}: smooth must lie in [0, inf), got -1"),
        ({"activation": "relu"}, f"{name}: activation must be one of 'softmax', 'sigmoid', got 'relu'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            fn(z, y, **bad)
        with pytest.raises(ValueError, match=re.escape(message)):
            losslab.get_loss(registry_name, **bad)
