"""Checks of the files the ``calibration`` and ``fit-scaling`` commands read and write, each
failing with one ``ValueError`` that names the command and the path."""

from __future__ import annotations

import os


def check_file(cmd: str, path: str) -> None:
    if not path.strip():
        raise ValueError(f"{cmd}: input file must be named, got an empty string")
    if not os.path.isfile(path):
        raise ValueError(f"{cmd}: input file {path!r} does not exist or is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{cmd}: input file {path!r} is not readable (permission denied)")


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def plot_path(cmd: str, path: str) -> str:
    """The file ``--plot`` will write: checked before any work, ``.png`` added when the name
    has no suffix (as matplotlib would do silently)."""
    if not path.strip():
        raise ValueError(f"{cmd}: --plot must name a file, got an empty string")
    if os.path.isdir(path):
        raise ValueError(f"{cmd}: --plot {path!r} is a directory; name a file such as "
                         f"{os.path.join(path, 'plot.png')!r}")
    root, suffix = os.path.splitext(path)
    if not suffix:
        path = f"{path}.png"
    elif suffix.lower() not in PLOT_SUFFIXES:
        raise ValueError(f"{cmd}: --plot {path!r} must end in one of {', '.join(PLOT_SUFFIXES)}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ValueError(f"{cmd}: --plot {path!r}: directory {parent!r} does not exist")
    return path


def strip_fn(err: Exception) -> str:
    """A library message without its leading ``function_name: ``."""
    text = str(err)
    head, sep, rest = text.partition(": ")
    return rest if sep and head.isidentifier() else text
