"""Plot of the fused cross-entropy grid (``fused_ce.py --grid --plot``): time against the
three-GEMM floor and extra memory against the vocabulary size, one line per (D, method).

    .venv/bin/python benchmarks/_fused_ce_plot.py benchmarks/results/fused_ce_grid.csv
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "fused_ce_grid.png"
STYLE = {"floor": ("black", "-"), "losslab": ("tab:blue", "-"), "torch": ("tab:red", "--"),
         "cce": ("tab:green", ":")}
MARK = {512: "o", 2048: "s", 4096: "^"}


def plot_grid(rows: list[dict[str, Any]], threads: str, out: Path = OUT) -> Path:
    """Two panels from the grid's rows (keys shape 'NxDxV', method, x_floor, extra_MiB),
    measured with ``threads`` torch threads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[tuple[int, str], list[tuple[int, float, float, int]]] = defaultdict(list)
    for r in rows:
        if not r.get("x_floor"):
            continue
        n, d, v = (int(x) for x in str(r["shape"]).split("x"))
        lines[(d, str(r["method"]))].append((v, float(r["x_floor"]), float(r["extra_MiB"]), n))
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.8))
    for (d, method), pts in sorted(lines.items()):
        pts.sort()
        color, dash = STYLE.get(method, ("tab:gray", "-."))
        vs = [p[0] // 1024 for p in pts]
        kw = dict(color=color, linestyle=dash, marker=MARK.get(d, "x"),
                  label=f"{method}, D={d}")
        if method != "floor":
            ax_t.plot(vs, [p[1] for p in pts], **kw)
        ax_m.plot(vs, [max(p[2], 0.1) for p in pts], **kw)
    ax_t.axhline(1.10, color="gray", linewidth=0.8, linestyle="--")
    ax_t.set(xscale="log", yscale="log", xlabel="vocabulary V (k)",
             ylabel="forward+backward time / three-GEMM floor",
             title=f"time (fp32, {threads} thread(s); dashed line: 1.10×)")
    ax_m.set(xscale="log", yscale="log", xlabel="vocabulary V (k)",
             ylabel="extra MiB beyond inputs and gradients",
             title="memory (the floor's is the logits)")
    for ax in (ax_t, ax_m):
        ax.set_xticks([32, 128, 256], labels=["32k", "128k", "256k"])
        ax.minorticks_off()
    ax_t.set_yticks([1, 1.1, 1.5, 2, 5, 10], labels=["1", "1.1", "1.5", "2", "5", "10"])
    ax_m.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    if len(sys.argv) > 2:  # only the rows of one run: its timestamp
        rows = [r for r in rows if r["when"] == sys.argv[2]]
    print(plot_grid(rows, rows[0]["threads"]))


if __name__ == "__main__":
    main()
