"""Docstrings as ``--help`` text: the reStructuredText markup that reads well in the API docs
(````literal````, ``:func:`name```) becomes plain text in a terminal."""

from __future__ import annotations

import re

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain(doc: str | None) -> str:
    """``doc`` without reST roles, double backticks and ``::`` literal-block markers."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], doc or "")
    text = _LITERAL.sub(r"\1", text)
    text = re.sub(r"(\S)::\n", r"\1:\n", text)
    return text.replace(" ::\n", "\n")
