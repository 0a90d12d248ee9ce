"""``losslab fit-scaling``: fit a scaling law to a CSV of measurements from the shell; and
``losslab calibration``: calibration metrics of saved predictions.

Columns (a header row is required; extra columns are ignored):

* ``power``: ``x, loss``         * ``chinchilla``: ``n, d, loss``
* ``nmt``: ``n_enc, n_dec, loss`` * ``multilingual``: ``n, d, p, loss``
* ``lr-annealing``: ``step, loss`` plus either an ``lr`` column (the learning rate of every
  step 1..T must then appear) or ``--schedule kind:key=value,...``; an optional ``run`` column
  holds several curves (each with its own ``lr`` column values).

Example::

    losslab fit-scaling curve.csv --law lr-annealing --schedule cosine:lr=3e-4,final=3e-5 \\
        --predict wsd:lr=3e-4,decay=0.2 --plot fit.png
"""

from __future__ import annotations

import argparse
import csv
import os
from typing import Any

import numpy as np

from .scaling_fit import ScalingFit, fit_lr_annealing, fit_scaling_law, predict_lr_annealing
from .scaling_laws import LAWS, annealing_areas, make_schedule


def _check_file(cmd: str, path: str) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"{cmd}: input file {path!r} does not exist or is not a regular file")


def _read_csv(path: str) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, str]]]:
    """Numeric columns by name, and for every non-numeric column its first non-numeric cell
    (file line, text). A column mixing numbers and text is an error naming the bad cell."""
    _check_file("fit-scaling", path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"fit-scaling: {path} has no data rows")
    out: dict[str, np.ndarray] = {}
    text: dict[str, tuple[int, str]] = {}
    for key in rows[0]:
        if key is None:  # cells beyond the header's columns
            continue
        values: list[float] = []
        bad: list[tuple[int, str]] = []
        for line, row in enumerate(rows, start=2):  # line 1 is the header
            cell = row.get(key)
            try:
                values.append(float(cell))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                bad.append((line, "" if cell is None else cell))
        name = key.strip()
        if not bad:
            out[name] = np.array(values)
        elif values:
            line, cell = bad[0]
            raise ValueError(f"fit-scaling: {path} line {line}, column {name!r}: {cell!r} is not "
                             f"a number ({len(bad)} non-numeric cell(s) in that column)")
        else:
            text[name] = bad[0]  # a label column: not an input unless a law asks for it
    return out, text


def _require_numeric(path: str, text: dict[str, tuple[int, str]], columns: list[str]) -> None:
    for name in columns:
        if name in text:
            line, cell = text[name]
            raise ValueError(f"fit-scaling: {path} column {name!r} must be numeric, but line "
                             f"{line} holds {cell!r}")


def _annealing_runs(args: argparse.Namespace, data: dict[str, np.ndarray]) -> list[Any]:
    if "step" not in data or "loss" not in data:
        raise ValueError("fit-scaling: law lr-annealing needs columns 'step' and 'loss'")
    run_ids = data.get("run", np.zeros_like(data["step"]))
    runs = []
    for rid in np.unique(run_ids):
        sel = run_ids == rid
        steps = data["step"][sel].astype(np.int64)
        order = np.argsort(steps)
        steps, loss = steps[order], data["loss"][sel][order]
        total = args.total_steps or int(steps.max())
        if args.schedule:
            lrs = make_schedule(args.schedule, total)
        elif "lr" in data:
            lrs = np.zeros(total)
            lrs[steps - 1] = data["lr"][sel][order]
            if not np.array_equal(np.sort(steps), np.arange(1, total + 1)):
                raise ValueError("fit-scaling: with an 'lr' column every step 1..T must be "
                                 "listed; otherwise pass --schedule")
        else:
            raise ValueError("fit-scaling: law lr-annealing needs an 'lr' column or --schedule")
        runs.append((steps, loss, lrs))
    return runs


def _print_fit(fit: ScalingFit) -> None:
    print(f"law {fit.law}: Huber-on-log objective {fit.objective:.6g}, "
          f"max |log residual| {np.abs(fit.residuals).max():.4g}")
    header = f"{'parameter':<10} {'value':>14}"
    if fit.intervals:
        header += f" {'CI low':>14} {'CI high':>14}"
    print(header)
    for name, value in fit.params.items():
        line = f"{name:<10} {value:>14.6g}"
        if fit.intervals:
            lo, hi = fit.intervals[name]
            line += f" {lo:>14.6g} {hi:>14.6g}"
        print(line)


