"""Pure loss functions, grouped by what a loss consumes. See each module for formulas and papers.

* :mod:`losslab.functional.logits`: losses on class logits (``(input, target)`` like
  ``F.cross_entropy``), one module per family;
* :mod:`losslab.functional.embedding`: metric-learning losses on embeddings;
* :mod:`losslab.functional.regularizers`: terms added to a task loss (VCL, Cauchy-Schwarz
  divergences, elastic quantization);
* ``losslab/functional/_core/``: the kernels and plumbing they share (no loss lives there).

Every public function (each family module's ``__all__``) is exported here:
``losslab.functional.cross_entropy``. A loss is declared (registered, its ``nn`` module built)
right after its function in its family file.
"""

from ._core.distances import pairwise_distance, pairwise_similarity
from .embedding import contrastive as _contrastive
from .embedding import fewshot as _fewshot
from .embedding import icnn as _icnn
from .embedding import metrix as _metrix
from .embedding import pair_losses as _pair_losses
from .embedding.contrastive import *  # noqa: F403
from .embedding.fewshot import *  # noqa: F403
from .embedding.icnn import *  # noqa: F403
from .embedding.metrix import *  # noqa: F403
from .embedding.pair_losses import *  # noqa: F403
from .logits import adversarial as _adversarial
from .logits import confidence as _confidence
from .logits import consistency as _consistency
from .logits import distillation as _distillation
from .logits import distributional as _distributional
from .logits import imbalance as _imbalance
from .logits import ldr as _ldr
from .logits import normalized as _normalized
from .logits import overlap as _overlap
from .logits import robust as _robust
from .logits import softmax as _softmax
from .logits import surrogates as _surrogates
from .logits.adversarial import *  # noqa: F403
from .logits.confidence import *  # noqa: F403
from .logits.consistency import *  # noqa: F403
from .logits.distillation import *  # noqa: F403
from .logits.distributional import *  # noqa: F403
from .logits.imbalance import *  # noqa: F403
from .logits.ldr import *  # noqa: F403
from .logits.normalized import *  # noqa: F403
from .logits.overlap import *  # noqa: F403
from .logits.robust import *  # noqa: F403
from .logits.softmax import *  # noqa: F403
from .logits.surrogates import *  # noqa: F403
from .regularizers import cs_divergence as _cs_divergence
from .regularizers import elastic_quantization as _elastic_quantization
from .regularizers import vcl as _vcl
from .regularizers.cs_divergence import *  # noqa: F403
from .regularizers.elastic_quantization import *  # noqa: F403
from .regularizers.vcl import *  # noqa: F403

# Every family module's public functions (its __all__), in one list.
__all__ = ["pairwise_distance", "pairwise_similarity"]
__all__ += _adversarial.__all__
__all__ += _confidence.__all__
__all__ += _consistency.__all__
__all__ += _distillation.__all__
__all__ += _distributional.__all__
__all__ += _imbalance.__all__
__all__ += _ldr.__all__
__all__ += _normalized.__all__
__all__ += _overlap.__all__
__all__ += _robust.__all__
__all__ += _softmax.__all__
__all__ += _surrogates.__all__
__all__ += _contrastive.__all__
__all__ += _fewshot.__all__
__all__ += _icnn.__all__
__all__ += _metrix.__all__
__all__ += _pair_losses.__all__
__all__ += _cs_divergence.__all__
__all__ += _elastic_quantization.__all__
__all__ += _vcl.__all__
