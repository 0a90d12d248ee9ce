"""Calibration: metrics as pure functions of ``(probs_or_logits, labels)`` (:mod:`.metrics`),
the same metrics as stateful ``update/compute`` classes (:mod:`.metric_classes`), temperature
scaling (:mod:`.temperature`), the correctness-aware calibrator (:mod:`.correctness_aware`) and
reliability diagrams (:mod:`.reliability`). See ``docs/diagnostics.md``."""

from . import correctness_aware, metric_classes, metrics, reliability, temperature
from .correctness_aware import *  # noqa: F403
from .metric_classes import *  # noqa: F403
from .metrics import *  # noqa: F403
from .reliability import *  # noqa: F403
from .temperature import *  # noqa: F403

# Each module lists its public names once, in its own __all__.
__all__ = []
__all__ += correctness_aware.__all__
__all__ += metric_classes.__all__
__all__ += metrics.__all__
__all__ += reliability.__all__
__all__ += temperature.__all__
# Also importable from this sub-package, though not exported by losslab.diagnostics itself:
# the binning schemes, norms and per-bin statistics the metrics are built from.
from .metrics import BINNINGS, NORMS, bin_statistics, reduce_gap  # noqa: E402

__all__ += ["BINNINGS", "NORMS", "bin_statistics", "reduce_gap"]
