r"""AnyLoss: confusion-matrix metrics turned into batch-level losses.

Reference: Han, Moniz, Chawla, *AnyLoss: Transforming Classification Metrics into Loss
Functions*, KDD 2024 (arXiv 2405.14745); official snippets doheonhan/anyloss_extension.

Each class c is scored one-vs-rest. The class probability p_ic (softmax over the logits by
default, or an independent sigmoid per class) is pushed towards 0/1 by the amplified sigmoid

    A(p) = 1 / (1 + exp(-L (p - 1/2))).

That is the paper's binary form, where p = σ(logit) starts near 1/2 and A passes gradient
(A'(1/2) = L/4). Under a softmax over C classes losslab centres A at the uniform probability 1/C
and scales the amplifier to 2L/C,

    A_C(p) = 1 / (1 + exp(-(2L/C) (p - 1/C))),

which is the paper's A for C = 2. Why, measured (10-class digits, a 64-unit MLP, Adam 1e-2,
20 epochs, 3 seeds; CE reaches 97 %): centred at 1/2 with L = 73, every probability of a fresh
model (about 1/C) sits in A's flat tail, A(0.1) ≈ 2e-13, the gradient at initialisation vanishes
(max |grad| 2e-14 on 0.01·randn(256, 10) logits, CE 3.5e-3) and the model stays at chance;
centred at 1/C with L = 73, F1 stalls at 54–71 % test accuracy because probabilities below
≈ 0.03 fall into the flat tail and classes whose rows land there stop learning; centred at 1/C
with 2L/C, all four metrics reach 95–97 %. ``activation="sigmoid"`` is the paper's binary form
applied to each class one-vs-rest (F1 96–97 % in the same setting).

and the batch's soft confusion matrix of class c is

    TP_c = sum_i y_ic A(p_ic),  FN_c = n1_c - TP_c,  FP_c = sum_i A(p_ic) - TP_c,
    TN_c = n0_c - FP_c,

with y_ic = 1[y_i = c], n1_c = sum_i y_ic and n0_c = K - n1_c over the K kept rows. The loss of
class c is 1 - f(TN, FN, FP, TP); the batch loss is the (class-weighted) mean over classes.
Accuracy under a softmax is the exception: it is the multi-class accuracy
1 - Σ_c w_c TP_c / (Σ_c w_c n1_c + s), the (weighted) share of rows whose target class is
predicted, which for C = 2 is the paper's binary (TP + TN)/n. The mean of C one-vs-rest
accuracies is not used there: each is a 1:(C-1) imbalanced binary accuracy, which all-negative
predictions already score (C-1)/C, and training drifts towards that collapse (in the setting
above: 41–70 % test accuracy with the one-vs-rest mean, 95–96 % with the multi-class form).
Under sigmoids (C independent binary problems) accuracy is the one-vs-rest mean, and it
collapses at many classes (10–13 % there); use F-β, G-mean or balanced accuracy with sigmoids.
Every denominator gets ``smooth`` added (the official code adds 1e-5 to the F-beta, G-mean
and balanced-accuracy denominators but nothing to accuracy's, n, which is never zero; losslab
adds it to accuracy's too, a relative change of about ``smooth / n``, and ``smooth=0``
reproduces the official accuracy exactly), which also keeps classes absent from the batch
finite. With ``smooth = 0`` a zero denominator (G-mean and
balanced accuracy of a class absent from the batch, or of the only class present) has a zero
numerator too; that class's metric is then its smooth → 0+ limit, 0 (loss 1, gradient 0).
Rows are coupled, so these are batch-level losses with the reductions of
:mod:`losslab.functional._core.batch_level`.

Binary problems: :func:`binary_anyloss` takes one logit per sample; it is the class-1 term of
the two-class softmax on (0, x), since softmax((0, x))_1 = sigmoid(x).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from ..._core.registry import Paper, register
from ..._core.validation import check_choice, check_number, class_counts
from .._core.batch_level import BatchLoss, batch_level_loss, mean_over_classes
from .._core.binary_logits import check_binary_logits
from .._core.softmax_sums import softmax_column_stats

_ACTIVATIONS = ("softmax", "sigmoid")
_METRICS = ("acc", "fbeta", "gmean", "bacc")


def _check_anyloss(
    *,
    amplifier: float,
    smooth: float,
    activation: str,
    beta: float = 1.0,
    gmean_sqrt: bool = False,
    fn: str,
) -> None:
    check_number(fn, "amplifier", amplifier, low=0.0, low_open=True)
    check_number(fn, "smooth", smooth, low=0.0)
    check_choice(fn, "activation", activation, _ACTIVATIONS)
    check_number(fn, "beta", beta, low=0.0, low_open=True)
    if not isinstance(gmean_sqrt, bool):
        raise TypeError(f"{fn}: gmean_sqrt must be a bool, got {type(gmean_sqrt).__name__}")


Metric = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def _metric(name: str, smooth: float, beta: float, gmean_sqrt: bool) -> Metric:
    """f(TP, FN, FP, TN, n1, n0) per class, as in the official code (except that ``smooth``
    is added to accuracy's denominator too, where the official code adds none)."""
    s = smooth

    def div(num: Tensor, den: Tensor) -> Tensor:
        if s > 0.0:
            return num / den
        # smooth = 0: a zero denominator (class absent from the batch, or the only class
        # present) has a numerator that is 0 too; use the smooth -> 0+ limit, 0, with a zero
        # (not NaN) gradient.
        ok = den > 0
        return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), 0.0)

    def acc(tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor, n1: Tensor, n0: Tensor) -> Tensor:
        return div(tp + tn, n1 + n0 + s)

    def fbeta(tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor, n1: Tensor, n0: Tensor) -> Tensor:
        b2 = beta * beta
        # (1+b²)TP / ((1+b²)TP + b²FN + FP) written as the official (1+b²)TP / (b² n1 + Σŷ).
        return div((1.0 + b2) * tp, b2 * n1 + tp + fp + s)

    def gmean(tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor, n1: Tensor, n0: Tensor) -> Tensor:
        if gmean_sqrt:
            sens_spec = div(tp, n1 + s) * div(tn, n0 + s)
            # The clamp keeps the sqrt's slope finite when a class has no soft true positives.
            return torch.sqrt(sens_spec.clamp_min(1e-30))
        return div(tp * tn, n1 * n0 + s)

    def bacc(tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor, n1: Tensor, n0: Tensor) -> Tensor:
        return div(n0 * tp + n1 * tn, 2.0 * n1 * n0 + s)

    return {"acc": acc, "fbeta": fbeta, "gmean": gmean, "bacc": bacc}[name]


