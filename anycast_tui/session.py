"""A live monitoring session: a Poller feeding a Timeline.

Headless (no textual): the TUI, headless commands, record/replay and tests all
drive the same object.  The poller runs as asyncio tasks on the caller's loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from anycast_tui.collect.inventory import Inventory
from anycast_tui.collect.poller import Poller
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import Event, FabricSnapshot, Health

DEFAULT_PREFIXES = ("192.0.2.53/32",)


class LiveSession:
    """Owns the poller (``on_state`` → ``timeline.update``) and exposes the timeline and per-device health."""

    def __init__(self, inventory: Inventory, *, interval_s: float | None = None, timeline: Timeline | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.inventory = inventory
        self.timeline = timeline or Timeline(anycast_prefixes=inventory.anycast_prefixes or DEFAULT_PREFIXES,
                                             clock=clock)
        self.poller = Poller(inventory, interval_s=interval_s, on_state=self.timeline.update, clock=clock)
        self.running = False

    @property
    def interval_s(self) -> float:
        return self.poller.interval_s

    async def start(self) -> None:
        """Start polling every device (returns at once; polls run as tasks)."""
        if not self.running:
            await self.poller.start()
            self.running = True

    async def stop(self) -> None:
        """Stop polling and close every connection."""
        if self.running:
            self.running = False
        await self.poller.stop()

    async def poll_once(self) -> FabricSnapshot | None:
        """Poll every device once now (the timeline is updated per device); the timeline's snapshot."""
        await self.poller.poll_once()
        return self.timeline.snapshot

    def health(self) -> dict[str, Health]:
        """Latest health of every inventory device (UNKNOWN until its first poll ends)."""
        snap = self.timeline.snapshot
        devices = snap.devices if snap is not None else {}
        return {name: devices[name].health if name in devices else Health() for name in self.inventory.names}

    async def __aenter__(self) -> "LiveSession":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def follow(session: LiveSession, seconds: float, emit: Callable[[Event], None]) -> int:
    """Run ``session`` for ``seconds`` and hand every new event to ``emit``; the number of events."""
    seen = 0

    def on_change(change) -> None:  # noqa: ANN001 - timeline Change
        nonlocal seen
        for ev in change.events:
            seen += 1
            emit(ev)

    unsubscribe = session.timeline.subscribe(on_change)
    try:
        await session.start()
        await asyncio.sleep(seconds)
    finally:
        unsubscribe()
        await session.stop()
    return seen
