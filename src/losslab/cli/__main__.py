"""``python -m losslab.cli``: the ``losslab`` command."""

from . import main

raise SystemExit(main())
