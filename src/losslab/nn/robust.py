"""Modules and registry entries for the noise-robust family (GCE, MAE, SCE, NCE, RCE, NGCE,
Active-Passive pairs, LDR-KL and the stateful ALDR-KL)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._core.registry import Paper, register, signature_defaults
from ..functional import ldr as L
from ..functional import normalized as N
from ..functional import robust as F
from ._factory import LogitLoss, logit_loss_module

_GCE_PAPER = Paper(
    "Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels",
    2018, authors="Zhang, Sabuncu", arxiv="1805.07836",
)
_MAE_PAPER = Paper(
    "Robust Loss Functions under Label Noise for Deep Neural Networks",
    2017, authors="Ghosh, Kumar, Sastry", arxiv="1712.09482",
)
_SCE_PAPER = Paper(
    "Symmetric Cross Entropy for Robust Learning with Noisy Labels",
    2019, authors="Wang, Ma, Chen, Luo, Yi, Bailey", arxiv="1908.06112",
)
_APL_PAPER = Paper(
    "Normalized Loss Functions for Deep Learning with Noisy Labels",
    2020, authors="Ma, Huang, Wang, Romano, Erfani, Bailey", arxiv="2006.13554",
)
_LDR_PAPER = Paper(
    "Label Distributionally Robust Losses for Multi-class Classification: Consistency, "
    "Robustness and Adaptivity",
    2023, authors="Zhu, Ying, Yang", arxiv="2112.14869",
)

GeneralizedCrossEntropy = logit_loss_module(
    "GeneralizedCrossEntropy", F.generalized_cross_entropy, F._check_generalized_cross_entropy
)
MeanAbsoluteError = logit_loss_module("MeanAbsoluteError", F.mean_absolute_error)
ReverseCrossEntropy = logit_loss_module(
    "ReverseCrossEntropy", F.reverse_cross_entropy, F._check_reverse_cross_entropy
)
SymmetricCrossEntropy = logit_loss_module(
    "SymmetricCrossEntropy", F.symmetric_cross_entropy, F._check_symmetric_cross_entropy
)
NormalizedCrossEntropy = logit_loss_module(
    "NormalizedCrossEntropy", N.normalized_cross_entropy
)
NormalizedGeneralizedCrossEntropy = logit_loss_module(
    "NormalizedGeneralizedCrossEntropy",
    N.normalized_generalized_cross_entropy,
    N._check_normalized_generalized_cross_entropy,
)
ActivePassive = logit_loss_module("ActivePassive", N.active_passive, N._check_active_passive)
LDRKL = logit_loss_module("LDRKL", L.ldr_kl, L._check_ldr_kl)
NCEandMAE = logit_loss_module("NCEandMAE", N.nce_and_mae, N._check_nce_and_mae)

# aldr_kl's per-call keyword arguments: the module supplies them, they are not hyperparameters.
_ALDR_CALL_ARGS = ("sample_ids", "lam_state", "update_state")
_ALDR_DEFAULTS = {
    k: v for k, v in signature_defaults(L.aldr_kl).items() if k not in _ALDR_CALL_ARGS
}


def _check_aldr_hyperparameters(**hyperparameters: Any) -> None:
    L._check_aldr_kl(**{k: v for k, v in hyperparameters.items() if k not in _ALDR_CALL_ARGS})


class ALDRKL(LogitLoss):
    """ALDR-KL with the per-sample λ state of the official algorithm.

    Call ``loss(input, target, sample_ids)``: ``sample_ids`` (integer, the target's shape) name
    each sample in the dataset. Each call computes every sample's λ from its stored value
    (λ₀ at the first visit), uses it in the loss, and — in training mode — stores it for the
    next visit. ``.eval()`` freezes the stored λ. Without ``sample_ids`` the call is the
    stateless first-visit loss :func:`losslab.functional.aldr_kl`, so generic callers work.

    Args:
        num_samples: dataset size N; the state is a buffer ``lam`` of N values initialised to
            λ₀ and ids must lie in [0, N). ``None`` grows the buffer as larger ids appear.
        lam0, alpha, margin, normalize: as in :func:`losslab.functional.aldr_kl`.
        weight, ignore_index, reduction: as in :func:`losslab.functional.cross_entropy`.

    Example:
        >>> import torch, losslab
        >>> loss = losslab.nn.ALDRKL(num_samples=100, lam0=1.0)
        >>> z, y = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([0])
        >>> round(loss(z, y, torch.tensor([7])).item(), 6), round(loss.lam[7].item(), 6)
        (-0.640523, 0.878847)
    """

    function = staticmethod(L.aldr_kl)
    check = staticmethod(_check_aldr_hyperparameters)
    lam: Tensor

    def __init__(
        self,
        *,
        num_samples: int | None = None,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        **hyperparameters: Any,
    ) -> None:
        per_call = sorted(set(hyperparameters) & set(_ALDR_CALL_ARGS))
        if per_call:
            raise TypeError(f"ALDRKL: {', '.join(per_call)} is passed per call (forward), "
                            f"not at construction; hyperparameters: {', '.join(_ALDR_DEFAULTS)}")
        super().__init__(
            weight=weight, ignore_index=ignore_index, reduction=reduction, **hyperparameters
        )
        for name in _ALDR_CALL_ARGS:
            self.hyperparameters.pop(name, None)
        if num_samples is not None:
            if isinstance(num_samples, bool) or not isinstance(num_samples, int):
                raise TypeError(f"ALDRKL: num_samples must be an int or None, "
                                f"got {type(num_samples).__name__}")
            if num_samples < 1:
                raise ValueError(f"ALDRKL: num_samples must be positive, got {num_samples}")
        self.num_samples = num_samples
        lam0 = float(self.hyperparameters["lam0"])
        self.register_buffer("lam", torch.full((num_samples or 0,), lam0))

    def _grow_for(self, ids: Tensor) -> None:
        """With ``num_samples=None``, extend the λ buffer (at λ₀) to cover the largest id.

        ``ids`` are already validated (integer, the target's shape, ≥ 0), so a malformed call
        fails before any memory is allocated."""
        if ids.numel() == 0:
            return
        if torch.compiler.is_compiling() or ids.is_meta:
            raise ValueError("ALDRKL: the λ state cannot grow under torch.compile or on meta "
                             "tensors (the largest sample id is a value); construct the loss "
                             "with num_samples=N")
        high = int(ids.max())
        if high >= self.lam.shape[0]:
            grown = torch.full((high + 1,), float(self.hyperparameters["lam0"]),
                               dtype=self.lam.dtype, device=self.lam.device)
            grown[: self.lam.shape[0]] = self.lam
            self.lam = grown

    # Narrower than LogitLoss.forward(**extras) on purpose: sample_ids is its only extra input.
    def forward(  # type: ignore[override]
        self, input: Tensor, target: Tensor, sample_ids: Tensor | None = None
    ) -> Tensor:
        if sample_ids is None:
            return super().forward(input, target)
        if self.num_samples is None:
            self._grow_for(
                L.check_state_inputs("aldr_kl", input, target, self.ignore_index, sample_ids)
            )
        return L.aldr_kl(
            input, target, sample_ids=sample_ids, lam_state=self.lam,
            update_state=self.training, weight=self.weight,
            ignore_index=self.ignore_index, reduction=self.reduction, **self.hyperparameters,
        )

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A grown buffer (num_samples=None) may be longer than this module's; adopt its size.
        saved = state_dict.get(prefix + "lam")
        if self.num_samples is None and isinstance(saved, Tensor):
            self.lam = torch.empty_like(saved, device=self.lam.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_samples={self.num_samples}"


register("gce", family="robust", paper=_GCE_PAPER, function=F.generalized_cross_entropy,
         module=GeneralizedCrossEntropy,
         invalid_hyperparameters=({"q": 0.0}, {"q": 1.5}, {"q": -0.3}, {"truncate_k": 1.0},
                                  {"truncate_k": 0.0}))
register("mae", family="robust", paper=_MAE_PAPER, function=F.mean_absolute_error,
         module=MeanAbsoluteError)
register("sce", family="robust", paper=_SCE_PAPER, function=F.symmetric_cross_entropy,
         module=SymmetricCrossEntropy,
         invalid_hyperparameters=({"alpha": -0.1}, {"beta": -1.0}, {"log_zero": 0.0},
                                  {"log_zero": 4.0}))
register("rce", family="robust", paper=_SCE_PAPER, function=F.reverse_cross_entropy,
         module=ReverseCrossEntropy, invalid_hyperparameters=({"log_zero": 0.0},))
register("nce", family="robust", paper=_APL_PAPER, function=N.normalized_cross_entropy,
         module=NormalizedCrossEntropy)
register("ngce", family="robust", paper=_APL_PAPER,
         function=N.normalized_generalized_cross_entropy,
         module=NormalizedGeneralizedCrossEntropy,
         invalid_hyperparameters=({"q": 0.0}, {"q": 2.0}))
_APL_INVALID = ({"alpha": -1.0}, {"beta": -1.0}, {"active": "ce"}, {"passive": "nce"},
                {"q": 0.0}, {"log_zero": 1.0})
register("nce+rce", family="robust", paper=_APL_PAPER, function=N.active_passive,
         module=ActivePassive, invalid_hyperparameters=_APL_INVALID)
register("nce+mae", family="robust", paper=_APL_PAPER, function=N.nce_and_mae,
         module=NCEandMAE, invalid_hyperparameters=({"alpha": -1.0}, {"beta": -0.5}))
register("ldr-kl", family="robust", paper=_LDR_PAPER, function=L.ldr_kl, module=LDRKL,
         invalid_hyperparameters=({"lam": 0.0}, {"lam": -1.0}, {"margin": -0.1},
                                  {"normalize": "softmax"}))
register("aldr-kl", family="robust", paper=_LDR_PAPER, function=L.aldr_kl, module=ALDRKL,
         extra_inputs=("sample_ids",), defaults=_ALDR_DEFAULTS,
         invalid_hyperparameters=({"lam0": 0.0}, {"alpha": 1.0}, {"alpha": 0.5},
                                  {"margin": -1.0}, {"normalize": "softmax"}))
