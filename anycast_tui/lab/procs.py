"""The lab's own processes: pid files, liveness by pid *and* title (pid reuse), stopping by pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def read_pid(path: Path) -> int | None:
    """The pid a pid file names (its first word), None when there is none."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int, marker: str) -> bool:
    """True if ``pid`` runs and its command line (or the title a daemon gave itself) contains ``marker``."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmd


def kill(pid: int, marker: str) -> bool:
    """SIGTERM ``pid`` if it is alive with ``marker``, SIGKILL after 2 s; True if it was signalled."""
    if not alive(pid, marker):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid, marker):
                return True
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
