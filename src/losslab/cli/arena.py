"""``losslab arena``: train a small classifier under each loss on noisy labels and compare.

Settings are merged from a preset (default ``minimal``), an optional TOML file (``--config``)
and command-line flags, in that order. Everything is checked before training; finished runs
are stored in ``<out>/runs.db`` and skipped when the same command runs again.

Your own data: ``--dataset data.csv --label-column label`` (also ``.parquet``), ``--dataset
data.npz`` (arrays X, y, optionally X_test, y_test) or ``--dataset my_pkg.data:load``;
``--model my_pkg.models:build`` for your own model, called as build(input_shape,
num_classes). Without a test split a stratified 25% is held out; features are standardised
with the training split's statistics; ``--noise none`` keeps your labels as they are.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..arena.config import RunConfig, run_key
from ..arena.guard import check_store, store_errors
from ..arena.presets import PRESETS, Claim, Preset, get_preset
from ..arena.settings import executor_settings, load_toml, to_sweep
from ..arena.store import RunStore
from ..arena.summary import aggregate, config_settings, format_table
from ..arena.sweep import check_sweep, execute
from .helptext import plain


def _csv_floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err


# flag destination -> settings key; flags left at None are not set.
_FLAG_KEYS = {
    "losses": "losses",
    "seeds": "seeds",
    "seed_list": "seeds",
    "noise_rates": "noise_rates",
    "noise": "noise",
    "dataset": "dataset",
    "label_column": "label_column",
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "imbalance": "imbalance",
    "num_samples": "num_samples",
    "width": "width",
    "holdout": "holdout",
    "calibrations": "calibrations",
    "cleaning": "cleaning",
    "cleaning_folds": "cleaning_folds",
    "workers": "workers",
    "heads": "heads",
    "head_distance": "head_distance",
    "head_n": "head_n",
    "executor": "executor",
    "ray_address": "ray_address",
}


def merged_settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from_file = load_toml(args.config) if args.config else {}
    preset = get_preset(args.preset or from_file.get("preset") or "minimal")
    settings: dict[str, Any] = dict(preset.settings)
    settings.update(from_file)
    for dest, key in _FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            settings[key] = value
    settings.pop("preset", None)
    return preset.name, settings


def probe_out(out: str) -> None:
    """Fail before training, naming ``--out``, when results could not be stored there."""
    if not out.strip():
        raise ValueError("arena: --out must name a directory, got an empty string")
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as err:
        raise ValueError(
            f"arena: --out {out!r} is not a writable directory ({err.strerror or err})"
        ) from err


def claims_to_record(preset: Preset, configs: Sequence[RunConfig]) -> tuple[Claim, ...]:
    """The preset's claims bound to its settings and rates, or none when this sweep does not
    run in exactly those (``--dataset``, ``--epochs``, ``--noise-rates``, ... overridden), so
    a claim is never recorded for runs it is not about. Seeds, losses and workers may vary."""
    labels, rates = preset.scope()
    mine = config_settings(configs), {c.noise_rate for c in configs}
    if mine != (set(labels), set(rates)):
        return ()
    return preset.bound_claims()


# Settings a preset's claim does not depend on.
_FREE_KEYS = ("losses", "seeds", "workers", "executor", "ray_address")


def overridden_keys(preset: Preset, settings: dict[str, Any]) -> list[str]:
    """The settings that differ from ``preset``'s own (for the message on a skipped claim)."""
    return [k for k, v in settings.items()
            if k not in _FREE_KEYS and (k not in preset.settings or preset.settings[k] != v)]


def user_data_lines(configs: Sequence[RunConfig]) -> list[str]:
    """One line per distinct user dataset of the sweep: sizes, split, label mapping."""
    from ..arena.data import is_user_dataset
    from ..arena.user_data import load_user_data

    sources = dict.fromkeys((c.dataset, c.data_seed) for c in configs
                            if is_user_dataset(c.dataset))
    return [load_user_data(d, seed).describe(seed) for d, seed in sources]


