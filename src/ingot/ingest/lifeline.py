"""Children that die with their parent, so a ``kill -9`` of the server leaves no orphans.

multiprocessing's forkserver only exits once every holder of its "alive" pipe is gone,
and an extraction child keeps parsing (OCR: minutes) after both are dead; the resource
tracker lives as long as any of them holds its pipe. On Linux the kernel can send a
signal to a process when its parent ends (``prctl(PR_SET_PDEATHSIG)``), which no
watchdog can miss and which costs nothing while the parent lives. The signal follows the
parent *thread* that forked the child, which is why the server starts the forkserver from
its main thread (``runner.start_forkserver``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> bool:
    """Have the kernel send ``sig`` to this process when its parent ends (Linux only;
    returns whether it was arranged). With ``parent`` (the pid that should still be
    alive), exit at once if it is already gone: it may have died before the call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        arranged = libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:
        os._exit(1)
    return arranged
