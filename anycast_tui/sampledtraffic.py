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
from anycast_tui.collect.inventory import Inventory
from anycast_tui.model.placement_check import DeviceAgreement, PlacementCheck
from anycast_tui.model.sampled import MAX_FLOWS, WINDOW_S, SampledFlowSet, SampledWindow
from anycast_tui.model.samples import FlowSample
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import Event, EventKind, HealthStatus, Role

log = logging.getLogger(__name__)
PENDING_MAX = 20_000
FLUSH_S = 1.0
RECORD_S = 10.0  # a summary of the sampled traffic into the recording this often
RECORD_FLOWS = 1000  # the busiest flows kept per summary


class SampledTraffic:
    def __init__(self, timeline: Timeline, roles: Mapping[str, Role], *, window_s: float = WINDOW_S,
                 max_flows: int = MAX_FLOWS) -> None:
        self.timeline = timeline
        self.roles = dict(roles)
        self.window = SampledWindow(timeline.anycast_prefixes, window_s=window_s, max_flows=max_flows)
        self.check = PlacementCheck()
        self._pending: dict[str, list[FlowSample]] = {}
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()  # the check is fed on the flush thread, read by the UI
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
            with self._check_lock:
                agreement = self.check.add(state, samples)
            if agreement.suspect and device not in self.suspects:
                newly.append(agreement)
            if agreement.suspect:
                self.suspects[device] = agreement
        if now is not None:
            self.window.expire(now)
        return newly

    def agreement(self, device: str) -> DeviceAgreement | None:
        with self._check_lock:
            a = self.check.get(device)
        return a if a.compared else None

    def agreements(self) -> dict[str, DeviceAgreement]:
        """Per device with compared samples: its agreement (the Fabric view's placement column)."""
        with self._check_lock:
            return {d: a for d, a in self.check.all().items() if a.compared}

    def sampled_of(self, prefix: str, before_ms: int) -> SampledFlowSet | None:
        t = before_ms / 1000.0
        return self.window.flow_set(prefix, now=t, seen_by=t)

    def flow_set(self, prefix: str, now: float) -> SampledFlowSet | None:
        return self.window.flow_set(prefix, now=now)


def agent_map(devices: Mapping[str, tuple[str, str | None]]) -> dict[str, str]:
    """Exporter address -> device: each device's ``sflow_agent`` when set, else its host when that is an IP
    address (a name is not resolved: an exporter is known by its address); an address more than one device
    claims maps to none.  ``devices``: name -> (host, agent)."""
    agents: dict[str, set[str]] = {}
    hosts: dict[str, set[str]] = {}
    for name, (host, agent) in devices.items():
        for addr, into in ((agent, agents), (host, hosts)):
            try:
                into.setdefault(str(ipaddress.ip_address(addr or "")), set()).add(name)
            except ValueError:
                continue
    # an address several devices share (SSH through one proxy, a typo) names none of them: ambiguous
    out = {a: next(iter(n)) for a, n in hosts.items() if len(n) == 1 and a not in agents}
    out.update({a: next(iter(n)) for a, n in agents.items() if len(n) == 1})
    return out


