r"""Linear probes on frozen features: an L2-regularised multinomial logistic probe, and a
comparison with the generative naive-Bayes probe of
:class:`losslab.heads.naive_bayes.GaussianNaiveBayesProbe` (Zheng et al., ICML 2023,
arXiv 2302.02334, who find the generative probe reaches its asymptotic error with far fewer
samples).

The logistic probe minimises scikit-learn's ``LogisticRegression(C=1, penalty="l2")``
objective, :math:`C\sum_i \mathrm{CE}(Wx_i + b, y_i) + \tfrac12\lVert W\rVert_F^2` (bias not
penalised), by L-BFGS in float64, so it matches scikit-learn without depending on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.validation import check_number


def fit_logistic_probe(
    features: Tensor, labels: Tensor, *, num_classes: int | None = None, C: float = 1.0,
    max_iter: int = 500,
) -> tuple[Tensor, Tensor]:
    """Fit the L2 logistic probe; returns ``(weight (K, d), bias (K,))`` in float64."""
    fn = "fit_logistic_probe"
    check_number(fn, "C", C, low=0.0, low_open=True)
    if features.dim() != 2 or labels.shape != (features.shape[0],) or labels.is_floating_point():
        raise ValueError(f"{fn}: need features (n, d) and integer labels (n,), got "
                         f"{tuple(features.shape)} and {tuple(labels.shape)}")
    x = features.detach().double()
    y = labels.long()
    k = num_classes if num_classes is not None else int(y.max()) + 1
    w = torch.zeros(k, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = C * torch.nn.functional.cross_entropy(x @ w.T + b, y, reduction="sum")
        loss = loss + 0.5 * w.square().sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return w.detach(), b.detach()


@dataclass(frozen=True)
class ProbeComparison:
    """Test accuracy of the naive-Bayes and logistic probes trained on the same features."""

    naive_bayes_accuracy: float
    logistic_accuracy: float
    train_size: int


def compare_probes(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, *, C: float = 1.0
) -> ProbeComparison:
    """Train both probes on (train_x, train_y) and report their test accuracies."""
    from ..heads.naive_bayes import GaussianNaiveBayesProbe

    k = int(max(int(train_y.max()), int(test_y.max()))) + 1
    nb = GaussianNaiveBayesProbe(train_x.shape[1], k).fit(train_x, train_y)
    nb_acc = float((nb(test_x).argmax(1) == test_y).double().mean())
    w, b = fit_logistic_probe(train_x, train_y, num_classes=k, C=C)
    lr_acc = float(((test_x.double() @ w.T + b).argmax(1) == test_y).double().mean())
    return ProbeComparison(nb_acc, lr_acc, int(train_x.shape[0]))


__all__ = [
    "ProbeComparison",
    "compare_probes",
    "fit_logistic_probe",
]
