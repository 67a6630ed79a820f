"""A benchmark's SSH farm in a child process (so the client's CPU and memory are its own): the child prints one
JSON line saying how to reach it, then serves until its stdin closes.  Used by bench_poll and bench_answer_rss."""

from __future__ import annotations

import json
import subprocess
import sys


class ChildServer:
    """``python3 SCRIPT ARGS...`` started now; ``info`` is its first line of output, parsed."""

    def __init__(self, script: str, args: list[str], *, stop_s: float = 20.0):
        self.stop_s = stop_s
        self.proc = subprocess.Popen([sys.executable, script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        """Close its stdin (it stops its farm) and wait for it; kill it after ``stop_s``."""
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(self.stop_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
