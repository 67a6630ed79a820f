"""A network namespace as an SSH device: the collector's fixed lines run in it, the monitor as a stream.

Serve it with ``SSHFarm({"r1": NamespaceDevice(ns)})``: real SSH, this machine's real iproute2, sysctl and
ss, the namespace's real kernel state.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import subprocess
import sys
from typing import AsyncIterator, Iterator

from anycast_tui.collect.commands import COLLECTOR_LINES, MONITOR
from anycast_tui.lab.sshserver import CommandResult


class NamespaceDevice:
    """Runs the collector's fixed lines in a namespace (``ip -n NS ...``); the monitor as a stream; ``vtysh``
    reaches the FRR whose vty sockets are in ``vty`` (none: the system's)."""

    def __init__(self, ns: str, vty: str | None = None):
        self.ns = ns
        self.vty = vty
        self.monitors = 0

    async def __call__(self, line: str) -> "CommandResult | AsyncIterator[str]":
        if line not in COLLECTOR_LINES:
            return CommandResult("", "not allowed\n", 126)
        argv = shlex.split(line)
        if line == MONITOR.line:
            return self._monitor(argv)
        if argv[0] == "vtysh" and self.vty:
            argv = ["vtysh", "--vty_socket", self.vty, *argv[1:]]
        if argv[0] == "ip" and argv[1] != "-V":
            argv = ["ip", "-n", self.ns, *argv[1:]]
        elif argv[0] != "ip":
            argv = ["ip", "netns", "exec", self.ns, *argv]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return CommandResult(out.decode(), err.decode(), proc.returncode or 0)

    async def _monitor(self, argv: list[str]) -> AsyncIterator[str]:
        proc = await asyncio.create_subprocess_exec("ip", "-n", self.ns, *argv[1:], stdout=asyncio.subprocess.PIPE)
        self.monitors += 1
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                yield raw.decode().rstrip("\n")
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


@contextlib.contextmanager
def python_in(ns: str, code: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``code`` with this Python in ``ns`` until the block ends; it prints ``ready`` once set up and runs
    until its stdin closes (then it is waited for, killed if it does not end)."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
