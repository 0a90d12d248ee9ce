"""Sub-commands of the ``losslab`` CLI that have no better home."""
