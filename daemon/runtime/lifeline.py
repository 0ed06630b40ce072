"""Child processes die with tandemd, even when tandemd is killed with SIGKILL."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "TANDEM_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """If started by tandemd, ask the kernel to SIGKILL us when it exits (Linux only)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):  # tandemd already died before prctl took effect
        os._exit(1)
