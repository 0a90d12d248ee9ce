"""Layers that turn features into logits: margin heads (ArcFace, CosFace, UNPG) and harmonic
distance heads; train them with a cross-entropy on their output."""

from ..functional._core.distances import DISTANCES as DISTANCES  # the distances a HarmonicHead accepts
from .analytic import AnalyticClassifier as AnalyticClassifier
from .harmonic import HarmonicHead as HarmonicHead
from .harmonic import harmonic_logits as harmonic_logits
from .harmonic import harmonic_loss as harmonic_loss
from .margin import ArcFaceHead as ArcFaceHead
from .margin import CosFaceHead as CosFaceHead
from .margin import UNPGHead as UNPGHead
from .naive_bayes import GaussianNaiveBayesProbe as GaussianNaiveBayesProbe
