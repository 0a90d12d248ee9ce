"""Modules and registry entries for the overlap family (Dice, self-adjusting Dice, Tversky)."""

from __future__ import annotations

from functools import partial

from .._core.registry import Paper, register
from ..functional import overlap as F
from ._factory import logit_loss_module

DICE_PAPER = Paper(
    "Dice Loss for Data-imbalanced NLP Tasks", 2020, authors="Li et al.", arxiv="1911.02855"
)
TVERSKY_PAPER = Paper(
    "Tversky loss function for image segmentation using 3D fully convolutional deep networks",
    2017,
    authors="Salehi, Erdogmus, Gholipour",
    arxiv="1706.05721",
)

Dice = logit_loss_module("Dice", F.dice, F._check_dice)
SelfAdjustingDice = logit_loss_module(
    "SelfAdjustingDice", F.self_adjusting_dice, F._check_self_adjusting_dice
)
Tversky = logit_loss_module("Tversky", F.tversky, F._check_tversky)
DiceBatch = logit_loss_module(
    "DiceBatch", F.dice_batch, partial(F._check_dice, classes="all", fn="dice_batch")
)
TverskyBatch = logit_loss_module(
    "TverskyBatch", F.tversky_batch, partial(F._check_tversky, classes="all", fn="tversky_batch")
)

_BAD_DICE = ({"smooth": 0.0}, {"alpha": -0.5}, {"classes": "some"})
_BAD_TVERSKY = ({"alpha": -1.0}, {"beta": -1.0}, {"smooth": -1.0})

register(
    "dice",
    family="overlap",
    paper=DICE_PAPER,
    function=F.dice,
    module=Dice,
    invalid_hyperparameters=_BAD_DICE,
)
register(
    "self-adjusting-dice",
    family="overlap",
    paper=DICE_PAPER,
    function=F.self_adjusting_dice,
    module=SelfAdjustingDice,
    invalid_hyperparameters=_BAD_DICE,
)
register(
    "tversky",
    family="overlap",
    paper=TVERSKY_PAPER,
    function=F.tversky,
    module=Tversky,
    invalid_hyperparameters=(*_BAD_TVERSKY, {"classes": "some"}),
)
register(
    "dice-batch",
    family="overlap",
    paper=DICE_PAPER,
    function=F.dice_batch,
    module=DiceBatch,
    batch_level=True,
    invalid_hyperparameters=_BAD_DICE[:2],
)
register(
    "tversky-batch",
    family="overlap",
    paper=TVERSKY_PAPER,
    function=F.tversky_batch,
    module=TverskyBatch,
    batch_level=True,
    invalid_hyperparameters=_BAD_TVERSKY,
)
