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
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from anycast_tui.collect.commands import OPTIONAL_IDS, poll_commands
from anycast_tui.collect.devicestate import assemble, failed_state, ok_health, with_rib_watch
from anycast_tui.collect.inventory import Inventory
from anycast_tui.collect.poller import Poller
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import Device, DeviceState, Event, FabricSnapshot, Health, Role

if TYPE_CHECKING:
    from anycast_tui.model.timeline import Change

DEFAULT_PREFIXES = ("192.0.2.53/32",)


class Session(Protocol):
    """What the commands run, and the trackers, recorder, metrics and TUI follow: a fabric kept on a timeline.

    ``LiveSession`` (SSH or netlink polls) and ``fleet.source.NatsSource`` (the collectors' states on NATS) are
    sessions.  A session's poll times (``metrics.PollTimes``) are handed on beside it by the caller that made it
    (``LiveSession.poller``): a bus viewer polls nothing."""

    @property
    def timeline(self) -> Timeline: ...

    @property
    def interval_s(self) -> float: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Health]: ...


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


async def follow(session: Session, seconds: float, emit: Callable[[Event], None]) -> int:
    """Run ``session`` for ``seconds`` and hand every new event to ``emit``; the number of events."""
    seen = 0

    def on_change(change: Change) -> None:
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


class Answer(Protocol):
    """One command line's answer (``lab.sshserver.CommandResult``)."""

    @property
    def stdout(self) -> str: ...

    @property
    def exit_status(self) -> int: ...


class Simulator(Protocol):
    """What a SimSession reads of a simulated fabric (``lab.sim.SimFabric``)."""

    @property
    def devices(self) -> tuple[str, ...]: ...

    def roles(self) -> dict[str, Role]: ...

    def is_up(self, name: str) -> bool: ...

    def handle(self, device: str, command_line: str) -> Answer: ...


class SimSession:
    """A session over an in-process simulator, polled explicitly: same commands and parsers as SSH, no network.

    For deterministic screenshots, snapshot tests and benchmarks: ``poll()``
    asks every device its LINUX_POLL outputs (and the flow commands of
    ``flow_sources``: the simulator answers ``ss``), assembles them as the SSH
    poller does (``collect.devicestate``) and updates the timeline at the
    injected clock's time; a failed device keeps its last good data, STALE (as
    the poller reports an unreachable device).  The simulator has no FRR
    (``vtysh`` is not found there), so its states carry no RIB.
    """

    def __init__(self, sim: Simulator, *, clock: Callable[[], float] = time.time,
                 prefixes: tuple[str, ...] = DEFAULT_PREFIXES, unreachable: str = "connection refused",
                 flow_sources: tuple[str, ...] = ()) -> None:
        self.sim = sim
        self.clock = clock
        self.unreachable = unreachable
        self.prefixes = prefixes
        self.commands = poll_commands("sim", None, flow_sources)
        self.flow_sources = flow_sources
        self.timeline = Timeline(anycast_prefixes=prefixes, clock=clock)

    def _read(self, name: str) -> dict[str, str]:
        """The device's outputs; an optional command it does not answer (``conntrack``) is left out."""
        out = {}
        for c in self.commands:
            res = self.sim.handle(name, c.line)
            if c.id not in OPTIONAL_IDS or res.exit_status == 0:
                out[c.id] = res.stdout
        return out

    def poll(self, order: Sequence[str] | None = None) -> FabricSnapshot | None:
        """Poll every device once, in ``order`` (default: the simulator's), each updating the timeline."""
        roles = self.sim.roles()
        for name in (order if order is not None else self.sim.devices):
            now = int(self.clock() * 1000)
            snap = self.timeline.snapshot
            device = Device(name, roles[name], "sim")
            prev = snap.devices.get(name) if snap is not None else None
            prev = prev if prev is not None else DeviceState(device)
            if self.sim.is_up(name):
                state = assemble(device, self._read(name), collected_at_ms=now, health=ok_health(prev.health, now),
                                 flow_prefixes=self.prefixes if self.flow_sources else None).state
                state = with_rib_watch(prev, state)
            else:
                state = failed_state(prev, now, f"{name}: {self.unreachable}")
            self.timeline.update(state)
        return self.timeline.snapshot

    async def start(self) -> None:
        """Nothing runs on its own: call :meth:`poll`."""

    async def stop(self) -> None:
        """Nothing to stop."""
