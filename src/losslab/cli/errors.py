"""How every ``losslab`` command fails: one line on stderr and an exit code, never a traceback
unless ``--debug`` (anywhere on the command line) or ``LOSSLAB_DEBUG=1`` asks for it.

Exit codes:

* ``0``: success.
* ``2``: usage error: a bad argument, a bad input file, a setting out of range (``ValueError``,
  ``TypeError`` and :class:`UsageError`); argparse's own errors also exit 2.
* ``1``: runtime failure: the results store is corrupt or read-only, a file cannot be written,
  training failed (:class:`RuntimeFailure`, ``OSError`` and anything unexpected).
* ``130`` / ``143``: interrupted by SIGINT (Ctrl-C) / SIGTERM. An interrupted ``arena`` keeps
  every finished run; running the same command again resumes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NoReturn

# Defined in _core so that library code can raise them without importing the CLI.
from .._core.errors import RuntimeFailure as RuntimeFailure
from .._core.errors import UsageError as UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

DEBUG_FLAG = "--debug"
DEBUG_ENV = "LOSSLAB_DEBUG"


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so cleanup runs as for Ctrl-C."""


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` on the command line or a true ``LOSSLAB_DEBUG`` in the environment."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return DEBUG_FLAG in argv or env not in ("", "0", "false", "no", "off")


def one_line(text: str) -> str:
    """Collapse whitespace so a message is a single line."""
    return " ".join(str(text).split())


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are a single line (the program, the error and
    where to get help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} "
                              f"(see {self.prog} --help)\n")


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` in the main thread (where Python runs
    signal handlers), so ``finally`` blocks and pool shutdowns run as for Ctrl-C."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Commands whose interruption keeps finished work that the same command resumes.
_RESUMABLE = ("arena",)


def _without_command(command: str, message: str) -> str:
    """``message`` without a leading ``"COMMAND: "``: the library names its caller ("arena: …")
    for Python users, and the command line already says ``losslab COMMAND: error:``."""
    head = f"{command}: "
    return message[len(head):] if message.startswith(head) else message


def run_command(command: str, func: Callable[[], Any], debug: bool) -> int:
    """Call ``func`` and turn its outcome into an exit code, reporting failures in one line
    prefixed ``losslab COMMAND: ``. With ``debug`` the exception propagates (a traceback)."""
    prefix = f"losslab {command}"
    try:
        with sigterm_as_exception():
            return int(func() or 0)
    except (KeyboardInterrupt, Terminated) as err:
        if debug:
            raise
        how = (" — rerun the same command to resume (finished runs are kept)"
               if command in _RESUMABLE else "")
        print(f"{prefix}: interrupted{how}", file=sys.stderr)
        return EXIT_SIGTERM if isinstance(err, Terminated) else EXIT_SIGINT
    except (ValueError, TypeError) as err:
        if debug:
            raise
        print(f"{prefix}: error: {_without_command(command, one_line(str(err)))}",
              file=sys.stderr)
        return EXIT_USAGE
    except ImportError:
        raise  # the caller names the missing extra
    except OSError as err:
        if debug:
            raise
        what = err.strerror or str(err)
        where = f" ({err.filename})" if err.filename else ""
        print(f"{prefix}: error: {one_line(what)}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except RuntimeFailure as err:
        if debug:
            raise
        print(f"{prefix}: error: {_without_command(command, one_line(str(err)))}",
              file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:
        if debug:
            raise
        print(f"{prefix}: error: {type(err).__name__}: {one_line(str(err))} (unexpected; rerun "
              f"with {DEBUG_FLAG} for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
