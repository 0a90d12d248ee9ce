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
