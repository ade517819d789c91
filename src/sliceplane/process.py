"""Child processes that cannot outlive the command that started them.

`sliceplane up` and `sliceplane bench` run their roles as child processes. If the parent dies
without stopping them (SIGKILL, a crash), orphaned roles would keep their ports and, for `up`,
write into the same data directory beside the next run's.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: children outlive a killed parent
        pass
