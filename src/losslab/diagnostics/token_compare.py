"""Per-token cross-entropy of two models over a corpus, and the distribution of the
differences — the measurement "Transformers Don't Need LayerNorm at Inference Time" (2025)
reports when comparing a model with its LayerNorm-free version.

Feed batches to :class:`TokenLossComparison` either as logits (``update``) or as final hidden
states plus unembedding weights (``update_hidden``, which uses the fused
:func:`losslab.linear_cross_entropy` so the (tokens, vocabulary) logits are never built).
``compute()`` returns a :class:`TokenLossSummary`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenLossSummary:
    """Summary of per-token losses ``ce_a``, ``ce_b`` and ``diff = ce_b − ce_a`` (kept tokens
    only, float64). ``mean_diff_ci`` is a normal-approximation 95 % interval of the mean
    difference (tokens treated as independent, so optimistic for long documents)."""

    ce_a: Tensor
    ce_b: Tensor
    diff: Tensor
    mean_a: float
    mean_b: float
    mean_diff: float
    mean_diff_ci: tuple[float, float]
    std_diff: float
    quantiles: dict[float, float]
    fraction_b_better: float
    tokens: int


class TokenLossComparison:
    """Accumulate per-token cross-entropies of model A and model B on the same tokens."""

    QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

    def __init__(self, *, ignore_index: int = -100) -> None:
        self.ignore_index = ignore_index
        self._a: list[Tensor] = []
        self._b: list[Tensor] = []

    def _store(self, ce_a: Tensor, ce_b: Tensor, target: Tensor) -> None:
        keep = target.reshape(-1) != self.ignore_index
        self._a.append(ce_a.detach().reshape(-1)[keep].double().cpu())
        self._b.append(ce_b.detach().reshape(-1)[keep].double().cpu())

    @torch.no_grad()
    def update(self, logits_a: Tensor, logits_b: Tensor, target: Tensor) -> None:
        """Logits (..., V) of both models for the same ``target`` (...)."""
        if logits_a.shape != logits_b.shape or logits_a.shape[:-1] != target.shape:
            raise ValueError(
                f"TokenLossComparison.update: logits_a {tuple(logits_a.shape)} and logits_b "
                f"{tuple(logits_b.shape)} must match and end in the vocabulary after target's "
                f"shape {tuple(target.shape)}")
        v = logits_a.shape[-1]
        t = target.reshape(-1)
        ce = [torch.nn.functional.cross_entropy(z.reshape(-1, v).float(), t, reduction="none",
                                                ignore_index=self.ignore_index)
              for z in (logits_a, logits_b)]
        self._store(ce[0], ce[1], t)

    @torch.no_grad()
    def update_hidden(self, hidden_a: Tensor, weight_a: Tensor, hidden_b: Tensor,
                      weight_b: Tensor, target: Tensor) -> None:
        """Final hidden states (N, H) and unembedding weights (V, H) of both models."""
        from ..fused import linear_cross_entropy

        t = target.reshape(-1)
        ce = [linear_cross_entropy(h.reshape(-1, h.shape[-1]), w, t, reduction="none",
                                   ignore_index=self.ignore_index)
              for h, w in ((hidden_a, weight_a), (hidden_b, weight_b))]
        self._store(ce[0], ce[1], t)  # type: ignore[arg-type]

    def compute(self) -> TokenLossSummary:
        if not self._a or sum(a.numel() for a in self._a) == 0:
            raise ValueError("TokenLossComparison.compute: no tokens; call update() first")
        a, b = torch.cat(self._a), torch.cat(self._b)
        diff = b - a
        n = diff.numel()
        std = float(diff.std()) if n > 1 else 0.0
        half = 1.96 * std / math.sqrt(n)
        mean = float(diff.mean())
        qs = torch.quantile(diff, torch.tensor(self.QUANTILES, dtype=torch.float64))
        return TokenLossSummary(
            a, b, diff, float(a.mean()), float(b.mean()), mean, (mean - half, mean + half), std,
            {q: float(v) for q, v in zip(self.QUANTILES, qs, strict=True)},
            float((diff < 0).double().mean()), n)


def plot_token_loss_differences(summary: TokenLossSummary, *, labels: tuple[str, str] = ("A", "B"),
                                path: str | Path | None = None) -> Any:
    """Histogram of per-token differences and a scatter of CE_B against CE_A."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    hist, scatter = fig.subplots(1, 2)
    hist.hist(summary.diff.numpy(), bins=100, color="tab:blue")
    hist.axvline(0, color="black", lw=0.8)
    hist.set_xlabel(f"CE({labels[1]}) − CE({labels[0]}) per token")
    hist.set_title(f"mean {summary.mean_diff:+.4f} nats over {summary.tokens} tokens", fontsize=9)
    hist.set_yscale("log")
    scatter.plot(summary.ce_a.numpy(), summary.ce_b.numpy(), ",", alpha=0.3)
    top = float(max(summary.ce_a.max(), summary.ce_b.max()))
    scatter.plot([0, top], [0, top], color="grey", lw=0.8)
    scatter.set_xlabel(f"CE({labels[0]})")
    scatter.set_ylabel(f"CE({labels[1]})")
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), dpi=110)
    return fig


__all__ = [
    "TokenLossComparison",
    "TokenLossSummary",
    "plot_token_loss_differences",
]
