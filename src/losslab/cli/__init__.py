"""The ``losslab`` command.

Each sub-command is one module of this package (``list_cmd``, ``arena``, ``report``,
``calibration``, ``fit_scaling``), listed in ``_COMMANDS``; that module provides
``add_parser(subparsers)``, which registers its parser and sets ``func`` (called with the parsed
namespace, returning an exit code). Only the chosen
command's module is imported, so ``losslab list`` starts fast and works on a base install even
when an optional extra (e.g. ``losslab[arena]``) is missing; a command whose extra is missing
says which one to install. How every command fails (one line, exit codes) is
:mod:`losslab.cli.errors`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from .errors import DEBUG_FLAG, EXIT_USAGE, OneLineParser, debug_requested, run_command

# command name -> (module that defines it, one-line help, the extra it needs)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "list": ("losslab.cli.list_cmd", "list the registered losses", ""),
    "arena": ("losslab.cli.arena", "train models under several losses and compare them", "arena"),
    "report": ("losslab.cli.report", "write the HTML report of an arena run", "arena,plot"),
    "fit-scaling": ("losslab.cli.fit_scaling", "fit a scaling law to a CSV of losses", ""),
    "calibration": ("losslab.cli.calibration", "calibration metrics of saved predictions", ""),
}


def _missing_extra(name: str, extra: str, err: ImportError) -> Any:
    def run(args: argparse.Namespace) -> int:
        print(
            f"losslab {name}: needs the optional dependencies of losslab[{extra}] "
            f"(pip install 'losslab[{extra}]'): {err}",
            file=sys.stderr,
        )
        return EXIT_USAGE

    return run


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; only ``command``'s module is imported (none for ``--help``)."""
    parser = OneLineParser(
        prog="losslab",
        description="Cross-entropy and the objectives that compete with it. Errors are one "
                    "line; exit code 2 for bad arguments or input, 1 for failures, 130/143 when "
                    "interrupted.",
    )
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the Python traceback of an error (also LOSSLAB_DEBUG=1); "
                             "accepted anywhere on the command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command in _COMMANDS:
        module, help_text, extra = _COMMANDS[command]
        try:
            importlib.import_module(module).add_parser(sub)
        except ImportError as err:
            stub = sub.add_parser(command, help=help_text, add_help=False)
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            stub.set_defaults(func=_missing_extra(command, extra or "all", err))
    for name, (_, help_text, _) in _COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args_list)
    args_list = [a for a in args_list if a != DEBUG_FLAG]
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return run_command(args.command, lambda: args.func(args), debug)
    except ImportError as err:  # an optional dependency imported lazily by the command
        if debug:
            raise
        extra = _COMMANDS.get(args.command, ("", "", ""))[2] or "all"
        return int(_missing_extra(args.command, extra, err)(args))
