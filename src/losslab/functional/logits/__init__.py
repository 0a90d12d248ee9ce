"""Losses on class logits: ``loss(input, target)`` with ``F.cross_entropy``'s conventions
(value losses take real-valued targets; adversarial losses take the model and its inputs).
One module per family; each declares its losses right after their functions.

Its public functions are exported by :mod:`losslab.functional`.
"""
