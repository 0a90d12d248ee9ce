"""The arena: train small models under registered losses and compare them (docs/arena.md).

Pieces: ``config`` (RunConfig, LossSpec, checks, run keys), ``data`` and ``noise`` (datasets,
long tail, label noise), ``models``, ``train`` (one run), ``lm`` (Shakespeare language model),
``calibrate`` (post-hoc temperatures), ``sweep`` and ``settings`` (grids, presets, TOML,
executor), ``store`` (SQLite results), ``summary``, ``analysis``, ``plots`` and ``report``.
Submodules are imported on use so that ``import losslab`` does not pull in the arena's extras.
"""
