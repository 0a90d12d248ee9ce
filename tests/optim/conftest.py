"""Share the one-thread fixture of ``tests/diagnostics/conftest.py`` (a single definition).

Loaded by path: the test folders are not packages, and ``tests/conftest.py`` belongs to the
whole suite, so neither a package import nor a common parent conftest is available.
"""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "diagnostics" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_losslab_diagnostics_conftest", _path)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

_one_thread = _module._one_thread
