"""Exceptions whose type tells the ``losslab`` command which exit code to use (see
:mod:`losslab.cli.errors`). They live here, below every part, so that library code (the arena's
store checks) can raise them without importing the CLI."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user (an argument, a file): exit code 2."""


class RuntimeFailure(RuntimeError):
    """The command could not do its work for a reason outside its arguments: exit code 1."""