def _anyloss_batch(
    metric: str, *, amplifier: float, smooth: float, activation: str, beta: float, gmean_sqrt: bool
) -> BatchLoss:
    """The batch loss of one AnyLoss metric on (K, C) kept logits, for
    :func:`batch_level_loss`; the hyperparameters are already checked."""
    f = _metric(metric, float(smooth), float(beta), gmean_sqrt)
    amp = float(amplifier)

    def softmax_amplifier(c: int) -> tuple[float, float]:
        """Centre 1/C and amplifier 2L/C (the paper's 1/2 and L for C = 2)."""
        return 1.0 / c, 2.0 * amp / c

    def amplified(z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(Σ_i ŷ_ic per class (C,), ŷ at each row's target (K,))."""
        if activation == "softmax":
            t, amp_c = softmax_amplifier(z.shape[1])
            # Column sums of ŷ in one fused pass (hand-written backward); TP needs only the
            # target column, so no one-hot matrix is built.
            col, py = softmax_column_stats(z, y, transform="amp-sigmoid", amp=amp_c, center=t)
            return col, torch.sigmoid(amp_c * (py - t))
        yhat = torch.sigmoid(amp * (torch.sigmoid(z) - 0.5))
        return yhat.sum(0), yhat.gather(1, y.unsqueeze(1)).squeeze(1)

    def per_class(z: Tensor, y: Tensor) -> Tensor:
        n1 = class_counts(y, z.shape[1], z.dtype)
        n0 = z.shape[0] - n1
        col, yhat_y = amplified(z, y)
        tp = torch.zeros_like(col).index_add(0, y, yhat_y)
        fp = col - tp
        return 1.0 - f(tp, n1 - tp, fp, n0 - fp, n1, n0)

    def multiclass_accuracy(z: Tensor, y: Tensor, class_weight: Tensor | None) -> Tensor:
        # 1 − Σ_c w_c TP_c / (Σ_c w_c n1_c + s): each row counts with its target's weight.
        # Only the target column is needed, so no column sums are formed.
        t, amp_c = softmax_amplifier(z.shape[1])
        py = torch.softmax(z, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
        yhat_y = torch.sigmoid(amp_c * (py - t))
        w = torch.ones_like(yhat_y) if class_weight is None else class_weight[y]
        den = w.sum() + float(smooth)
        # All rows weighted 0 with smooth = 0: the smooth -> 0+ limit, accuracy 0 (loss 1).
        ok = den > 0
        return 1.0 - torch.where(ok, (w * yhat_y).sum() / torch.where(ok, den, 1.0), 0.0)

    if metric == "acc" and activation == "softmax":
        return multiclass_accuracy
    return mean_over_classes(per_class)


def _anyloss(
    fn: str,
    metric: str,
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    amplifier: float,
    smooth: float,
    activation: str,
    beta: float = 1.0,
    gmean_sqrt: bool = False,
) -> Tensor:
    """The body of the four multi-class AnyLoss functions (``fn`` is the public name in error
    messages): check the hyperparameters, then the batch-level loss of ``metric``."""
    _check_anyloss(amplifier=amplifier, smooth=smooth, activation=activation, beta=beta,
                   gmean_sqrt=gmean_sqrt, fn=fn)
    batch = _anyloss_batch(metric, amplifier=amplifier, smooth=smooth, activation=activation,
                           beta=beta, gmean_sqrt=gmean_sqrt)
    return batch_level_loss(
        fn, input, target, weight=weight, ignore_index=ignore_index, reduction=reduction, batch=batch
    )


ANYLOSS_PAPER = Paper(
    "AnyLoss: Transforming Classification Metrics into Loss Functions",
    2024,
    authors="Han, Moniz, Chawla",
    arxiv="2405.14745",
)
_BAD = ({"amplifier": 0.0}, {"smooth": -1.0}, {"activation": "relu"})


def anyloss_acc(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    amplifier: float = 73.0,
    smooth: float = 1e-5,
    activation: str = "softmax",
) -> Tensor:
    r"""AnyLoss for accuracy: 1 − Σ_c TP_c / n under a softmax (for C = 2 the paper's
    1 − (TP + TN)/n); under sigmoids the mean over classes of the one-vs-rest 1 − (TP + TN)/n.

    Args:
        input: logits (N, C) or (N, C, d1, ...); target: class indices.
        weight: (C,) weights of the per-class losses in the mean over classes.
        amplifier: L > 0 of the amplified sigmoid (73 per the paper's analysis); under a
            softmax over C classes the sigmoid is σ((2L/C)(p − 1/C)), see the module docstring.
        smooth: s ≥ 0 added to the denominator n. The official accuracy adds none (n > 0);
            losslab's default 1e-5 matches the other AnyLoss metrics and changes the value
            by a relative ~1e-5/n; ``smooth=0`` is the official accuracy exactly.
        activation: ``"softmax"`` (class probabilities) or ``"sigmoid"`` (independent heads).

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.9, 0.6, 0.4, 0.2], dtype=torch.float64))
        >>> z = torch.stack([torch.zeros_like(x), x], 1)
        >>> round(LF.anyloss_acc(z, torch.tensor([1, 1, 0, 0]), smooth=0.0).item(), 8)
        0.00033754

    Reference: Han, Moniz, Chawla, *AnyLoss*, KDD 2024 (arXiv 2405.14745).
    """
    return _anyloss("anyloss_acc", "acc", input, target, weight=weight, ignore_index=ignore_index,
                    reduction=reduction, amplifier=amplifier, smooth=smooth, activation=activation)


register(anyloss_acc, name="anyloss-acc", module="AnyLossAccuracy",
         check=partial(_check_anyloss, fn="anyloss_acc"),
         family="surrogates", paper=ANYLOSS_PAPER, batch_level=True,
         invalid_hyperparameters=_BAD)


def anyloss_fbeta(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    amplifier: float = 73.0,
    smooth: float = 1e-5,
    activation: str = "softmax",
    beta: float = 1.0,
) -> Tensor:
    r"""AnyLoss for F-β: 1 − (1+β²)TP / (β² n₁ + Σŷ) per class (the official form).

    Arguments as in :func:`anyloss_acc`, plus ``beta`` > 0 (1 gives F1).

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.7, 0.45, 0.55, 0.1], dtype=torch.float64))
        >>> y = torch.tensor([1.0, 1.0, 0.0, 0.0])
        >>> round(LF.binary_anyloss(x, y, metric="fbeta", smooth=0.0).item(), 7)
        0.4873338

    Reference: Han, Moniz, Chawla, *AnyLoss*, KDD 2024 (arXiv 2405.14745).
    """
    return _anyloss("anyloss_fbeta", "fbeta", input, target, weight=weight,
                    ignore_index=ignore_index, reduction=reduction, amplifier=amplifier,
                    smooth=smooth, activation=activation, beta=beta)


register(anyloss_fbeta, name="anyloss-fbeta", module="AnyLossFBeta",
         check=partial(_check_anyloss, fn="anyloss_fbeta"),
         family="surrogates", paper=ANYLOSS_PAPER, batch_level=True,
         invalid_hyperparameters=(*_BAD, {"beta": 0.0}))


def anyloss_gmean(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    amplifier: float = 73.0,
    smooth: float = 1e-5,
    activation: str = "softmax",
    gmean_sqrt: bool = False,
) -> Tensor:
    r"""AnyLoss for the geometric mean: 1 − TP·TN/(n₁ n₀) per class (official code).

    The official code uses sensitivity × specificity without the square root (G-mean²);
    ``gmean_sqrt=True`` gives the textbook √(TP/(TP+FN) · TN/(TN+FP)).

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.9, 0.6, 0.4, 0.2], dtype=torch.float64))
        >>> y = torch.tensor([1.0, 1.0, 0.0, 0.0])
        >>> round(LF.binary_anyloss(x, y, metric="gmean", smooth=0.0).item(), 8)
        0.00067497

    Reference: Han, Moniz, Chawla, *AnyLoss*, KDD 2024 (arXiv 2405.14745).
    """
    return _anyloss("anyloss_gmean", "gmean", input, target, weight=weight,
                    ignore_index=ignore_index, reduction=reduction, amplifier=amplifier,
                    smooth=smooth, activation=activation, gmean_sqrt=gmean_sqrt)


register(anyloss_gmean, name="anyloss-gmean", module="AnyLossGMean",
         check=partial(_check_anyloss, fn="anyloss_gmean"),
         family="surrogates", paper=ANYLOSS_PAPER, batch_level=True,
         invalid_hyperparameters=_BAD)


def anyloss_bacc(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    amplifier: float = 73.0,
    smooth: float = 1e-5,
    activation: str = "softmax",
) -> Tensor:
    r"""AnyLoss for balanced accuracy: 1 − (n₀ TP + n₁ TN)/(2 n₁ n₀) per class.

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.9, 0.6, 0.4, 0.2], dtype=torch.float64))
        >>> y = torch.tensor([1.0, 1.0, 0.0, 0.0])
        >>> round(LF.binary_anyloss(x, y, metric="bacc", smooth=0.0).item(), 8)
        0.00033754

    Reference: Han, Moniz, Chawla, *AnyLoss*, KDD 2024 (arXiv 2405.14745).
    """
    return _anyloss("anyloss_bacc", "bacc", input, target, weight=weight, ignore_index=ignore_index,
                    reduction=reduction, amplifier=amplifier, smooth=smooth, activation=activation)


register(anyloss_bacc, name="anyloss-bacc", module="AnyLossBalancedAccuracy",
         check=partial(_check_anyloss, fn="anyloss_bacc"), family="surrogates",
         paper=ANYLOSS_PAPER, batch_level=True,
         invalid_hyperparameters=_BAD)


def binary_anyloss(
    input: Tensor,
    target: Tensor,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    metric: str = "fbeta",
    amplifier: float = 73.0,
    smooth: float = 1e-5,
    beta: float = 1.0,
    gmean_sqrt: bool = False,
) -> Tensor:
    r"""Binary AnyLoss on one logit per sample: p = σ(x), positives are target 1.

    ``metric`` is ``"acc"``, ``"fbeta"``, ``"gmean"`` or ``"bacc"``. Computed as the class-1 term
    of the two-class softmax on (0, x); reductions as for the other batch-level losses.

    Args:
        input: logits (N,) or (N, d1, ...); target: same shape, 0/1 (or ignore_index).

    Example:
        >>> import torch, losslab.functional as LF
        >>> x = torch.logit(torch.tensor([0.7, 0.45, 0.55, 0.1], dtype=torch.float64))
        >>> y = torch.tensor([1, 1, 0, 0])
        >>> round(LF.binary_anyloss(x, y, metric="acc", smooth=0.0).item(), 7)
        0.4873338

    Reference: Han, Moniz, Chawla, *AnyLoss*, KDD 2024 (arXiv 2405.14745).
    """
    fn = "binary_anyloss"
    metric = check_choice(fn, "metric", metric, _METRICS)
    _check_anyloss(amplifier=amplifier, smooth=smooth, activation="softmax", beta=beta,
                   gmean_sqrt=gmean_sqrt, fn=fn)
    check_binary_logits(fn, input, target)
    labels = target.round().long() if target.is_floating_point() else target.long()
    if target.is_floating_point() and not bool((labels == target).all()):
        raise ValueError(f"{fn}: target must hold 0/1 labels, got non-integer values")
    z = torch.stack([torch.zeros_like(input), input], dim=1)
    # Accuracy counts both columns' true positives (TP_0 = TN, as A(1 − p) = 1 − A(p) at the
    # centre 1/2); the other metrics keep the positive class's one-vs-rest term only.
    class_weight = (
        None if metric == "acc" else torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
    )
    batch = _anyloss_batch(metric, amplifier=amplifier, smooth=smooth, activation="softmax",
                           beta=beta, gmean_sqrt=gmean_sqrt)
    return batch_level_loss(fn, z, labels, weight=class_weight, ignore_index=ignore_index,
                            reduction=reduction, batch=batch)


__all__ = ["anyloss_acc", "anyloss_bacc", "anyloss_fbeta", "anyloss_gmean", "binary_anyloss"]
