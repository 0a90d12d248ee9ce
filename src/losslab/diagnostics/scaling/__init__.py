"""Scaling-law fitting: the public surface of :mod:`.laws` (law forms, S1/S2,
schedules, optimal multilingual mixture) and :mod:`.fit` (Huber-on-log multi-start
L-BFGS-B with bootstrap intervals). See docs/diagnostics.md."""

from . import fit, laws
from .fit import *  # noqa: F403
from .laws import *  # noqa: F403

# Each module lists its public names once, in its own __all__.
__all__ = []
__all__ += fit.__all__
__all__ += laws.__all__
# Also importable from this sub-package (as before the package listed names once), though not
# exported by losslab.diagnostics itself: the law table and the fit's building blocks.
from .fit import annealing_columns, huber  # noqa: E402
from .laws import LAWS, ScalingLaw  # noqa: E402

__all__ += ["LAWS", "ScalingLaw", "annealing_columns", "huber"]
