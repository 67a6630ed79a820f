"""Helpers for the SSH collector tests and bench: canned ``ip -j`` outputs captured from
namespaces (``capture.py``) and handlers that serve them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, Mapping

from anycast_tui.collect.commands import LINUX_POLL
from anycast_tui.lab.sshserver import CommandResult

FIXTURES = Path(__file__).resolve().parent


def canned(role: str) -> dict[str, str]:
    """Command line -> stdout for a ``spine`` or ``leaf``."""
    return {c.line: (FIXTURES / role / f"{c.id}.out").read_text() for c in LINUX_POLL}


def not_found(line: str) -> CommandResult:
    return CommandResult("", f"bash: {line.split()[0]}: command not found\n", 127)


class CannedDevice:
    """A handler answering from canned outputs; records commands and how many polls overlap."""

    def __init__(self, role: str, *, overrides: Mapping[str, CommandResult] | None = None,
                 gate: asyncio.Event | None = None, delay_s: float = 0.0):
        self.outputs = canned(role)
        self.overrides = dict(overrides or {})
        self.gate = gate
        self.delay_s = delay_s
        self.calls: list[str] = []
        # A poll runs every LINUX_POLL command once: the k-th run of a line belongs to poll k.
        self._runs: dict[str, int] = {}
        self._done: dict[int, int] = {}
        self.active_polls: set[int] = set()
        self.max_active_polls = 0

    def poll_size(self, poll: int) -> int:
        """Commands in poll ``poll`` (1-based) of one connection, polls less than 10 s apart: the poller asks
        for buckets only while nexthops show a resilient group, and for the hash sysctls once per connection
        and then every ``sysctl_interval_s`` (both always in the first poll)."""
        if poll == 1:
            return len(LINUX_POLL)
        nexthops = next(c.line for c in LINUX_POLL if c.id == "nexthops")
        resilient = "resilient" in (self.overrides.get(nexthops) or CommandResult(self.outputs[nexthops])).stdout
        return len(LINUX_POLL) - 1 - (0 if resilient else 1)

    async def __call__(self, line: str) -> CommandResult:
        self.calls.append(line)
        if line not in self.outputs:  # not a poll command (ip monitor, ip -V ...): no poll bookkeeping
            return self.overrides.get(line) or not_found(line)
        poll = self._runs[line] = self._runs.get(line, 0) + 1
        self.active_polls.add(poll)
        self.max_active_polls = max(self.max_active_polls, len(self.active_polls))
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if line in self.overrides:
                return self.overrides[line]
            if line in self.outputs:
                return CommandResult(self.outputs[line])
            return not_found(line)
        finally:
            self._done[poll] = self._done.get(poll, 0) + 1
            if self._done[poll] == self.poll_size(poll):
                self.active_polls.discard(poll)


async def wait_for(predicate: Callable[[], bool], *, limit_s: float = 10.0) -> None:
    """Yield to the loop until ``predicate()`` holds (``limit_s`` only guards against a hung test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
