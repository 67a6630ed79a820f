"""Poll every device of an inventory concurrently and keep the latest state of each.

Each device has its own loop: its next poll starts ``interval_s`` after the
previous one started, or as soon as it finished if it overran; polls of one
device never overlap.  A failing device keeps its last good data marked STALE
(ERROR if it never had any) with a one-line reason, while the others go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Callable, Mapping, Protocol

from anycast_tui.collect.commands import PLATFORM_POLL, Command
from anycast_tui.collect.inventory import DeviceConfig, Inventory
from anycast_tui.collect.ssh import CollectError, SSHSession
from anycast_tui.model.types import Device, DeviceState, FabricSnapshot, Health, HealthStatus
from anycast_tui.parse.errors import ParseError

log = logging.getLogger(__name__)


class StateBuilder(Protocol):
    def __call__(self, device: Device, outputs: Mapping[str, str], *, collected_at_ms: int,
                 health: Health) -> DeviceState: ...


def _default_builder() -> StateBuilder:
    from anycast_tui.parse.device import build_device_state

    return build_device_state


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Device:
    """One device's session, latest state and poll bookkeeping."""

    def __init__(self, cfg: DeviceConfig):
        self.cfg = cfg
        self.device = cfg.device
        self.commands: tuple[Command, ...] = PLATFORM_POLL[cfg.platform]
        self.session = SSHSession(cfg)
        self.state = DeviceState(self.device)
        self.lock = asyncio.Lock()
        self.polls = 0


class Poller:
    """Concurrent, non-overlapping polling of an inventory over SSH."""

    def __init__(self, inventory: Inventory, *, interval_s: float | None = None,
                 on_state: Callable[[DeviceState], None] | None = None,
                 clock: Callable[[], float] = time.time, builder: StateBuilder | None = None):
        self.inventory = inventory
        self.interval_s = inventory.poll_interval_s if interval_s is None else interval_s
        self.on_state = on_state
        self._clock = clock
        self._builder = builder
        self._devices = {d.name: _Device(d) for d in inventory.devices}
        self._tasks: list[asyncio.Task[None]] = []

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def session(self, name: str) -> SSHSession:
        return self._devices[name].session

    def polls(self, name: str) -> int:
        """How many polls of ``name`` have completed."""
        return self._devices[name].polls

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._loop(d), name=f"poll {n}") for n, d in self._devices.items()]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(d.session.close() for d in self._devices.values()), return_exceptions=True)

    async def __aenter__(self) -> "Poller":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _loop(self, dev: _Device) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await self._poll(dev)
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - t0)))

    # ------------------------------------------------------------------ polling

    async def poll_once(self) -> FabricSnapshot:
        """One full poll of every device, concurrently; the resulting snapshot."""
        await asyncio.gather(*(self._poll(d) for d in self._devices.values()))
        return self.snapshot()

    def snapshot(self) -> FabricSnapshot:
        """Latest state of every device (inventory order)."""
        return FabricSnapshot(self._now_ms(), {n: d.state for n, d in self._devices.items()},
                              self.inventory.anycast_prefixes)

    async def _poll(self, dev: _Device) -> DeviceState:
        async with dev.lock:
            try:
                state = await self._collect(dev)
            except CollectError as exc:
                state = self._failed(dev, exc.message, exc.permanent)
            except ParseError as exc:
                state = self._failed(dev, parse_reason(exc, dev.commands), False)
            except Exception as exc:  # a parser bug must not stop the loop, nor pass silently
                log.exception("%s: building the device state failed", dev.cfg.name)
                state = self._failed(dev, _one_line(f"internal error: {type(exc).__name__}: {exc}"), False)
            dev.state = state
            dev.polls += 1
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:
                log.exception("on_state callback failed for %s", dev.cfg.name)
        return state

    async def _collect(self, dev: _Device) -> DeviceState:
        outputs = await dev.session.run_many(dev.commands)
        now = self._now_ms()
        prev = dev.state.health
        since = prev.since_ms if prev.status is HealthStatus.OK and prev.since_ms is not None else now
        health = Health(HealthStatus.OK, since_ms=since, last_ok_ms=now)
        builder = self._builder or _default_builder()
        return builder(dev.device, {k: o.stdout for k, o in outputs.items()}, collected_at_ms=now, health=health)

    def _failed(self, dev: _Device, reason: str, permanent: bool) -> DeviceState:
        now = self._now_ms()
        prev = dev.state
        failing = prev.health.status in (HealthStatus.STALE, HealthStatus.ERROR)
        since = prev.health.since_ms if failing and prev.health.since_ms is not None else now
        last_ok = prev.health.last_ok_ms
        status = HealthStatus.STALE if last_ok is not None else HealthStatus.ERROR
        health = Health(status, since_ms=since, error=reason, last_ok_ms=last_ok, permanent=permanent)
        if status is HealthStatus.ERROR:
            return DeviceState(dev.device, health=health)
        return dataclasses.replace(prev, health=health)


def parse_reason(exc: ParseError, commands: tuple[Command, ...]) -> str:
    """One line naming the command and the line: ``routes4: line 12: reason: 'text'``.

    The command id is taken from ``kind`` when it is one, else from a ``"<id>: "``
    prefix of the reason, else from the one command of that parser kind.
    """
    ids = [c.id for c in commands]
    reason, cid = exc.reason, None
    if exc.kind in ids:
        cid = exc.kind
    for i in ids:
        if reason.startswith(f"{i}: "):
            cid, reason = i, reason[len(i) + 2:]
            break
    if cid is None:
        kinds = [c.id for c in commands if c.kind == exc.kind]
        cid = kinds[0] if len(kinds) == 1 else exc.kind
    where = f"line {exc.line}" if exc.line else "input"
    snippet = ""
    if exc.text is not None and exc.text.strip():
        t = exc.text.strip()
        snippet = f": {t[:60]!r}" + ("…" if len(t) > 60 else "")
    return _one_line(f"{cid + ': ' if cid else ''}{where}: {reason}{snippet}")
