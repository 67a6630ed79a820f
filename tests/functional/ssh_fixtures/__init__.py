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
    """A handler answering from canned outputs; counts commands and overlapping polls."""

    def __init__(self, role: str, *, overrides: Mapping[str, CommandResult] | None = None,
                 gate: asyncio.Event | None = None, delay_s: float = 0.0):
        self.outputs = canned(role)
        self.overrides = dict(overrides or {})
        self.gate = gate
        self.delay_s = delay_s
        self.calls: list[str] = []
        self.in_flight: dict[str, int] = {}
        self.max_same_in_flight = 0

    async def __call__(self, line: str) -> CommandResult:
        self.calls.append(line)
        self.in_flight[line] = self.in_flight.get(line, 0) + 1
        self.max_same_in_flight = max(self.max_same_in_flight, self.in_flight[line])
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
            self.in_flight[line] -= 1


async def wait_for(predicate: Callable[[], bool], *, limit_s: float = 10.0) -> None:
    """Yield to the loop until ``predicate()`` holds (``limit_s`` only guards against a hung test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
