"""The code version a run's result depends on, part of its key in the store.

It hashes the *source files* a result comes from, found by following imports (``ast``) inside
the ``losslab`` package: the arena's training path (config, data, noise, models, training,
metrics, calibration, cleaning; not the report, plots or CLI) and, per loss, the module of its function
and of its ``nn.Module`` with every ``losslab`` module they import (``_core/logit_loss.py``,
``functional/_core/softmax_objectives.py``, ...). The re-exporting packages ``losslab``,
``losslab.functional`` (and its ``logits``, ``embedding``, ``regularizers``) and ``losslab.nn``
are not followed, so editing one loss re-runs only
the losses that use its module.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from .._core.registry import loss_info

# The arena modules whose code shapes a result (the rest renders or schedules results).
TRAINING_MODULES = tuple(
    f"losslab.arena.{m}"
    for m in ("config", "data", "noise", "models", "train", "fit", "lm", "metrics", "calibrate",
              "cleaning", "result")
)
# Packages whose __init__ only re-exports everything; following them would tie every run to
# every loss.
_NOT_FOLLOWED = {"losslab", "losslab.functional", "losslab.functional.logits",
                 "losslab.functional.embedding", "losslab.functional.regularizers", "losslab.nn"}


def _file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(module: str, path: Path) -> set[str]:
    """``losslab`` modules named by the imports anywhere in ``path`` (also inside functions,
    which is how the arena imports optional parts)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for a in node.names:
                # ``from pkg import sub`` names a module when pkg.sub is one.
                out.add(f"{base}.{a.name}" if _file(f"{base}.{a.name}") else base)
    return {m for m in out if m == "losslab" or m.startswith("losslab.")}


def module_closure(roots: tuple[str, ...]) -> dict[str, Path]:
    """Every ``losslab`` module reachable from ``roots`` by imports -> its source file."""
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or module in _NOT_FOLLOWED:
            continue
        path = _file(module)
        if path is None:
            continue
        seen[module] = path
        todo.extend(_imports(module, path))
    return seen


def source_digest(modules: dict[str, Path]) -> str:
    h = hashlib.sha256()
    for name in sorted(modules):
        h.update(name.encode())
        h.update(modules[name].read_bytes())
    return h.hexdigest()[:12]


@cache
def training_digest() -> str:
    return source_digest(module_closure(TRAINING_MODULES))


@cache
def code_version(loss_name: str) -> str:
    """Package and torch versions, the training path's sources and the loss's sources, read
    once per process."""
    import torch

    from .. import __version__

    info = loss_info(loss_name)
    roots = (info.function.__module__, info.module.__module__)
    loss = source_digest(module_closure(roots))
    return f"{__version__}+torch.{torch.__version__}+arena.{training_digest()}+loss.{loss}"