def run(args: argparse.Namespace) -> int:
    data, text = _read_csv(args.csv)
    needed = ["step", "loss", "lr", "run"] if args.law == "lr-annealing" else [
        *LAWS[args.law].columns, "loss"]
    _require_numeric(args.csv, text, needed)
    kw: dict[str, Any] = {"bootstrap": args.bootstrap, "seed": args.seed,
                          "n_starts": args.starts}
    area_kw = {"decay": args.decay, "warmup_steps": args.warmup_steps, "warmup": args.warmup}
    prediction = None
    if args.law == "lr-annealing":
        runs = _annealing_runs(args, data)
        fit = fit_lr_annealing(runs, **area_kw, **kw)
        if args.predict:
            total = args.predict_steps or max(int(r[0].max()) for r in runs)
            prediction = predict_lr_annealing(fit, make_schedule(args.predict, total), **area_kw)
    else:
        law = LAWS[args.law]
        if "loss" not in data:
            raise ValueError("fit-scaling: the CSV needs a 'loss' column")
        missing = [c for c in law.columns if c not in data]
        if missing:
            raise ValueError(f"fit-scaling: law {args.law} needs columns {list(law.columns)}, "
                             f"missing {missing}")
        fit = fit_scaling_law(args.law, data["loss"],
                              columns={c: data[c] for c in law.columns}, **kw)
    _print_fit(fit)
    if prediction is not None:
        print(f"predicted loss under {args.predict} after {prediction.size} steps: "
              f"{prediction[-1]:.6g} (minimum {np.nanmin(prediction):.6g})")
    if args.plot:
        _plot(args, fit, data, prediction)
        print(f"plot saved to {args.plot}")
    return 0


def _plot(args: argparse.Namespace, fit: ScalingFit, data: dict[str, np.ndarray],
          prediction: np.ndarray | None) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    if fit.law == "lr-annealing":
        for steps, loss, lrs in _annealing_runs(args, data):
            s1, s2 = annealing_areas(lrs, decay=args.decay, warmup_steps=args.warmup_steps,
                                     warmup=args.warmup)
            keep = s1 > 0
            grid = np.arange(1, lrs.size + 1)[keep]
            ax.plot(steps, loss, ".", ms=3, alpha=0.6)
            ax.plot(grid, fit.predict(s1=s1[keep], s2=s2[keep]), "-")
        if prediction is not None:
            ax.plot(np.arange(1, prediction.size + 1), prediction, "--", label=args.predict)
            ax.legend(fontsize=7)
        ax.set_xlabel("step")
    else:
        x_col = LAWS[fit.law].columns[0]
        order = np.argsort(data[x_col])
        ax.loglog(data[x_col], data["loss"], "o", ms=4, label="data")
        cols = {c: data[c][order] for c in LAWS[fit.law].columns}
        ax.loglog(cols[x_col], fit.predict(**cols), "-", label="fit")
        ax.set_xlabel(x_col)
        ax.legend()
    ax.set_ylabel("loss")
    ax.set_title(", ".join(f"{k}={v:.3g}" for k, v in fit.params.items()), fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)


def _load_predictions(path: str) -> tuple[Any, Any, bool]:
    import torch

    _check_file("calibration", path)
    if path.endswith(".npz"):
        with np.load(path) as z:
            data = {k: torch.from_numpy(z[k]) for k in z.files}
    else:
        data = torch.load(path, map_location="cpu", weights_only=True)
    if "labels" not in data or not ("logits" in data or "probs" in data):
        raise ValueError(f"calibration: {path} must hold 'labels' and 'logits' or 'probs', "
                         f"found {sorted(data)}")
    from_logits = "logits" in data
    return data["logits" if from_logits else "probs"], data["labels"], from_logits


def run_calibration(args: argparse.Namespace) -> int:
    from . import calibration as cal
    from .reliability import reliability_diagram
    from .temperature import fit_temperature, temperature_scale

    preds, labels, from_logits = _load_predictions(args.predictions)
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
    p = sub.add_parser("fit-scaling", help="fit a scaling law to a CSV of losses",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", help="CSV file with a header row")
    p.add_argument("--law", required=True, choices=sorted(LAWS))
    p.add_argument("--schedule", help="lr-annealing: schedule spec, e.g. cosine:lr=3e-4,final=0")
    p.add_argument("--total-steps", type=int, help="lr-annealing: schedule length (default: "
                                                   "the last step in the CSV)")
    p.add_argument("--predict", help="lr-annealing: another schedule to extrapolate to")
    p.add_argument("--predict-steps", type=int, help="length of the --predict schedule")
    p.add_argument("--decay", type=float, default=0.999, help="S2 momentum decay λ")
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--warmup", choices=("include", "as_peak", "exclude"), default="include")
    p.add_argument("--bootstrap", type=int, default=100, help="bootstrap refits (0: none)")
    p.add_argument("--starts", type=int, default=8, help="L-BFGS starts from the grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="save data and fit to this PNG")
    p.set_defaults(func=run)
