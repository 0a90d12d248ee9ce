r"""Angular-margin heads for face recognition: ArcFace, CosFace, and UNPG on top of either.

A head maps features (N, D) to logits (N, C); train it with cross-entropy on those logits.
Cosines are :math:`c_{ij} = \langle \hat x_i, \hat w_j\rangle` between L2-normalised features and
class weights; during training the target column gets a margin:

* ArcFace: :math:`s\cos(\theta_y + m)`, or :math:`s(\cos\theta_y - m\sin m)` once
  :math:`\theta_y > \pi - m` (keeps the logit monotone in θ, as insightface and
  pytorch-metric-learning do). Defaults s = 64, m = 0.5 rad.
* CosFace: :math:`s(\cos\theta_y - m)`. Defaults s = 64, m = 0.35.
* UNPG appends the in-batch negative feature-feature cosines
  :math:`\{\langle\hat x_i,\hat x_k\rangle : i<k,\ y_i\ne y_k\}`, filtered by the box-and-whisker
  rule, as extra negative columns of every row, so one cross-entropy covers sample-to-proxy
  and sample-to-sample negatives.

:math:`\cos(\theta+m)` is computed as :math:`c\cos m - \sqrt{1-c^2}\sin m` with a square root
whose gradient stays finite at :math:`c = \pm 1` (``arccos`` has an infinite one there).

References: Deng et al., *ArcFace*, CVPR 2019 (arXiv 1801.07698); Wang et al., *CosFace*,
CVPR 2018 (arXiv 1801.09414); Jung et al., *Unified Negative Pair Generation toward
Well-discriminative Feature Space for Face Recognition*, BMVC 2022 (arXiv 2203.11593).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

from .._core.validation import check_number, check_tensor
from ..functional._core.distances import safe_sqrt


def _target_mask(cosine: Tensor, target: Tensor) -> Tensor:
    return TF.one_hot(target.long(), cosine.shape[1]).to(torch.bool)


def arcface_margin(cosine: Tensor, target: Tensor, *, margin: float = 0.5) -> Tensor:
    r"""Replace each row's target cosine :math:`c_y` by :math:`\cos(\theta_y+m)` (ArcFace).

    Past :math:`\theta_y > \pi - m` it uses :math:`c_y - m\sin m` instead. Returns unscaled
    (N, C) cosines; multiply by the scale for logits.

    Example (cosines [[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]], targets [0, 1]):
        >>> import torch
        >>> c = torch.tensor([[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]], dtype=torch.float64)
        >>> arcface_margin(c, torch.tensor([0, 1]))[:, :2].diagonal().round(decimals=6)
        tensor([0.4144, 0.0236], dtype=torch.float64)
    """
    check_number("arcface_margin", "margin", margin, low=0.0, high=math.pi / 2)
    c = cosine.clamp(-1.0, 1.0)
    sine = safe_sqrt(1.0 - c * c)
    shifted = c * math.cos(margin) - sine * math.sin(margin)
    monotone = torch.where(c >= math.cos(math.pi - margin), shifted, c - margin * math.sin(margin))
    return torch.where(_target_mask(cosine, target), monotone, cosine)


def cosface_margin(cosine: Tensor, target: Tensor, *, margin: float = 0.35) -> Tensor:
    """Subtract the additive cosine margin ``m`` from each row's target cosine (CosFace)."""
    check_number("cosface_margin", "margin", margin, low=0.0)
    return cosine - margin * _target_mask(cosine, target).to(cosine.dtype)


def box_and_whisker(values: Tensor, *, whisker: float = 1.5) -> Tensor:
    """Keep the entries of a 1-D tensor within ``[Q1 - w·IQR, Q3 + w·IQR]``.

    Quartiles are order statistics, ``Q1 = sorted[floor(l/4)]``, ``Q3 = sorted[floor(3l/4)]``,
    as in the UNPG code; the kept values are returned sorted.
    """
    check_number("box_and_whisker", "whisker", whisker, low=0.0)
    if values.numel() == 0:
        return values
    ordered, _ = torch.sort(values)
    count = ordered.shape[0]
    q1, q3 = ordered[int(0.25 * count)].detach(), ordered[int(0.75 * count)].detach()
    spread = q3 - q1
    keep = (ordered >= q1 - whisker * spread) & (ordered <= q3 + whisker * spread)
    return ordered[keep]


def unpg_negatives(features: Tensor, target: Tensor, *, whisker: float = 1.5) -> Tensor:
    """The filtered negative pair cosines ``S'_n`` of a batch (upper triangle, ``y_i != y_k``)."""
    unit = TF.normalize(features, dim=1)
    sim = unit @ unit.T
    upper = torch.triu(torch.ones_like(sim, dtype=torch.bool), diagonal=1)
    different = target.unsqueeze(1) != target.unsqueeze(0)
    return box_and_whisker(sim[upper & different], whisker=whisker)


