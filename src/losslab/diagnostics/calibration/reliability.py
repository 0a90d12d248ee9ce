"""Reliability diagram (Guo et al. 2017, Fig. 1): per-bin accuracy against confidence, with
the gap to the diagonal shaded and the ECE in the title. matplotlib is imported lazily and
only through its object-oriented API (no pyplot, no global backend change), so it works on
headless machines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from .metrics import calibration_bins, expected_calibration_error


def reliability_diagram(
    probs_or_logits: Tensor,
    labels: Tensor,
    *,
    n_bins: int = 15,
    binning: str = "width",
    from_logits: bool = False,
    title: str | None = None,
    path: str | Path | None = None,
) -> Any:
    """Draw a reliability diagram and return the matplotlib ``Figure``.

    Bars: accuracy of each non-empty bin at its mean confidence; red outline: the gap to
    perfect calibration; lower panel: the fraction of samples per bin. ``path`` saves a PNG.
    Requires the ``plot`` extra (matplotlib).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reliability_diagram: needs matplotlib; install losslab[plot]"
        ) from err
    bins = calibration_bins(
        probs_or_logits, labels, n_bins=n_bins, binning=binning, from_logits=from_logits
    )
    ece = float(
        expected_calibration_error(
            probs_or_logits, labels, n_bins=n_bins, binning=binning, from_logits=from_logits
        )
    )
    filled = bins.count[0] > 0
    conf = bins.confidence[0][filled].tolist()
    acc = bins.accuracy[0][filled].tolist()
    lower = bins.lower[0][filled].tolist()
    upper = bins.upper[0][filled].tolist()
    share = (bins.count[0][filled] / bins.count[0].sum()).tolist()
    width = [max(u - lo, 0.01) for lo, u in zip(lower, upper, strict=True)]
    centre = [(lo + u) / 2 for lo, u in zip(lower, upper, strict=True)]

    fig = Figure(figsize=(4.5, 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    top.bar(centre, acc, width=width, color="tab:blue", edgecolor="black", lw=0.5,
            label="accuracy")
    top.bar(centre, [c - a for c, a in zip(conf, acc, strict=True)], bottom=acc, width=width,
            fill=False, edgecolor="tab:red", hatch="//", lw=0.5, label="gap")
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or f"reliability ({binning} bins), ECE = {ece:.4f}")
    bottom.bar(centre, share, width=width, color="tab:grey")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("share")
    fig.tight_layout()
    if path is not None:
        fig.savefig(str(path), dpi=120)
    return fig


__all__ = [
    "reliability_diagram",
]
