"""Pure loss functions, one module per family. See each module for formulas and papers."""

from . import _logit_objectives
from ._logit_objectives import *  # noqa: F403  (overlap, surrogates, distillation, ...)
from .contrastive import nt_xent_loss as nt_xent_loss
from .cs_divergence import cs_conditional_divergence as cs_conditional_divergence
from .cs_divergence import cs_ib_loss as cs_ib_loss
from .cs_divergence import cs_mutual_information as cs_mutual_information
from .distances import pairwise_distance as pairwise_distance
from .distances import pairwise_similarity as pairwise_similarity
from .elastic_quantization import gpg_loss as gpg_loss
from .elastic_quantization import weight_distribution_loss as weight_distribution_loss
from .embedding import multi_similarity_loss as multi_similarity_loss
from .embedding import multi_similarity_miner as multi_similarity_miner
from .embedding import mw_loss as mw_loss
from .embedding import orthogonal_projection_loss as orthogonal_projection_loss
from .embedding_fewshot import class_prototypes as class_prototypes
from .embedding_fewshot import proto_triplet_loss as proto_triplet_loss
from .embedding_icnn import icnn_loss as icnn_loss
from .imbalance import focal_loss
from .ldr import aldr_kl, aldr_kl_step, ldr_kl
from .metrix import metrix_loss as metrix_loss
from .metrix import metrix_pairs as metrix_pairs
from .metrix import mix as mix
from .metrix import soft_pair_loss as soft_pair_loss
from .metrix import utilization as utilization
from .normalized import (
    active_passive,
    nce_and_mae,
    normalized_cross_entropy,
    normalized_generalized_cross_entropy,
)
from .robust import (
    generalized_cross_entropy,
    mean_absolute_error,
    reverse_cross_entropy,
    symmetric_cross_entropy,
)
from .softmax import comp_sum, cross_entropy, spherical_z_loss
from .vcl import vcl_loss as vcl_loss

__all__ = [
    "cross_entropy",
    "comp_sum",
    "spherical_z_loss",
    "generalized_cross_entropy",
    "mean_absolute_error",
    "symmetric_cross_entropy",
    "reverse_cross_entropy",
    "normalized_cross_entropy",
    "normalized_generalized_cross_entropy",
    "active_passive",
    "nce_and_mae",
    "ldr_kl",
    "aldr_kl",
    "aldr_kl_step",
    "focal_loss",
    *_logit_objectives.__all__,
]
