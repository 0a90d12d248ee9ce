"""Training diagnostics: calibration, safe step radius, neural collapse, Hessian and loss
landscape, scaling laws, probes, ensemble log-loss and per-token loss comparison.

Calibration metrics are pure functions of ``(probs_or_logits, labels)`` plus stateful
``update/compute`` classes; see ``docs/diagnostics.md``.
"""

from . import calibration, collapse, ensemble, hessian, landscape, probes, safe_step, scaling, token_compare
from .calibration.correctness_aware import *  # noqa: F403
from .calibration.metric_classes import *  # noqa: F403
from .calibration.metrics import *  # noqa: F403
from .calibration.reliability import *  # noqa: F403
from .calibration.temperature import *  # noqa: F403
from .collapse import *  # noqa: F403
from .ensemble import *  # noqa: F403
from .hessian import *  # noqa: F403
from .landscape import *  # noqa: F403
from .probes import *  # noqa: F403
from .safe_step import *  # noqa: F403
from .scaling.fit import *  # noqa: F403
from .scaling.laws import *  # noqa: F403
from .token_compare import *  # noqa: F403

# Each module lists its public names once, in its own __all__.
__all__ = []
__all__ += calibration.correctness_aware.__all__
__all__ += calibration.metric_classes.__all__
__all__ += calibration.metrics.__all__
__all__ += calibration.reliability.__all__
__all__ += calibration.temperature.__all__
__all__ += collapse.__all__
__all__ += ensemble.__all__
__all__ += hessian.__all__
__all__ += landscape.__all__
__all__ += probes.__all__
__all__ += safe_step.__all__
__all__ += scaling.fit.__all__
__all__ += scaling.laws.__all__
__all__ += token_compare.__all__