class FlowExport:
    """A running flow-export collector feeding a ``SampledTraffic``, with the periodic placement check.

    ``on_suspect(agreement)``: a device the model calls exact disagrees with its own samples (the monitor
    prints / shows it)."""

    def __init__(self, traffic: SampledTraffic, agents: Mapping[str, str], *, host: str = "0.0.0.0",
                 port: int = DEFAULT_PORT, sock: socket.socket | None = None,
                 on_suspect: Callable[[DeviceAgreement], None] | None = None,
                 on_record: Callable[[dict], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.traffic = traffic
        self.on_record = on_record  # the recorder's record_sampled
        self._recorded_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.collector = FlowExportCollector(agents, traffic.sink, host=host, port=port, sock=sock, clock=clock)
        self.on_suspect = on_suspect
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.collector.start()
        self._task = asyncio.create_task(self._flush_loop(), name="flow-export-check")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await asyncio.to_thread(self.flush)  # the check runs beside the receive path, not in its way

    def flush(self) -> None:
        try:
            newly = self.traffic.flush(self.clock())
        except Exception:  # a model bug must not stop collection
            log.exception("placement check failed")
            return
        for agreement in newly:
            self._raise(agreement)
            if self.on_suspect is not None:
                self.on_suspect(agreement)
        now = self.clock()
        if self.on_record is not None and now - self._recorded_at >= RECORD_S and self.collector.stats_changed():
            self._recorded_at = now
            try:
                self.on_record(self.to_json(now))
            except Exception:
                log.exception("recording the sampled traffic failed")

    def _raise(self, a: DeviceAgreement) -> None:
        """A device modelled exact disagreeing with its own samples: an event on the timeline (shown, printed,
        recorded), handed to the loop that owns the timeline."""
        d = a.disagreements[-1] if a.disagreements else None
        event = Event(int(self.clock() * 1000), a.device, EventKind.PLACEMENT_DISAGREES, "placement",
                      f"{a.device}: modelled exact but {a.compared - a.agreed:,} of {a.compared:,} sampled packets "
                      f"left elsewhere than predicted"
                      + (f" (newest: {d.flow} predicted {d.predicted}, left on {d.observed})" if d else ""))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.traffic.timeline.add, [event])
        else:
            self.traffic.timeline.add([event])

    def to_json(self, now: float) -> dict:
        """The recording's summary: per prefix the window's busiest flows; per exporter its counters; per device
        the placement check with its newest disagreements."""
        prefixes = {}
        for prefix in self.traffic.timeline.anycast_prefixes:
            fs = self.traffic.flow_set(prefix, now)
            if fs is None:
                continue
            top = fs.packets.argsort()[::-1][:RECORD_FLOWS]
            flows = fs.flows
            rows = [[f.proto, f.src, f.sport, f.dst, f.dport, fs.entry_names[int(fs.entry[i])],
                     round(float(fs.packets[i]), 1), round(float(fs.octets[i]), 1), round(float(fs.last_seen[i]), 3)]
                    for i in top for f in (flows.flow(int(i)),)]
            prefixes[prefix] = {"flows": len(fs), "pps": round(fs.pps(), 3), "rate": fs.rate_text,
                                "window_s": fs.window_s,
                                "columns": ["proto", "src", "sport", "dst", "dport", "entry", "packets", "octets",
                                            "last_seen"], "top": rows}
        agents = {st.device: {"datagrams": st.datagrams, "samples": st.samples, "datagrams_lost": st.datagrams_lost,
                              "samples_lost": st.samples_lost, "drops": st.drops, "malformed": st.malformed,
                              "last_reason": st.last_reason}
                  for st in self.collector.stats.values() if st.datagrams or st.malformed}
        placement = {name: {"compared": a.compared, "agreed": a.agreed, "exact": a.exact,
                            "disagreements": [[d.time, d.flow, d.predicted, d.observed] for d in a.disagreements[-10:]]}
                     for name, a in self.traffic.agreements().items()}
        return {"prefixes": prefixes, "agents": agents, "unknown": self.collector.unknown,
                "placement": placement, "evicted": self.traffic.window.evicted}

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
        for name, a in self.traffic.agreements().items():
            if a.compared:
                out.append(f"placement checked on {name}: {a.text} samples agree"
                           + (f" ({len(a.disagreements)} newest disagreements kept)" if a.disagreements else ""))
        if not out:
            out.append(f"flow export on {self.collector.listening}: nothing received")
        return out


def from_inventory(inventory: Inventory, timeline: Timeline, *, sock: socket.socket | None = None,
                   on_suspect: Callable[[DeviceAgreement], None] | None = None,
                   on_record: Callable[[dict], None] | None = None) -> FlowExport | None:
    """The collector ``[flow_export]`` asks for (None without the table): agents from each device's
    ``sflow_agent`` or host address."""
    cfg = inventory.flow_export
    if cfg is None:
        return None
    traffic = SampledTraffic(timeline, {d.name: d.role for d in inventory.devices}, window_s=cfg.window_s,
                             max_flows=cfg.max_flows)
    agents = agent_map({d.name: (d.host, d.sflow_agent) for d in inventory.devices})
    return FlowExport(traffic, agents, host=cfg.host, port=cfg.port, sock=sock, on_suspect=on_suspect,
                      on_record=on_record)
