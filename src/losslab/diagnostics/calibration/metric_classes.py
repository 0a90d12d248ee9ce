"""Stateful, torchmetrics-style calibration metrics: ``update(probs_or_logits, labels)`` per
batch, ``compute()`` at the end, ``reset()`` to start again.

``compute()`` over any split of the data into batches equals the functional metric of
:mod:`losslab.diagnostics.calibration` on the concatenated data. Binned metrics keep what
binning needs (top-label confidence and correctness, or the full probability matrix for the
classwise ones); Brier and NLL keep running sums only.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from ..._core.validation import check_choice
from .._inputs import check_bins, probabilities_and_labels
from .metrics import (
    BINNINGS,
    NORMS,
    adaptive_calibration_error,
    bin_statistics,
    brier_score,
    classwise_calibration_error,
    negative_log_likelihood,
    reduce_gap,
)


class _Metric:
    """Shared bookkeeping: argument checks and a consistent number of classes across batches."""

    def __init__(self, from_logits: bool) -> None:
        if not isinstance(from_logits, bool):
            raise TypeError(
                f"{type(self).__name__}: from_logits must be a bool, got {type(from_logits).__name__}"
            )
        self.from_logits = from_logits
        self.num_classes: int | None = None
        self.reset()

    def reset(self) -> None:
        self.num_classes = None

    def _accept(self, probs_or_logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        name = f"{type(self).__name__}.update"
        p, y = probabilities_and_labels(name, probs_or_logits, labels, self.from_logits)
        if self.num_classes is not None and p.shape[1] != self.num_classes:
            raise ValueError(
                f"{name}: probs_or_logits has {p.shape[1]} classes but earlier batches had "
                f"{self.num_classes}"
            )
        self.num_classes = p.shape[1]
        return p, y

    def _require_data(self, empty: bool) -> None:
        if empty:
            raise ValueError(f"{type(self).__name__}.compute: no data; call update() first")


class _BinnedMetric(_Metric):
    """Shared options of the binned ECE-type metrics."""

    def __init__(
        self,
        *,
        n_bins: int = 15,
        norm: str = "l1",
        binning: str = "width",
        from_logits: bool = False,
    ) -> None:
        name = type(self).__name__
        self.n_bins = check_bins(name, n_bins)
        self.norm = check_choice(name, "norm", norm, NORMS)
        self.binning = check_choice(name, "binning", binning, BINNINGS)
        super().__init__(from_logits)


class CalibrationError(_BinnedMetric):
    """Top-label ECE / MCE accumulated over batches (see
    :func:`~losslab.diagnostics.calibration.expected_calibration_error`).

    Example:
        >>> m = CalibrationError(n_bins=2)
        >>> m.update(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1]))
        >>> m.update(torch.tensor([[0.3, 0.7]]), torch.tensor([1]))
        >>> m.compute()   # the same as expected_calibration_error on all three rows
        tensor(0.0667, dtype=torch.float64)
    """

    def reset(self) -> None:
        super().reset()
        self._conf: list[Tensor] = []
        self._hit: list[Tensor] = []

    def update(self, probs_or_logits: Tensor, labels: Tensor) -> None:
        p, y = self._accept(probs_or_logits, labels)
        conf, pred = p.max(dim=1)
        self._conf.append(conf)
        self._hit.append(pred == y)

    def compute(self) -> Tensor:
        self._require_data(not self._conf)
        conf = torch.cat(self._conf).unsqueeze(1)
        hit = torch.cat(self._hit).unsqueeze(1)
        return reduce_gap(bin_statistics(conf, hit, self.n_bins, self.binning), self.norm)[0]


class _StoredProbabilities(_Metric):
    def reset(self) -> None:
        super().reset()
        self._p: list[Tensor] = []
        self._y: list[Tensor] = []

    def update(self, probs_or_logits: Tensor, labels: Tensor) -> None:
        p, y = self._accept(probs_or_logits, labels)
        self._p.append(p)
        self._y.append(y)

    def _data(self) -> tuple[Tensor, Tensor]:
        self._require_data(not self._p)
        return torch.cat(self._p), torch.cat(self._y)


class ClasswiseCalibrationError(_BinnedMetric, _StoredProbabilities):
    """Classwise ECE accumulated over batches (see
    :func:`~losslab.diagnostics.calibration.classwise_calibration_error`)."""

    def compute(self) -> Tensor:
        p, y = self._data()
        return classwise_calibration_error(
            p, y, n_bins=self.n_bins, norm=self.norm, binning=self.binning
        )


class AdaptiveCalibrationError(_StoredProbabilities):
    """Nixon et al.'s ACE accumulated over batches (see
    :func:`~losslab.diagnostics.calibration.adaptive_calibration_error`)."""

    def __init__(self, *, n_bins: int = 15, from_logits: bool = False) -> None:
        self.n_bins = check_bins("AdaptiveCalibrationError", n_bins)
        super().__init__(from_logits)

    def compute(self) -> Tensor:
        p, y = self._data()
        return adaptive_calibration_error(p, y, n_bins=self.n_bins)


class _RunningMean(_Metric, abc.ABC):
    def reset(self) -> None:
        super().reset()
        self._total = torch.zeros((), dtype=torch.float64)
        self._count = 0

    @abc.abstractmethod
    def _batch_mean(self, p: Tensor, y: Tensor, raw: Tensor) -> Tensor:
        """The metric's mean over one validated batch."""

    def update(self, probs_or_logits: Tensor, labels: Tensor) -> None:
        p, y = self._accept(probs_or_logits, labels)
        self._total = self._total + self._batch_mean(p, y, probs_or_logits) * p.shape[0]
        self._count += p.shape[0]

    def compute(self) -> Tensor:
        self._require_data(self._count == 0)
        return self._total / self._count


class BrierScore(_RunningMean):
    """Multiclass Brier score accumulated over batches (see
    :func:`~losslab.diagnostics.calibration.brier_score`)."""

    def _batch_mean(self, p: Tensor, y: Tensor, raw: Tensor) -> Tensor:
        return brier_score(p, y)


class NegativeLogLikelihood(_RunningMean):
    """Mean negative log-likelihood accumulated over batches (see
    :func:`~losslab.diagnostics.calibration.negative_log_likelihood`)."""

    def _batch_mean(self, p: Tensor, y: Tensor, raw: Tensor) -> Tensor:
        if self.from_logits:
            return negative_log_likelihood(raw, y, from_logits=True)
        return negative_log_likelihood(p, y)


__all__ = [
    "AdaptiveCalibrationError",
    "BrierScore",
    "CalibrationError",
    "ClasswiseCalibrationError",
    "NegativeLogLikelihood",
]
