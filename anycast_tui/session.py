"""A live monitoring session: a Poller feeding a Timeline.

Headless (no textual): the TUI, headless commands, record/replay and tests all
drive the same object.  The poller runs as asyncio tasks on the caller's loop.
The trackers that follow a session's timeline live beside it: ``impacttracker.py``
(hop-local impact per event, the Flows view's traces), ``incidenttracker.py``,
``healthwatch.py`` (the health checks as events), ``sampledtraffic.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Sequence

from anycast_tui.collect.inventory import Inventory
from anycast_tui.collect.poller import Poller
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import DeviceState, Event, FabricSnapshot, Health

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
        # Every device is shown from the start ("? waiting for first poll"); UNKNOWN → OK is not an event.
        known = self.timeline.snapshot.devices if self.timeline.snapshot is not None else {}
        for d in inventory.devices:
            if d.name not in known:
                self.timeline.update(DeviceState(d.device))

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


class SimSession:
    """A session over an in-process simulator, polled explicitly: same commands and parsers as SSH, no network.

    For deterministic screenshots, snapshot tests and benchmarks: ``poll()``
    asks every device its LINUX_POLL outputs, parses them and updates the
    timeline at the injected clock's time; a failed device keeps its last good
    data, STALE (as the poller reports an unreachable device).
    """

    def __init__(self, sim, *, clock: Callable[[], float] = time.time,  # noqa: ANN001 - lab.sim.SimFabric
                 prefixes: tuple[str, ...] = DEFAULT_PREFIXES, unreachable: str = "connection refused") -> None:
        self.sim = sim
        self.clock = clock
        self.unreachable = unreachable
        self.timeline = Timeline(anycast_prefixes=prefixes, clock=clock)

    def poll(self, order: Sequence[str] | None = None) -> FabricSnapshot | None:
        """Poll every device once, in ``order`` (default: the simulator's), each updating the timeline."""
        import dataclasses

        from anycast_tui.collect.commands import LINUX_POLL
        from anycast_tui.model.types import Device, DeviceState, HealthStatus
        from anycast_tui.parse.device import build_device_state

        roles = self.sim.roles()
        for name in (order if order is not None else self.sim.devices):
            now = int(self.clock() * 1000)
            snap = self.timeline.snapshot
            prev = snap.devices.get(name) if snap is not None else None
            if self.sim.is_up(name):
                since = prev.health.since_ms if prev is not None and prev.health.status is HealthStatus.OK else now
                outputs = {c.id: self.sim.handle(name, c.line).stdout for c in LINUX_POLL}
                state = build_device_state(Device(name, roles[name], "sim"), outputs, collected_at_ms=now,
                                           health=Health(HealthStatus.OK, since_ms=since, last_ok_ms=now))
            else:
                failing = prev is not None and prev.health.status in (HealthStatus.STALE, HealthStatus.ERROR)
                since = prev.health.since_ms if failing and prev is not None else now
                last_ok = prev.health.last_ok_ms if prev is not None else None
                status = HealthStatus.STALE if last_ok is not None else HealthStatus.ERROR
                health = Health(status, since_ms=since, error=f"{name}: {self.unreachable}", last_ok_ms=last_ok)
                state = (dataclasses.replace(prev, health=health) if prev is not None and last_ok is not None
                         else DeviceState(Device(name, roles[name], "sim"), health=health))
            self.timeline.update(state)
        return self.timeline.snapshot

    async def start(self) -> None:
        """Nothing runs on its own: call :meth:`poll`."""

    async def stop(self) -> None:
        """Nothing to stop."""
