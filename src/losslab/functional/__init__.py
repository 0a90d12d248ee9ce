"""Pure loss functions, one module per family. See each module for formulas and papers."""

from .softmax import cross_entropy

__all__ = [
    "cross_entropy",
]
