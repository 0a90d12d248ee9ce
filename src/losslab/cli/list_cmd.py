"""``losslab list``: the registry as a table."""

from __future__ import annotations

import argparse
from typing import Any

from .._core.registry import list_losses


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def run(args: argparse.Namespace) -> int:
    infos = list_losses(kind=args.kind, family=args.family)
    rows = []
    for info in infos:
        defaults = _short(", ".join(f"{k}={v!r}" for k, v in info.defaults.items()), 70)
        paper = f"{_short(info.paper.title, 48)} ({info.paper.year})"
        rows.append([info.name, info.family, info.kind, paper, defaults])
    print(format_table(rows, ["name", "family", "kind", "paper", "defaults"]))
    print(f"\n{len(rows)} losses")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="list the registered losses")
    p.add_argument("--kind", default=None, help="filter by kind (logits, embeddings, ...)")
    p.add_argument("--family", default=None, help="filter by family (softmax, robust, ...)")
    p.set_defaults(func=run)
