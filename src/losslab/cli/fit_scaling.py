"""The ``losslab fit-scaling`` command: a scaling law fitted to a CSV of measurements."""

from __future__ import annotations

import argparse
import csv
from typing import Any

import numpy as np

from ..diagnostics.scaling.fit import ScalingFit, fit_lr_annealing, fit_scaling_law, predict_lr_annealing
from ..diagnostics.scaling.laws import LAWS, annealing_areas, make_schedule
from ._files import check_file, plot_path, strip_fn
from .helptext import plain

_FIT_HELP = """Fit a scaling law to a CSV of measurements.

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


def _read_csv(path: str) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, str]], list[int]]:
    """Numeric columns by name, for every non-numeric column its first non-numeric cell
    (file line, text), and the file line of every data row. A column mixing numbers and text
    is an error naming the bad cell. A UTF-8 byte-order mark (spreadsheets write one) is
    skipped."""
    check_file("fit-scaling", path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows, lines = [], []
            for row in reader:
                if any((v or "").strip() for k, v in row.items() if k is not None):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise ValueError(f"fit-scaling: {path} is not a UTF-8 text CSV (byte {err.start} is "
                         f"0x{err.object[err.start]:02x}); export it as CSV") from err
    except csv.Error as err:
        raise ValueError(f"fit-scaling: {path} is not a readable CSV ({err})") from err
    if not rows:
        raise ValueError(f"fit-scaling: {path} has no data rows (a header row, then one row per "
                         f"measurement)")
    out: dict[str, np.ndarray] = {}
    text: dict[str, tuple[int, str]] = {}
    for key in rows[0]:
        if key is None:  # cells beyond the header's columns
            continue
        values: list[float] = []
        bad: list[tuple[int, str]] = []
        for line, row in zip(lines, rows, strict=True):
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
    return out, text, lines


def _check_values(path: str, data: dict[str, np.ndarray], lines: list[int],
                  columns: list[str], positive: list[str]) -> None:
    """Every cell of ``columns`` finite, and of ``positive`` above zero; an error names the
    first bad line."""
    for name in columns:
        if name not in data:
            continue
        values = data[name]
        bad = ~np.isfinite(values)
        need = "finite"
        if name in positive:
            bad |= ~(values > 0)
            need = "a finite positive number"
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"fit-scaling: {path} line {lines[i]}, column {name!r}: "
                             f"{values[i]:g} must be {need} ({int(bad.sum())} such cell(s))")


def _require_numeric(path: str, text: dict[str, tuple[int, str]], columns: list[str]) -> None:
    for name in columns:
        if name in text:
            line, cell = text[name]
            raise ValueError(f"fit-scaling: {path} column {name!r} must be numeric, but line "
                             f"{line} holds {cell!r}")


def _annealing_runs(args: argparse.Namespace, data: dict[str, np.ndarray]) -> list[Any]:
    if "step" not in data or "loss" not in data:
        raise ValueError(f"fit-scaling: law lr-annealing needs columns 'step' and 'loss'; "
                         f"{args.csv} has {sorted(data)}")
    run_ids = data.get("run", np.zeros_like(data["step"]))
    runs = []
    for rid in np.unique(run_ids):
        sel = run_ids == rid
        steps = data["step"][sel].astype(np.int64)
        order = np.argsort(steps)
        steps, loss = steps[order], data["loss"][sel][order]
        total = args.total_steps or int(steps.max())
        if args.warmup_steps >= total:
            raise ValueError(f"fit-scaling: --warmup-steps {args.warmup_steps} is not shorter "
                             f"than the schedule ({total} steps)")
        if steps.max() > total:
            raise ValueError(f"fit-scaling: {args.csv} has step {int(steps.max())} beyond "
                             f"--total-steps {total}")
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


# Flags that only the lr-annealing law reads.
_ANNEALING_ONLY = {"schedule": "--schedule", "total_steps": "--total-steps",
                   "predict": "--predict", "predict_steps": "--predict-steps",
                   "warmup_steps": "--warmup-steps"}
def _check_args(args: argparse.Namespace) -> None:
    """Every flag checked before the CSV is read."""
    for dest, low in (("bootstrap", 0), ("starts", 1), ("warmup_steps", 0), ("total_steps", 1),
                      ("predict_steps", 1), ("seed", 0)):
        value = getattr(args, dest)
        if value is not None and value < low:
            flag = "--" + dest.replace("_", "-")
            raise ValueError(f"fit-scaling: {flag} must be an integer >= {low}, got {value}")
    if not (0.0 <= args.decay < 1.0):
        raise ValueError(f"fit-scaling: --decay must lie in [0, 1), got {args.decay:g}")
    if args.law != "lr-annealing":
        used = [flag for dest, flag in _ANNEALING_ONLY.items() if getattr(args, dest)]
        if used:
            raise ValueError(f"fit-scaling: {used[0]} applies only to --law lr-annealing, not "
                             f"--law {args.law}")
    if args.predict_steps is not None and not args.predict:
        raise ValueError("fit-scaling: --predict-steps needs --predict")
    for flag, spec in (("--schedule", args.schedule), ("--predict", args.predict)):
        if spec is not None:
            try:
                make_schedule(spec, 1)
            except ValueError as err:
                raise ValueError(f"fit-scaling: {flag} {spec!r}: {strip_fn(err)}") from err
    if args.plot is not None:
        args.plot = plot_path("fit-scaling", args.plot)


def _check_varies(path: str, data: dict[str, np.ndarray], columns: tuple[str, ...]) -> None:
    for name in columns:
        values = data[name]
        if values.size > 1 and np.all(values == values[0]):
            raise ValueError(f"fit-scaling: {path} column {name!r} holds the same value "
                             f"({values[0]:g}) on every line; a scaling law in {name!r} cannot "
                             f"be fitted (nor its intervals) without at least two distinct values")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    data, text, lines = _read_csv(args.csv)
    needed = ["step", "loss", "lr", "run"] if args.law == "lr-annealing" else [
        *LAWS[args.law].columns, "loss"]
    _require_numeric(args.csv, text, needed)
    _check_values(args.csv, data, lines, needed,
                  positive=[c for c in needed if c not in ("lr", "run")])
    kw: dict[str, Any] = {"bootstrap": args.bootstrap, "seed": args.seed,
                          "n_starts": args.starts}
    area_kw = {"decay": args.decay, "warmup_steps": args.warmup_steps, "warmup": args.warmup}
    prediction = None
    if args.law == "lr-annealing":
        runs = _annealing_runs(args, data)
        fit = fit_lr_annealing(runs, **area_kw, **kw)
        if args.predict:
            total = args.predict_steps or max(int(r[0].max()) for r in runs)
            if args.warmup_steps >= total:
                raise ValueError(f"fit-scaling: --warmup-steps {args.warmup_steps} is not shorter "
                                 f"than the --predict schedule ({total} steps)")
            prediction = predict_lr_annealing(fit, make_schedule(args.predict, total), **area_kw)
    else:
        law = LAWS[args.law]
        if "loss" not in data:
            raise ValueError(f"fit-scaling: {args.csv} needs a 'loss' column, found "
                             f"{sorted([*data, *text])}")
        missing = [c for c in law.columns if c not in data]
        if missing:
            raise ValueError(f"fit-scaling: law {args.law} needs columns {list(law.columns)}, "
                             f"{args.csv} lacks {missing} (found {sorted([*data, *text])})")
        _check_varies(args.csv, data, law.columns)
        if data["loss"].size < len(law.params):
            raise ValueError(f"fit-scaling: {args.csv} has {data['loss'].size} data row(s); law "
                             f"{args.law} has {len(law.params)} parameters and needs at least "
                             f"{len(law.params)} rows")
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


def add_parser(sub: Any) -> None:
    p = sub.add_parser("fit-scaling", help="fit a scaling law to a CSV of losses",
                       description=plain(_FIT_HELP),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
