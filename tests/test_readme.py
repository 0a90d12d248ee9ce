"""The README's feature table names only what exists: every code name in it resolves to a
public object, a registry name, a hyperparameter, a CLI command or a CLI flag."""

import importlib
import re
from pathlib import Path

import pytest

import losslab
from losslab.cli import _COMMANDS, build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
NAMESPACES = ["losslab", "losslab.functional", "losslab.nn", "losslab.heads", "losslab.diagnostics",
              "losslab.optim", "losslab.samplers", "losslab.integrations.transformers"]


def feature_section() -> str:
    text = README.read_text()
    return text[text.index("## Features"):]


def code_names() -> list[str]:
    names = []
    for line in feature_section().splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            names += re.findall(r"`([^`]+)`", line)
    return sorted(set(names))


def resolves(name: str) -> bool:
    infos = losslab.list_losses()
    if name in {i.name for i in infos}:
        return True
    if name.endswith("-*"):
        return any(i.name.startswith(name[:-1]) for i in infos)
    if any(name in i.defaults for i in infos):
        return True
    if name.startswith("losslab "):
        command = name.split()[1]
        return command in _COMMANDS
    if name.startswith("--"):
        parser = build_parser("arena")
        arena = parser._subparsers._group_actions[0].choices["arena"]  # type: ignore[union-attr]
        return name.split()[0] in arena._option_string_actions
    if name.startswith("benchmarks/"):
        return (README.parent / name).exists()
    if name.startswith("make "):
        targets = (README.parent / "Makefile").read_text()
        return f"\n{name.split()[1]}:" in targets
    head = name.split("(")[0].split()[0]
    for ns in NAMESPACES:
        obj = importlib.import_module(ns)
        path = ns
        try:
            for part in head.split("."):
                path = f"{path}.{part}"
                obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(path)
            return True
        except ImportError:
            continue
    return False


@pytest.mark.parametrize("name", code_names())
def test_feature_table_names_exist(name):
    assert resolves(name), f"README feature table names {name!r}, which does not exist"


def test_feature_section_has_rows():
    assert len(code_names()) > 50
