"""A live session's sampled traffic: what the flow-export collector hands over, kept for the model.

``SampledTraffic.sink(device, samples)`` (the collector's sink, on the event loop) adds samples to the rolling
window (``model.sampled.SampledWindow``: the flow source incidents count as "sampled") and queues those with
an output port for the placement check; ``flush()`` (once a second, off the hot path) compares them with the
model on each device's newest collected state (``model.placement_check``).  ``sampled_of`` is what
``IncidentTracker`` passes to ``incident_impact``: the flows alive before an onset.

Headless (no textual).  Bounded: the window has its own bound; at most ``PENDING_MAX`` samples per device wait
for the check, the rest are counted as not checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from typing import Callable, Mapping

from anycast_tui.collect.flowexport import DEFAULT_PORT, FlowExportCollector
from anycast_tui.model.placement_check import DeviceAgreement, PlacementCheck
from anycast_tui.model.sampled import MAX_FLOWS, WINDOW_S, SampledFlowSet, SampledWindow
from anycast_tui.model.samples import FlowSample
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import HealthStatus, Role

log = logging.getLogger(__name__)
PENDING_MAX = 20_000
FLUSH_S = 1.0


class SampledTraffic:
    def __init__(self, timeline: Timeline, roles: Mapping[str, Role], *, window_s: float = WINDOW_S,
                 max_flows: int = MAX_FLOWS) -> None:
        self.timeline = timeline
        self.roles = dict(roles)
        self.window = SampledWindow(timeline.anycast_prefixes, window_s=window_s, max_flows=max_flows)
        self.check = PlacementCheck()
        self._pending: dict[str, list[FlowSample]] = {}
        self._lock = threading.Lock()
        self.not_checked = 0  # samples with an output port dropped from the check queue (bounded)
        self.suspects: dict[str, DeviceAgreement] = {}  # devices called exact that disagree (newest)

    def sink(self, device: str, samples: list[FlowSample]) -> None:
        self.window.add(device, self.roles.get(device, Role.OTHER), samples)
        ported = [s for s in samples if s.output_if is not None and self.window.wanted(s.dst)]
        if ported:
            with self._lock:
                q = self._pending.setdefault(device, [])
                room = PENDING_MAX - len(q)
                q.extend(ported[:max(room, 0)])
                self.not_checked += max(len(ported) - max(room, 0), 0)

    def flush(self, now: float | None = None) -> list[DeviceAgreement]:
        """Check the queued samples; returns devices that became suspect (called exact, disagreeing)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        snap = self.timeline.snapshot
        newly: list[DeviceAgreement] = []
        for device, samples in pending.items():
            state = snap.devices.get(device) if snap is not None else None
            if state is None or state.health.status is not HealthStatus.OK or not state.routes:
                self.not_checked += len(samples)
                continue
            agreement = self.check.add(state, samples)
            if agreement.suspect and device not in self.suspects:
                newly.append(agreement)
            if agreement.suspect:
                self.suspects[device] = agreement
        if now is not None:
            self.window.expire(now)
        return newly

    def agreement(self, device: str) -> DeviceAgreement | None:
        a = self.check.get(device)
        return a if a.compared else None

    def agreements(self) -> dict[str, DeviceAgreement]:
        """Per device with compared samples: its agreement (the Fabric view's placement column)."""
        return {d: a for d, a in self.check.all().items() if a.compared}

    def sampled_of(self, prefix: str, before_ms: int) -> SampledFlowSet | None:
        t = before_ms / 1000.0
        return self.window.flow_set(prefix, now=t, seen_by=t)

    def flow_set(self, prefix: str, now: float) -> SampledFlowSet | None:
        return self.window.flow_set(prefix, now=now)


def agent_map(devices: Mapping[str, tuple[str, str | None]]) -> dict[str, str]:
    """Exporter address -> device: each device's ``sflow_agent`` when set, else its host when that is an IP
    address (a name is not resolved: an exporter is known by its address).  ``devices``: name -> (host, agent)."""
    out: dict[str, str] = {}
    for name, (host, agent) in devices.items():
        for addr in (agent, host):
            if not addr:
                continue
            try:
                out.setdefault(str(ipaddress.ip_address(addr)), name)
            except ValueError:
                continue
    return out


class FlowExport:
    """A running flow-export collector feeding a ``SampledTraffic``, with the periodic placement check.

    ``on_suspect(agreement)``: a device the model calls exact disagrees with its own samples (the monitor
    prints / shows it)."""

    def __init__(self, traffic: SampledTraffic, agents: Mapping[str, str], *, host: str = "0.0.0.0",
                 port: int = DEFAULT_PORT, sock: socket.socket | None = None,
                 on_suspect: Callable[[DeviceAgreement], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.traffic = traffic
        self.collector = FlowExportCollector(agents, traffic.sink, host=host, port=port, sock=sock, clock=clock)
        self.on_suspect = on_suspect
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.collector.start()
        self._task = asyncio.create_task(self._flush_loop(), name="flow-export-check")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.flush()

    def flush(self) -> None:
        try:
            newly = self.traffic.flush(self.clock())
        except Exception:  # a model bug must not stop collection
            log.exception("placement check failed")
            return
        if self.on_suspect is not None:
            for agreement in newly:
                self.on_suspect(agreement)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.collector.close()
        self.flush()

    def lines(self) -> list[str]:
        """What was received, per exporter, and the placement check per device (headless summary)."""
        out = [f"flow export on {self.collector.listening}: " + line for line in self.collector.lines()]
        for name, a in self.traffic.check.all().items():
            if a.compared:
                out.append(f"placement checked on {name}: {a.text} samples agree"
                           + (f" ({len(a.disagreements)} newest disagreements kept)" if a.disagreements else ""))
        if not out:
            out.append(f"flow export on {self.collector.listening}: nothing received")
        return out
