"""``losslab report DIR``: turn the arena's ``DIR/runs.db`` into ``DIR/report.html`` + PNGs."""

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
    p.set_defaults(func=run)
