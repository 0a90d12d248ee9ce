r"""Analytic (closed-form ridge) classifier with an exact recursive update, as in G-ACIL
(Zhuang et al. 2024, arXiv 2403.15706; ACIL, NeurIPS 2022).

On features X (n, d) — optionally expanded by a frozen random "buffer" layer with ReLU — and
one-hot labels Y (n, C), the joint ridge solution over everything seen so far is

.. math:: W = \Big(\sum_t X_t^\top X_t + \gamma I\Big)^{-1} \sum_t X_t^\top Y_t.

The recursive form keeps R = (Σ XᵀX + γI)^{-1} (R₀ = I/γ, W₀ = 0 with no columns) and for each
new batch, by the Woodbury identity,

.. math:: K = (I_b + X R X^\top)^{-1},\quad R \leftarrow R - R X^\top K X R,\quad
          W \leftarrow W + R X^\top (Y - X W).

Classes never seen before get zero columns appended to W first (generalised class-incremental
learning: classes may appear, vanish and re-appear). The recursion equals the joint solution
exactly (tested to 1e-10 in float64); R and W are always kept in float64.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._core.validation import check_number


class AnalyticClassifier(nn.Module):
    """Closed-form ridge head; ``forward(x)`` returns logits (n, C_seen).

    Args:
        in_features: feature dimension of the frozen backbone.
        gamma: ridge strength γ (G-ACIL default 0.1).
        buffer_size: width of the frozen random expansion Linear(in, buffer) + ReLU
            (G-ACIL uses 8192); ``None`` uses the features directly.
        seed: seed of the random buffer.

    Example: X = [[1,0],[0,1],[1,1]], labels [0, 1, 0], γ = 0.1 →
        W = [[0.938416, −0.293255], [0.029326, 0.615836]].
    """

    R: Tensor
    W: Tensor

    def __init__(self, in_features: int, *, gamma: float = 0.1, buffer_size: int | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        fn = "AnalyticClassifier"
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"{fn}: in_features must be a positive int, got {in_features!r}")
        self.gamma = check_number(fn, "gamma", gamma, low=0.0, low_open=True)
        self.buffer: nn.Module | None = None
        dim = in_features
        if buffer_size is not None:
            if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
                raise ValueError(f"{fn}: buffer_size must be a positive int or None, got "
                                 f"{buffer_size!r}")
            gen_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            layer = nn.Linear(in_features, buffer_size).double()  # PyTorch default init
            torch.random.set_rng_state(gen_state)
            layer.requires_grad_(False)
            self.buffer = nn.Sequential(layer, nn.ReLU())
            dim = buffer_size
        self.in_features = in_features
        self.expanded_features = dim
        self.register_buffer("R", torch.eye(dim, dtype=torch.float64) / self.gamma)
        self.register_buffer("W", torch.zeros(dim, 0, dtype=torch.float64))
        self.seen = 0

    @property
    def num_classes(self) -> int:
        return int(self.W.shape[1])

    def expand(self, x: Tensor) -> Tensor:
        """Features in float64 after the optional random buffer."""
        x = x.detach().to(torch.float64)
        return self.buffer(x) if self.buffer is not None else x

    def _targets(self, fn: str, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{fn}: features must have shape (n, {self.in_features}), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if (not isinstance(labels, Tensor) or labels.is_floating_point()
                or labels.shape != (x.shape[0],)):
            raise ValueError(f"{fn}: labels must be integer class indices of shape "
                             f"({x.shape[0]},)")
        if x.shape[0] == 0:
            raise ValueError(f"{fn}: features is empty (n=0); pass at least one sample")
        if not bool(torch.isfinite(x).all()):  # one NaN would poison R and W for good
            raise ValueError(f"{fn}: features must be finite, got NaN or inf entries")
        if int(labels.min()) < 0:
            raise ValueError(f"{fn}: labels must be non-negative, got {int(labels.min())}")
        feats = self.expand(x)
        top = int(labels.max()) + 1
        if top > self.num_classes:  # new classes: zero columns, as in generalised CIL
            pad = torch.zeros(self.W.shape[0], top - self.num_classes, dtype=torch.float64,
                              device=self.W.device)
            self.W = torch.cat([self.W, pad], dim=1)
        y = torch.nn.functional.one_hot(labels.long(), self.num_classes).to(torch.float64)
        return feats, y

    @torch.no_grad()
    def update(self, x: Tensor, labels: Tensor) -> AnalyticClassifier:
        """Absorb one batch by the recursive (Woodbury) update; returns ``self``."""
        feats, y = self._targets("AnalyticClassifier.update", x, labels)
        r_xt = self.R @ feats.T
        k = torch.linalg.inv(torch.eye(feats.shape[0], dtype=torch.float64,
                                       device=feats.device) + feats @ r_xt)
        self.R = self.R - r_xt @ k @ r_xt.T
        self.W = self.W + self.R @ feats.T @ (y - feats @ self.W)
        self.seen += feats.shape[0]
        return self

    @torch.no_grad()
    def fit(self, x: Tensor, labels: Tensor) -> AnalyticClassifier:
        """Joint ridge solution on (x, labels) alone, resetting earlier data; returns ``self``."""
        previous, self.W = self.W, self.W[:, :0]
        try:
            feats, y = self._targets("AnalyticClassifier.fit", x, labels)
        except (TypeError, ValueError):
            self.W = previous  # rejected input leaves the fitted classifier untouched
            raise
        eye = torch.eye(feats.shape[1], dtype=torch.float64, device=feats.device)
        regularised = feats.T @ feats + self.gamma * eye
        self.W = torch.linalg.solve(regularised, feats.T @ y)
        self.R = torch.linalg.inv(regularised)
        self.seen = feats.shape[0]
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.num_classes == 0:
            raise ValueError("AnalyticClassifier.forward: the classifier has seen no labels; "
                             "call fit(x, labels) or update(x, labels) first")
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"AnalyticClassifier.forward: x must have shape (n, "
                             f"{self.in_features}), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        logits = self.expand(x) @ self.W
        return logits.to(x.dtype) if x.is_floating_point() else logits
