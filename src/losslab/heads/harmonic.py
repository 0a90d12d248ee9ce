r"""Harmonic (distance-based) classification heads and the harmonic loss.

The head keeps one centre :math:`w_c` per class and turns distances into probabilities with
HarMax, :math:`p_c = d_c^{-n} / \sum_k d_k^{-n}`, :math:`d_c = D(x, w_c)`; the harmonic loss is
:math:`-\log p_y`. In log space HarMax is a softmax over the logits :math:`-n\log d_c`, so the
head returns those logits and any cross-entropy on them is the harmonic loss; large ``n`` cannot
overflow. ``D`` is any metric of :func:`losslab.functional.pairwise_distance`, including a learnable
Mahalanobis matrix.

Conventions of the official code (grow-crystals ``DistLayer``), each an option:

* ``squared=True``: use :math:`d^2` (the code's ``n`` is twice the paper's);
* ``eps``: added to the distance before the power (code: 1e-4 on the squared distance);
* ``min_normalize=True``: divide each row by its minimum distance before the power. HarMax is
  scale-invariant, so probabilities and the loss are unchanged; the logits shift by a per-row
  constant (the max logit becomes 0).

Example (distances (1, 2, 4), target 0):
    >>> import torch
    >>> d = torch.tensor([[1.0, 2.0, 4.0]])
    >>> round(harmonic_loss(d, torch.tensor([0]), n=1.0, eps=0.0).item(), 6)
    0.559616

References: Baek, Liu, Tyagi, Tegmark, *Harmonic Loss Trains Interpretable AI Models*, 2025
(arXiv 2502.01628); Miller-Golub et al., *Rethinking the harmonic loss via non-Euclidean
distance layers*, 2026 (arXiv 2603.10225).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._core.logit_loss import logit_loss
from .._core.validation import check_choice, check_number, check_tensor
from ..functional._core.distances import DISTANCES, check_psd_matrix, compute_dtype, distance_matrix


def _check_harmonic(*, n: float, eps: float) -> None:
    check_number("harmonic_loss", "n", n, low=0.0, low_open=True)
    check_number("harmonic_loss", "eps", eps, low=0.0)


def harmonic_logits(
    distances: Tensor, *, n: float = 1.0, eps: float = 1e-4, min_normalize: bool = False
) -> Tensor:
    r"""Logits :math:`-n\log(d + \varepsilon)` whose softmax is HarMax over ``distances`` (N, C).

    ``min_normalize`` divides each row by its smallest ``d + ε`` first (the official code's
    overflow guard; a per-row shift of the logits). ``d + ε`` is floored at the dtype's
    smallest normal number so that a zero distance with ``eps=0`` stays finite.
    """
    _check_harmonic(n=n, eps=eps)
    shifted = (distances + eps).clamp_min(torch.finfo(distances.dtype).tiny)
    if min_normalize:
        shifted = shifted / shifted.amin(dim=-1, keepdim=True)
    return -n * torch.log(shifted)


def harmonic_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    n: float = 1.0,
    eps: float = 1e-4,
    min_normalize: bool = False,
) -> Tensor:
    r"""Harmonic loss on non-negative distances: :math:`-\log\big(d_y^{-n} / \sum_c d_c^{-n}\big)`.

    Args:
        input: distances (N, C) or (N, C, d1, ...) to the class centres, ``>= 0``.
        target: class indices like ``F.cross_entropy``; ``weight``, ``ignore_index`` and
            ``reduction`` follow the library's conventions.
        n: harmonic exponent (> 0); eps: added to every distance (>= 0).

    Gradient: :math:`\partial L/\partial\log d_k = n(\delta_{ky} - p_k)`.

    Example (distances (1, 2, 4), target 0; n = 1, then n = 2):
        >>> import torch
        >>> d, y = torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([0])
        >>> round(harmonic_loss(d, y, eps=0.0).item(), 6)
        0.559616
        >>> round(harmonic_loss(d, y, n=2.0, eps=0.0).item(), 6)
        0.271934
    """
    _check_harmonic(n=n, eps=eps)
    check_tensor("harmonic_loss", "input", input)
    if input.is_floating_point() and bool((input < 0).any()):
        raise ValueError("harmonic_loss: input must hold non-negative distances, got a negative entry")

    def rows(d: Tensor, y: Tensor) -> Tensor:
        logits = harmonic_logits(d, n=n, eps=eps, min_normalize=min_normalize)
        return torch.logsumexp(logits, dim=1) - logits.gather(1, y.unsqueeze(1)).squeeze(1)

    return logit_loss(
        "harmonic_loss", input, target, weight=weight, ignore_index=ignore_index,
        reduction=reduction, rows=rows,
    )


class HarmonicHead(nn.Module):
    """Distance head: logits ``-n·log(D(x, w_c) + eps)`` for C learnable class centres.

    Train with ``cross_entropy(head(x), y)`` (equal to the harmonic loss). ``head.probabilities``
    gives HarMax probabilities; ``head.distances`` the (N, C) distances.

    Args:
        in_features: D; num_classes: C.
        distance: any name in :data:`losslab.heads.DISTANCES`.
        n: harmonic exponent; eps: added to the distance; squared: use ``D²``;
        min_normalize: the official code's row-minimum normalisation.
        p: Minkowski order.
        mahalanobis: ``"cholesky"`` (learn ``L``, ``P = L Lᵀ``, starts at the identity),
            ``"diagonal"`` (learn ``log diag P``) or ``"fixed"`` (use the given ``matrix``).
        matrix: (D, D) positive semi-definite matrix for ``mahalanobis="fixed"``.

    Example:
        >>> import torch
        >>> head = HarmonicHead(4, 3, distance="cosine", n=2.0)
        >>> head(torch.randn(5, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        distance: str = "euclidean",
        n: float = 1.0,
        eps: float = 1e-4,
        squared: bool = False,
        min_normalize: bool = False,
        p: float = 2.0,
        mahalanobis: str = "cholesky",
        matrix: Tensor | None = None,
    ) -> None:
        super().__init__()
        fn = "HarmonicHead"
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{fn}: {name} must be a positive int, got {value!r}")
        self.distance = check_choice(fn, "distance", distance, DISTANCES)
        self.n = check_number(fn, "n", n, low=0.0, low_open=True)
        self.eps = check_number(fn, "eps", eps, low=0.0)
        self.p = check_number(fn, "p", p, low=1.0)
        self.squared = bool(squared)
        self.min_normalize = bool(min_normalize)
        self.mahalanobis = check_choice(fn, "mahalanobis", mahalanobis, ("cholesky", "diagonal", "fixed"))
        self.weight = nn.Parameter(torch.randn(num_classes, in_features) / in_features**0.5)
        self.cholesky: nn.Parameter | None = None
        self.log_diagonal: nn.Parameter | None = None
        self.register_buffer("matrix", None)
        if self.distance == "mahalanobis":
            if self.mahalanobis == "fixed":
                if matrix is None:
                    raise ValueError(f"{fn}: mahalanobis='fixed' needs matrix of shape (D, D)")
                m = check_tensor(fn, "matrix", matrix)
                if m.shape != (in_features, in_features):
                    raise ValueError(
                        f"{fn}: matrix must have shape ({in_features}, {in_features}), got {tuple(m.shape)}"
                    )
                check_psd_matrix(fn, m)
                self.register_buffer("matrix", m.detach().clone())
            elif self.mahalanobis == "cholesky":
                self.cholesky = nn.Parameter(torch.eye(in_features))
            else:
                self.log_diagonal = nn.Parameter(torch.zeros(in_features))

    def metric_matrix(self) -> Tensor | None:
        """The Mahalanobis matrix P in use (``None`` for other distances)."""
        if self.cholesky is not None:
            lower = torch.tril(compute_dtype(self.cholesky))
            return lower @ lower.T
        if self.log_diagonal is not None:
            return torch.diag(compute_dtype(self.log_diagonal).exp())
        matrix = self.matrix
        return matrix if isinstance(matrix, Tensor) else None

    def distances(self, features: Tensor) -> Tensor:
        """(N, C) distances ``D(x_i, w_c)`` (squared when ``squared=True``)."""
        x = check_tensor("HarmonicHead", "features", features)
        if x.dim() != 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"HarmonicHead: features must have shape (N, {self.weight.shape[1]}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"HarmonicHead: features must be floating-point, got dtype {x.dtype}")
        # Half precision is computed in float32: d**n and log d overflow float16's range.
        x = compute_dtype(x)
        weight = compute_dtype(self.weight).to(x.dtype)
        matrix = self.metric_matrix()
        if matrix is not None:
            matrix = compute_dtype(matrix).to(x.dtype)
        # The squared Euclidean distance is computed directly (no sqrt then square).
        direct = self.squared and self.distance == "euclidean"
        d = distance_matrix(
            x, weight, "sqeuclidean" if direct else self.distance, p=self.p, matrix=matrix
        )
        return d.square() if self.squared and not direct else d

    def forward(self, features: Tensor) -> Tensor:
        """(N, C) logits ``-n·log(d + eps)``; float32 for float16/bfloat16 features."""
        return harmonic_logits(
            self.distances(features), n=self.n, eps=self.eps, min_normalize=self.min_normalize
        )

    def probabilities(self, features: Tensor) -> Tensor:
        """HarMax probabilities (N, C)."""
        return torch.softmax(self(features), dim=1)

    def extra_repr(self) -> str:
        c, d = self.weight.shape
        return (
            f"in_features={d}, num_classes={c}, distance={self.distance!r}, n={self.n:g}, "
            f"eps={self.eps:g}, squared={self.squared}, min_normalize={self.min_normalize}"
        )
