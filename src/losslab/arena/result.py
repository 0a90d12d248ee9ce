"""What one arena run produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunResult:
    """Everything measured in one run; ``metrics`` are final clean-test numbers, ``curves``
    one value per epoch, ``reliability`` the 15-bin top-label table of the test set."""

    metrics: dict[str, float]
    curves: dict[str, list[float]]
    reliability: dict[str, list[float]]
    seconds: float
    diverged: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "curves": self.curves,
            "reliability": self.reliability,
            "seconds": self.seconds,
            "diverged": self.diverged,
            "extra": self.extra,
        }
