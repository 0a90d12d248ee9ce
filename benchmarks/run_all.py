"""Run every benchmark script in this folder (``make bench``); helpers start with ``_``.

Each script runs in its own interpreter with no arguments; a failing script is reported
and the others still run. Exit status is non-zero if any script failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py")
                     if not p.name.startswith("_") and p.name != Path(__file__).name)
    failed = []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"=== {script.name}: exit {code} after {time.perf_counter() - t0:.0f}s", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
