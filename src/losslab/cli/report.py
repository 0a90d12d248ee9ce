"""``losslab report DIR``: turn the arena's ``DIR/runs.db`` into ``DIR/report.html`` + PNGs.

``--claims`` prints the presets' claims instead, as one Markdown table (paper, claim, setting,
verdict, effect with its 95% interval, run time), to standard output or ``--output``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .helptext import plain


def run(args: argparse.Namespace) -> int:
    from ..arena.report import write_report

    if not args.directory.strip():
        raise ValueError("report: DIRECTORY must name a directory, got an empty string")
    if args.output is not None and not args.output.strip():
        raise ValueError("report: --output must name a file, got an empty string")
    if args.claims:
        from ..arena.claims_table import claims_markdown

        table = claims_markdown(args.directory)
        if args.output is None:
            sys.stdout.write(table)
            return 0
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(table)
        print(f"report: wrote {args.output}", file=sys.stderr)
        return 0
    path = write_report(args.directory, output=args.output)
    print(f"report: wrote {path}", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML report of an arena results directory",
        description=plain(__doc__),
    )
    p.add_argument("directory", nargs="?", default="runs", help="directory holding runs.db")
    p.add_argument("--output", default=None, help="report path (default: DIRECTORY/report.html)")
    p.add_argument(
        "--claims",
        action="store_true",
        help="print the presets' claims as a Markdown table (to --output if given)",
    )
    p.set_defaults(func=run)
