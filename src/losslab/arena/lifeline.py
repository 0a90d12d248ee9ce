"""Worker processes die with the process that started them.

A pool worker killed with its driver (``kill -9``, an out-of-memory kill, a closed terminal)
would otherwise be re-parented to PID 1 and keep training, or block forever on the pipe to a
driver that is gone. Two mechanisms, either of which suffices:

* on Linux, the kernel's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), set as
  the worker starts;
* everywhere, a daemon thread in the worker that checks twice a second whether its parent is
  still the process that started it, and ends the worker at once when it is not.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group, workers included.
The driver alone handles it (it stops the pool and says how to resume), so SIGINT is blocked
while workers are started (a blocked signal stays blocked across ``exec``, so a worker never
turns it into a ``KeyboardInterrupt`` traceback of its own) and ignored in the workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def _set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)  # the driver is gone: nobody will read this worker's result
        time.sleep(WATCH_INTERVAL_S)


def bind_to_parent(parent_pid: int) -> None:
    """Process-pool initializer: tie this worker's life to ``parent_pid`` (the driver)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):  # unblock the mask the driver set
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _set_parent_death_signal()
    # The driver may have died before the signal was armed (the worker was importing).
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="losslab-lifeline",
                     daemon=True).start()


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while child processes are started; a Ctrl-C that arrives
    meanwhile is delivered (as ``KeyboardInterrupt``) when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