def run(args: argparse.Namespace) -> int:
    preset_name, settings = merged_settings(args)
    sweep, workers = to_sweep(settings)
    executor, ray_address = executor_settings(settings)  # a missing ray fails here
    configs = check_sweep(sweep)  # every key and every loss is checked before training
    for line in user_data_lines(configs):
        print(f"arena: {line}", file=sys.stderr)
    probe_out(args.out)
    check_store(args.out, command="arena", write=True)  # before any training
    cals = f"{len(sweep.calibrations)} calibrations x " if len(sweep.calibrations) > 1 else ""
    heads = f"{len(sweep.heads)} heads x " if len(sweep.heads) > 1 else ""
    cleans = f"{len(sweep.cleanings)} cleanings x " if len(sweep.cleanings) > 1 else ""
    rates = (f"{len(sweep.variants)} variants with their noise rates" if len(sweep.variants) > 1
             else f"{len(sweep.noise_rates)} noise rates")
    where = "on Ray" if executor == "ray" else f"{workers} worker{'s' if workers > 1 else ''}"
    print(
        f"arena: {len(sweep.losses)} losses x {heads}{cleans}{cals}{rates} "
        f"x {len(sweep.seeds)} seeds = {len(configs)} runs ({where}); results in "
        f"{args.out}/runs.db",
        file=sys.stderr,
    )
    claims = claims_to_record(get_preset(preset_name), configs)
    overridden = overridden_keys(get_preset(preset_name), settings)
    if get_preset(preset_name).claims and not claims:
        print(f"arena: preset {preset_name!r} settings were overridden "
              f"({', '.join(overridden) or 'settings'}); its claim is not recorded for the "
              f"report", file=sys.stderr)
    with store_errors(args.out), RunStore(args.out) as store:
        if claims:
            presets = store.get_meta("presets", {})
            presets[preset_name] = [c.to_dict() for c in claims]
            store.set_meta("presets", presets)
        elif get_preset(preset_name).claims:  # the report says why no claim is checked
            skipped = store.get_meta("presets_overridden", {})
            skipped[preset_name] = overridden
            store.set_meta("presets_overridden", skipped)
        ran, skipped = execute(
            configs, store, workers=workers, progress=not args.quiet, executor=executor,
            ray_address=ray_address,
        )
        stored = store.runs(run_key(c) for c in configs)
    if skipped:
        print(f"arena: {skipped} runs already finished, {ran} run now", file=sys.stderr)
    print(format_table(aggregate(stored)))
    if args.report:
        from ..arena.report import write_report

        path = write_report(args.out)
        print(f"arena: report written to {path}", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "arena",
        help="compare losses on noisy-label classification",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset", default=None, help=f"one of {', '.join(PRESETS)} (default: minimal)"
    )
    p.add_argument("--config", default=None, help="TOML file with sweep settings")
    p.add_argument(
        "--losses", nargs="+", default=None, metavar="LOSS",
        help="registry names, optionally with hyperparameters: gce:q=0.5",
    )
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    seeds.add_argument("--seed-list", type=_csv_ints, default=None, help="explicit seeds: 0,3,7")
    p.add_argument("--noise", default=None, help="none, symmetric, asymmetric or instance")
    p.add_argument(
        "--noise-rates", type=_csv_floats, default=None, help="training-label noise rates: 0.2,0.4"
    )
    p.add_argument("--dataset", default=None,
                   help="mnist1d, digits, your data file (.csv, .npz, .parquet) or "
                        "module:function returning (X, y[, X_test, y_test])")
    p.add_argument("--label-column", default=None, metavar="NAME",
                   help="the label column of a .csv or .parquet dataset")
    p.add_argument("--model", default=None,
                   help="cnn, mlp (the default for your own data) or your factory "
                        "module:function(input_shape, num_classes) -> nn.Module")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per run")
    p.add_argument("--batch-size", type=int, default=None, help="training batch size")
    p.add_argument("--lr", type=_finite, default=None, help="peak learning rate (one-cycle Adam)")
    p.add_argument("--imbalance", type=_finite, default=None, help="long-tail ratio (1 = balanced)")
    p.add_argument("--num-samples", type=int, default=None, help="dataset size before the split")
    p.add_argument("--width", type=int, default=None, help="model width")
    p.add_argument("--holdout", type=_finite, default=None,
                   help="share of the (noisy) training set held out for calibration")
    p.add_argument("--calibrations", nargs="+", default=None, metavar="METHOD",
                   help="post-hoc calibration: none, temperature, ca-temperature")
    p.add_argument("--cleaning", nargs="+", default=None, metavar="METHOD",
                   help="clean the training labels first: none, cleanlab (drop the samples "
                        "cleanlab flags), cleanlab-relabel (give them the predicted class); "
                        "several compare them (needs pip install 'losslab[clean]')")
    p.add_argument("--cleaning-folds", type=int, default=None, metavar="K",
                   help="cross-validation folds of the cleaning's out-of-sample "
                        "probabilities (default 5)")
    p.add_argument("--head", dest="heads", nargs="+", default=None, metavar="HEAD",
                   help="classifier head(s): linear, harmonic, harmonic:distance=cosine,n=2; "
                        "several compare them")
    p.add_argument("--head-distance", default=None,
                   help="distance of harmonic heads (default euclidean; see losslab.heads)")
    p.add_argument("--head-n", type=_finite, default=None,
                   help="harmonic exponent n of harmonic heads (default 1)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel worker processes of the process executor")
    p.add_argument("--executor", default=None, choices=("process", "ray"),
                   help="process (default: a local pool of --workers) or ray "
                        "(needs pip install 'losslab[ray]')")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (e.g. auto or ray://host:10001); default: the one "
                        "in RAY_ADDRESS, else a local Ray instance")
    p.add_argument("--out", default="runs", help="directory of runs.db (default: runs)")
    p.add_argument("--report", action="store_true", help="write <out>/report.html afterwards")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.epilog = ("Ctrl-C (or SIGTERM) stops the sweep and keeps every finished run: rerun the same "
                "command to resume. Exit codes: 0 done, 2 bad settings, 1 failure (e.g. a "
                "corrupt or read-only runs.db), 130/143 interrupted. --debug shows tracebacks.")
    p.set_defaults(func=run)