class _CosineHead(nn.Module):
    """A (C, D) class-weight matrix and the cosines between features and its rows."""

    fn = "_CosineHead"

    def __init__(self, in_features: int, num_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.fn}: {name} must be a positive int, got {value!r}")
        self.scale = check_number(self.fn, "scale", scale, low=0.0, low_open=True)
        self.margin = margin
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, features: Tensor) -> Tensor:
        x = check_tensor(self.fn, "features", features)
        if x.dim() != 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"{self.fn}: features must have shape (N, {self.weight.shape[1]}), "
                f"got {tuple(x.shape)}"
            )
        return TF.normalize(x, dim=1) @ TF.normalize(self.weight, dim=1).T.to(x.dtype)

    def apply_margin(self, cosine: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, features: Tensor, target: Tensor | None = None) -> Tensor:
        """Logits (N, C): ``s·cos`` with the margin on the target column when ``target`` is
        given (training); plain ``s·cos`` without it (inference)."""
        cosine = self.cosine(features)
        if target is not None:
            t = check_tensor(self.fn, "target", target)
            if t.shape != (cosine.shape[0],) or t.is_floating_point():
                raise ValueError(
                    f"{self.fn}: target must be (N,) class indices with N={cosine.shape[0]}, "
                    f"got shape {tuple(t.shape)} and dtype {t.dtype}"
                )
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= cosine.shape[1]):
                raise ValueError(
                    f"{self.fn}: target classes must lie in [0, {cosine.shape[1] - 1}], "
                    f"got range [{int(t.min())}, {int(t.max())}]"
                )
            cosine = self.apply_margin(cosine, t)
        return self.scale * cosine

    def extra_repr(self) -> str:
        c, d = self.weight.shape
        return f"in_features={d}, num_classes={c}, scale={self.scale:g}, margin={self.margin:g}"


class ArcFaceHead(_CosineHead):
    """ArcFace head: logits ``s·cos(θ_y + m)`` for the target, ``s·cos θ_j`` otherwise.

    Example:
        >>> import torch
        >>> head = ArcFaceHead(4, 3)  # scale=64, margin=0.5
        >>> head(torch.randn(2, 4), torch.tensor([0, 2])).shape
        torch.Size([2, 3])
    """

    fn = "ArcFaceHead"

    def __init__(
        self, in_features: int, num_classes: int, *, scale: float = 64.0, margin: float = 0.5
    ) -> None:
        check_number(self.fn, "margin", margin, low=0.0, high=math.pi / 2)
        super().__init__(in_features, num_classes, scale, margin)

    def apply_margin(self, cosine: Tensor, target: Tensor) -> Tensor:
        return arcface_margin(cosine, target, margin=self.margin)


class CosFaceHead(_CosineHead):
    """CosFace (LMCL) head: logits ``s·(cos θ_y - m)`` for the target, ``s·cos θ_j`` otherwise.

    Example (cosines [[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]], targets [0, 1], s = 64,
    m = 0.35; unit features whose first three coordinates are those cosines, class weights
    the first three axes):
        >>> import torch
        >>> import torch.nn.functional as F
        >>> head = CosFaceHead(4, 3).double()
        >>> _ = head.weight.data.copy_(torch.eye(3, 4))
        >>> cos = torch.tensor([[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]], dtype=torch.float64)
        >>> x = torch.cat([cos, (1 - cos.square().sum(1, keepdim=True)).sqrt()], 1)
        >>> y = torch.tensor([0, 1])
        >>> round(F.cross_entropy(head(x, y), y).item(), 6)
        8.000035
    """

    fn = "CosFaceHead"

    def __init__(
        self, in_features: int, num_classes: int, *, scale: float = 64.0, margin: float = 0.35
    ) -> None:
        check_number(self.fn, "margin", margin, low=0.0)
        super().__init__(in_features, num_classes, scale, margin)

    def apply_margin(self, cosine: Tensor, target: Tensor) -> Tensor:
        return cosface_margin(cosine, target, margin=self.margin)


class UNPGHead(nn.Module):
    """UNPG on top of a margin head: appends ``s·S'_n`` (filtered in-batch negative cosines) to
    every row of the head's logits. Train with ``cross_entropy(head(x, y), y)``; the extra
    columns are never targets. Gradients flow through both features of each negative pair.

    Args:
        head: an :class:`ArcFaceHead` or :class:`CosFaceHead` (its scale is reused).
        whisker: box-and-whisker factor ``w`` (default 1.5, the repo's setting).

    Example (the batch above under ArcFace, whose loss alone is 12.045241; the one negative
    pair cosine, 0.27 + sqrt(0.26 · 0.55) = 0.648153, becomes a fourth column of both rows):
        >>> import torch
        >>> import torch.nn.functional as F
        >>> arcface = ArcFaceHead(4, 3).double()
        >>> _ = arcface.weight.data.copy_(torch.eye(3, 4))
        >>> cos = torch.tensor([[0.8, 0.3, -0.1], [0.2, 0.5, 0.4]], dtype=torch.float64)
        >>> x = torch.cat([cos, (1 - cos.square().sum(1, keepdim=True)).sqrt()], 1)
        >>> y = torch.tensor([0, 1])
        >>> round(F.cross_entropy(arcface(x, y), y).item(), 6)
        12.045241
        >>> logits = UNPGHead(arcface)(x, y)
        >>> round(logits[0, 3].item() / 64, 6), round(F.cross_entropy(logits, y).item(), 6)
        (0.648153, 27.465584)
    """

    def __init__(self, head: _CosineHead, *, whisker: float = 1.5) -> None:
        super().__init__()
        if not isinstance(head, _CosineHead):
            raise TypeError(
                f"UNPGHead: head must be an ArcFaceHead or CosFaceHead, got {type(head).__name__}"
            )
        self.head = head
        self.whisker = check_number("UNPGHead", "whisker", whisker, low=0.0)

    def forward(self, features: Tensor, target: Tensor | None = None) -> Tensor:
        logits: Tensor = self.head(features, target)
        if target is None:
            return logits
        negatives = unpg_negatives(features, target, whisker=self.whisker).to(logits.dtype)
        extra = (self.head.scale * negatives).unsqueeze(0).expand(logits.shape[0], -1)
        return torch.cat([logits, extra], dim=1)
