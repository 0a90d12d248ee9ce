"""The layers of docs/architecture.md hold: the import-linter contracts in pyproject.toml are
kept (the same check as ``make lint``'s ``lint-imports``), and no module of ``src/`` takes part
in an import cycle, imports inside functions included."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

importlinter_cli = pytest.importorskip(
    "importlinter.cli",
    reason="import-linter is not installed (it is in the dev extra: pip install -e '.[dev]'); "
           "the architecture contracts are not checked",
)


def test_import_contracts_are_kept(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = importlinter_cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"),
                                         no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, f"import-linter contracts broken (see docs/architecture.md):\n{out}"
    assert "broken" in out and " 0 broken" in out


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_in_src():
    import grimp

    graph = grimp.build_graph("losslab", exclude_type_checking_imports=True, cache_dir=None)
    assert _cycles(graph) == []
