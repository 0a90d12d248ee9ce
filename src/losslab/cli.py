"""The ``losslab`` command. Each sub-command lives beside the code it drives and is listed in
``_COMMAND_MODULES``; a module provides ``add_parser(subparsers)`` which registers its parser
and sets ``func`` (called with the parsed namespace, returning an exit code)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

_COMMAND_MODULES = [
    "losslab.commands.list_cmd",
    "losslab.arena.cli",
    "losslab.arena.report_cli",
    "losslab.diagnostics.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="losslab",
        description="Cross-entropy and the objectives that compete with it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as err:
        print(f"losslab {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
