"""Re-exports of the later logit-space objective families (overlap, metric surrogates,
distillation, confidence, consistency, distributional, adversarial), so that ``functional/__init__`` needs
one import line for all of them."""

from .adversarial import smooth_adversarial_comp_sum
from .confidence import ca_calib, dco, dco_gradient_factor, ntp_reward
from .consistency import cbc, dkl, ler, sce_consistency
from .distillation import kd, multi_aspect_kd, pld
from .distributional import (
    hl_gauss,
    hl_gauss_centers,
    hl_gauss_decode,
    hl_gauss_encode,
    two_hot,
    two_hot_atoms,
    two_hot_decode,
    two_hot_encode,
)
from .overlap import (
    binary_dice,
    binary_tversky,
    dice,
    dice_batch,
    self_adjusting_dice,
    tversky,
    tversky_batch,
)
from .surrogates import anyloss_acc, anyloss_bacc, anyloss_fbeta, anyloss_gmean, binary_anyloss

__all__ = [
    "anyloss_acc",
    "anyloss_bacc",
    "anyloss_fbeta",
    "anyloss_gmean",
    "binary_anyloss",
    "binary_dice",
    "binary_tversky",
    "ca_calib",
    "cbc",
    "dco",
    "dco_gradient_factor",
    "dice",
    "dice_batch",
    "dkl",
    "hl_gauss",
    "hl_gauss_centers",
    "hl_gauss_decode",
    "hl_gauss_encode",
    "kd",
    "ler",
    "multi_aspect_kd",
    "ntp_reward",
    "pld",
    "sce_consistency",
    "self_adjusting_dice",
    "smooth_adversarial_comp_sum",
    "tversky",
    "tversky_batch",
    "two_hot",
    "two_hot_atoms",
    "two_hot_decode",
    "two_hot_encode",
]
