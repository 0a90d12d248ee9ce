"""The ``losslab calibration`` command: calibration metrics of saved predictions."""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from ._files import check_file, plot_path, strip_fn

PREDICTION_SUFFIXES = (".npz", ".pt", ".pth")


def _load_predictions(path: str) -> tuple[Any, Any, bool]:
    """(scores, labels, from_logits) from a ``.npz`` (numpy.savez) or ``.pt`` (torch.save of
    a dict) file; any problem with the file is one error naming it."""
    import torch

    check_file("calibration", path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in PREDICTION_SUFFIXES:
        raise ValueError(f"calibration: {path} has suffix {suffix or '(none)'!r}; save "
                         f"predictions with numpy.savez (.npz) or torch.save (.pt) as 'labels' "
                         f"plus 'logits' or 'probs'")
    if os.path.getsize(path) == 0:
        raise ValueError(f"calibration: {path} is empty (0 bytes)")
    try:
        if suffix == ".npz":
            # allow_pickle stays False: a prediction file holds plain arrays only.
            with np.load(path) as z:
                data: Any = {k: torch.from_numpy(z[k]) for k in z.files}
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # whatever a damaged file makes the loader raise
        kind = "an .npz archive of arrays" if suffix == ".npz" else "a torch.save file of tensors"
        text = str(err).strip()
        if "allow_pickle" in text or "Weights only load failed" in text:
            reason = "it is damaged, or holds Python objects rather than plain arrays"
        elif text and "\n" not in text and len(text) < 80 and not isinstance(err, KeyError):
            reason = f"{type(err).__name__}: {strip_fn(err)}"
        else:
            reason = type(err).__name__
        raise ValueError(f"calibration: {path} is not readable as {kind} ({reason})") from err
    if not isinstance(data, dict):
        raise ValueError(f"calibration: {path} holds a {type(data).__name__}; it must hold a "
                         f"dict with 'labels' and 'logits' or 'probs'")
    if "labels" not in data or not ("logits" in data or "probs" in data):
        raise ValueError(f"calibration: {path} must hold 'labels' and 'logits' or 'probs', "
                         f"found {sorted(map(str, data))}")
    from_logits = "logits" in data
    name = "logits" if from_logits else "probs"
    scores, labels = data[name], data["labels"]
    for key, value in ((name, scores), ("labels", labels)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"calibration: {path}: {key!r} must be an array, got "
                             f"{type(value).__name__}")
    if scores.dim() < 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"calibration: {path}: {name!r} must have shape (N, C) with N >= 1 "
                         f"and C >= 2, got {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"calibration: {path}: {name!r} must hold floating-point numbers, "
                         f"got {scores.dtype}")
    if not bool(torch.isfinite(scores).all()):
        row = int(torch.nonzero(~torch.isfinite(scores.reshape(scores.shape[0], -1)))[0, 0])
        raise ValueError(f"calibration: {path}: {name!r} row {row} is not finite")
    return scores, labels, from_logits


def run_calibration(args: argparse.Namespace) -> int:
    if args.bins < 1:
        raise ValueError(f"calibration: --bins must be an integer >= 1, got {args.bins}")
    if args.plot is not None:
        args.plot = plot_path("calibration", args.plot)
    preds, labels, from_logits = _load_predictions(args.predictions)
    try:
        return _report_calibration(args, preds, labels, from_logits)
    except (ValueError, TypeError) as err:
        raise ValueError(f"calibration: {args.predictions}: {strip_fn(err)}") from err


def _report_calibration(args: argparse.Namespace, preds: Any, labels: Any,
                        from_logits: bool) -> int:
    from ..diagnostics import calibration as cal
    from ..diagnostics.calibration.reliability import reliability_diagram
    from ..diagnostics.calibration.temperature import fit_temperature, temperature_scale

    kw = {"n_bins": args.bins, "from_logits": from_logits}
    rows = [
        ("ECE (equal width)", cal.expected_calibration_error(preds, labels, **kw)),
        ("ECE (equal mass)", cal.expected_calibration_error(preds, labels, binning="mass", **kw)),
        ("MCE", cal.maximum_calibration_error(preds, labels, **kw)),
        ("classwise ECE", cal.classwise_calibration_error(preds, labels, **kw)),
        ("ACE", cal.adaptive_calibration_error(preds, labels, **kw)),
        ("Brier", cal.brier_score(preds, labels, from_logits=from_logits)),
        ("NLL", cal.negative_log_likelihood(preds, labels, from_logits=from_logits)),
    ]
    for name, value in rows:
        print(f"{name:<18} {float(value):.6f}")
    if from_logits and preds.dim() == 2:
        t = fit_temperature(preds, labels)
        scaled = temperature_scale(preds.double(), t)
        ece = cal.expected_calibration_error(scaled, labels, n_bins=args.bins, from_logits=True)
        nll = cal.negative_log_likelihood(scaled, labels, from_logits=True)
        print(f"temperature        {t:.6f}  (after scaling: ECE {float(ece):.6f}, "
              f"NLL {float(nll):.6f})")
    if args.plot:
        reliability_diagram(preds, labels, **kw, path=args.plot)
        print(f"reliability diagram saved to {args.plot}")
    return 0


def add_parser(sub: Any) -> None:
    c = sub.add_parser("calibration", help="calibration metrics of saved predictions",
                       description="ECE/MCE/classwise/ACE/Brier/NLL and a temperature fit for "
                                   "predictions saved as .npz or .pt with 'labels' and "
                                   "'logits' (or 'probs').")
    c.add_argument("predictions", help=".npz or .pt file")
    c.add_argument("--bins", type=int, default=15)
    c.add_argument("--plot", help="save a reliability diagram to this PNG")
    c.set_defaults(func=run_calibration)
