r"""Correctness-aware post-hoc calibrator (Liu, Wang, Zou, Zou, Zheng, "Beyond Calibration:
Correctness-aware post-hoc calibration", arXiv 2404.13016; official code
liuyvchi/Correctness-aware-calibration).

A small network predicts a per-sample temperature from how the frozen classifier reacts to
transformed views of the input (rotation, greyscale, colour jitter, ...):

* features g_i: the softmax probabilities of each of V views at the original view's top-k
  classes (V = 3, k = 4 → 12 numbers);
* T_i = clamp(MLP(g_i), 0.1, 10), MLP = Linear(V·k → 5) → ReLU → Linear(5 → 1);
* calibrated logits z_i / T_i — the argmax, hence the accuracy, is unchanged;
* trained on a held-out set with the ``ca-calib`` objective
  (:func:`losslab.functional.ca_calib`): accuracy-balanced (confidence − correctness)², which
  raises confidence on samples the classifier gets right and lowers it on those it gets wrong.

Defaults follow the official code (Adam, lr 1e-4, batch 1000, 10 epochs); small validation
sets usually need a larger learning rate or more epochs. One deliberate difference: the last
layer starts at T = 1 (zero weights, bias 1) instead of PyTorch's random init, whose output often
lies below the clamp and then receives no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def view_features(logits: Tensor, view_logits: Sequence[Tensor], *, top_k: int = 4) -> Tensor:
    """(N, V·k): each view's softmax probabilities at the original logits' top-k classes."""
    fn = "view_features"
    if logits.dim() != 2:
        raise ValueError(f"{fn}: logits must have shape (N, C), got {tuple(logits.shape)}")
    if not 1 <= top_k <= logits.shape[1]:
        raise ValueError(f"{fn}: top_k must lie in [1, {logits.shape[1]}], got {top_k}")
    if not view_logits or any(v.shape != logits.shape for v in view_logits):
        raise ValueError(f"{fn}: view_logits must be a non-empty list of tensors shaped like "
                         f"logits {tuple(logits.shape)}")
    top = logits.topk(top_k, dim=1).indices
    return torch.cat([v.softmax(1).gather(1, top) for v in view_logits], dim=1)


class CorrectnessAwareCalibrator(nn.Module):
    """Per-sample temperature head; ``forward(logits, view_logits)`` returns z / T."""

    def __init__(self, *, num_views: int = 3, top_k: int = 4, hidden: int = 5,
                 t_min: float = 0.1, t_max: float = 10.0) -> None:
        super().__init__()
        if not 0 < t_min < t_max:
            raise ValueError(f"CorrectnessAwareCalibrator: need 0 < t_min < t_max, got "
                             f"{t_min}, {t_max}")
        self.top_k = top_k
        self.num_views = num_views
        self.t_min, self.t_max = t_min, t_max
        first, last = nn.Linear(num_views * top_k, hidden), nn.Linear(hidden, 1)
        self.net = nn.Sequential(first, nn.ReLU(), last)
        # start as the identity calibrator (T = 1): with PyTorch's default init the output is
        # often below t_min, where the clamp passes no gradient and training never starts
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(1.0)

    def temperature(self, logits: Tensor, view_logits: Sequence[Tensor]) -> Tensor:
        """(N,) temperatures clamped to [t_min, t_max]."""
        if len(view_logits) != self.num_views:
            raise ValueError(f"CorrectnessAwareCalibrator: expected {self.num_views} views, got "
                             f"{len(view_logits)}")
        g = view_features(logits, view_logits, top_k=self.top_k)
        t: Tensor = self.net(g.to(next(self.net.parameters()).dtype)).squeeze(1)
        return t.clamp(self.t_min, self.t_max)

    def forward(self, logits: Tensor, view_logits: Sequence[Tensor]) -> Tensor:
        t = self.temperature(logits, view_logits)
        return logits / t.unsqueeze(1).to(logits.dtype)

    def fit(self, logits: Tensor, view_logits: Sequence[Tensor], labels: Tensor, *,
            epochs: int = 10, lr: float = 1e-4, batch_size: int = 1000,
            seed: int = 0) -> list[float]:
        """Train on held-out (logits, views, labels) with the ca-calib objective; returns the
        mean loss of every epoch."""
        from ...functional import ca_calib

        z = logits.detach()
        views = [v.detach() for v in view_logits]
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed)
        history = []
        for _ in range(epochs):
            order = torch.randperm(z.shape[0], generator=g)
            total, batches = 0.0, 0
            for start in range(0, z.shape[0], batch_size):
                idx = order[start : start + batch_size]
                loss = ca_calib(self(z[idx], [v[idx] for v in views]), labels[idx])
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                batches += 1
            history.append(total / batches)
        return history


__all__ = [
    "CorrectnessAwareCalibrator",
    "view_features",
]
