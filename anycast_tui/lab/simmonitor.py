"""A streaming ``ip -o monitor route link nexthop`` for the simulated fabric.

The simulator answers single commands; this wraps a device's handler so the
monitor line gets an async iterator of lines instead.  It sleeps until the
simulator reports a state change (:meth:`SimFabric.subscribe`; or, with
``poll_s``, looks at :attr:`SimFabric.generation` every ``poll_s`` seconds)
and then prints the device's route lines that disappeared (``Deleted
<route>``, as iproute2 does) and appeared.  Idle, it costs nothing.  Links and nexthop
objects show through their routes.  The stream ends when the device fails
(its SSH connection would be gone).
"""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator

from anycast_tui.collect.commands import MONITOR
from anycast_tui.lab.sim import SimFabric
from anycast_tui.lab.sshserver import CommandResult, Handler

ROUTE_LINES = ("ip -4 route show table all", "ip -6 route show table all")


def routes_of(sim: SimFabric, device: str) -> list[str] | None:
    """The device's routes, one line each as ``ip -o`` prints them (``\\`` for line breaks); None when down.

    What :func:`monitor_lines` compares between two states of the simulation."""
    out: list[str] = []
    for line in ROUTE_LINES:
        res = sim.handle(device, line)
        if res.exit_status != 0:
            return None
        for ln in res.stdout.splitlines():
            if not ln.strip():
                continue
            if ln[0].isspace() and out:
                out[-1] += "\\" + ln
            else:
                out.append(ln)
    return out


async def monitor_lines(sim: SimFabric, device: str, *, poll_s: float | None = None) -> AsyncIterator[str]:
    """Lines ``ip -o monitor`` would print on ``device`` while the simulation changes.

    ``poll_s=None``: woken by the simulator's change notification (the state may change on any thread);
    a number: poll its generation that often (the former behaviour, kept as a benchmark baseline).
    """
    before = routes_of(sim, device)
    if before is None:
        return
    gen = sim.generation
    unsubscribe = None
    wake = asyncio.Event()
    if poll_s is None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def changed() -> None:
            if threading.get_ident() == loop_thread:
                wake.set()
            else:
                try:
                    loop.call_soon_threadsafe(wake.set)
                except RuntimeError:  # the loop is closed: nobody is listening any more
                    pass

        unsubscribe = sim.subscribe(changed)
    try:
        while True:
            if poll_s is None:
                await wake.wait()
                wake.clear()
            else:
                await asyncio.sleep(poll_s)
            if sim.generation == gen:
                continue
            gen = sim.generation
            after = routes_of(sim, device)
            if after is None:
                return
            gone, new = set(before) - set(after), set(after) - set(before)
            for line in before:
                if line in gone:
                    yield f"Deleted {line}"
            for line in after:
                if line in new:
                    yield line
            before = after
    finally:
        if unsubscribe is not None:
            unsubscribe()


def with_monitor(sim: SimFabric, device: str, *, poll_s: float | None = None) -> Handler:
    """The device's SSH-farm handler, answering the monitor line with a stream (see :func:`monitor_lines`)."""
    base = sim.handler(device)

    def handle(line: str) -> CommandResult | AsyncIterator[str]:
        if line == MONITOR.line:
            return monitor_lines(sim, device, poll_s=poll_s)
        return base(line)

    return handle
