"""Hop-local flow impact per timeline change, and the traces the Flows view shows (headless, no textual).

``ImpactTracker`` follows a session's timeline: every change carrying an anycast event is compared before →
after over the sample (and live / configured flows) on a worker thread; ``paths(prefix)`` is the sample traced
over the newest snapshot, ``view(prefix)`` the same with the busiest sampled flows of the fabric's own traffic
(``FlowView``).  The answer per cause is the incident's (``incidenttracker.py``).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from anycast_tui.model.flows import FlowMeta, live_flows, live_ingress, synthetic_flows
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import EventImpact, Impact
from anycast_tui.model.incident_impact import observed_ingress
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.paths import PathResult
from anycast_tui.model.sampled import SampledFlowSet
from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import Event, FabricSnapshot, Flow

VIEW_SAMPLED_MAX = 20_000  # sampled flows shown in the Flows view beside the sample (the busiest)
SYNTHETIC, SAMPLED = 0, 1  # FlowView.sources


class SampledSource(Protocol):
    """The fabric's sampled traffic (``sampledtraffic.SampledTraffic``)."""

    def flow_set(self, prefix: str, now: float) -> SampledFlowSet | None: ...


@dataclass(frozen=True, slots=True)
class FlowView:
    """What the Flows view shows for one prefix: the synthetic sample first, then the busiest sampled flows
    (``sources``: SYNTHETIC / SAMPLED per flow), each from where it enters, traced over ``snapshot``."""

    flows: FlowArray
    ingress: np.ndarray  # object: entry device per flow
    sources: np.ndarray  # uint8
    snapshot: FabricSnapshot
    paths: PathResult


class ImpactTracker:
    """How many flows each fabric change moved, hop-local: ``model.impact`` of one timeline change
    (one device's new state) over a sample of client flows, and over the live and configured flows
    when there are any.  These are per-event counts, labelled so; the answer per cause is the
    incident's (``incidenttracker.IncidentTracker``).

    Subscribes to a timeline; every change carrying an anycast event is
    compared (before → after) on a worker thread, so the event loop never
    waits.  Sample flows enter where ``model.ingress`` says (client-facing
    routers, else an assumed upstream ECMP over the reachable spines, on each
    side of the change).  ``counts(event)`` is None until its result is in;
    ``detail(event)`` keeps which flows moved for the newest ``keep`` events,
    and ``paths(prefix)`` the engine's trace of the newest snapshot.

    Sources, counted apart (``sources(event)``; ``counts(event)`` carries the
    synthetic counts plus ``live_*`` / ``configured_*`` keys when those exist):

    * synthetic: ``n_flows`` seeded sample flows per anycast address;
    * live: the flows the change's *before* snapshot holds in ``DeviceState.flows``
      (``ss`` / ``conntrack`` on anycast servers: client → anycast address), entering
      as the sample does;
    * configured: ``configured`` flows (e.g. a flows CSV) to the address, entering at
      their ``ingress`` column, else as live flows do.
    """

    def __init__(self, timeline: Timeline, *, n_flows: int = 10_000, n_clients: int = 200,
                 on_result: Callable[[], None] | None = None, keep: int = 256,
                 on_impact: Callable[[Event, str, Impact], None] | None = None,
                 configured: tuple[FlowArray, FlowMeta | None] | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.timeline = timeline
        self.n_flows = n_flows
        self.n_clients = n_clients
        self.on_result = on_result
        self.on_impact = on_impact  # (event, prefix, its hop-local impact) per computed event, on the worker
        self.keep = keep
        self._flows: dict[str, FlowArray] = {}  # per anycast address
        self._results: dict[Event, dict[str, int]] = {}
        self._sources: dict[Event, dict[str, dict[str, int]]] = {}
        self._configured = _configured_flows(configured)
        self._detail: dict[Event, EventImpact] = {}
        self._paths: dict[str, tuple[FabricSnapshot, PathResult]] = {}
        self._views: dict[str, FlowView] = {}
        self.sampled: SampledSource | None = None  # set when a flow-export collector runs
        self.clock: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="impact")
        self._pending: list[Future[None]] = []
        self._unsubscribe = timeline.subscribe(self._on_change)

    def counts(self, event: Event) -> dict[str, int] | None:
        return self._results.get(event)

    def detail(self, event: Event) -> EventImpact | None:
        return self._detail.get(event)

    def sources(self, event: Event) -> dict[str, dict[str, int]] | None:
        """Counts per flow source (``synthetic``, and ``live`` / ``configured`` when there were such
        flows to the event's address); None until computed."""
        return self._sources.get(event)

    def source_counts(self, event: Event) -> dict[str, int]:
        """The ``live_*`` / ``configured_*`` counts of ``event`` (flat, for a recording's impact note)."""
        out: dict[str, int] = {}
        for src, c in (self._sources.get(event) or {}).items():
            if src != "synthetic":
                out.update({f"{src}_{k}": v for k, v in c.items()})
        return out

    def flows(self, prefix: str) -> FlowArray | None:
        """The sample flows to ``prefix``'s address (None for non-IPv4 prefixes)."""
        net = ipaddress.ip_network(prefix, strict=False)
        if net.version != 4:
            return None
        dst = str(net.network_address)
        with self._lock:
            flows = self._flows.get(dst)
            if flows is None:
                flows = self._flows[dst] = synthetic_flows(self.n_clients, self.n_flows, dst=dst)
        return flows

    def ingress(self, snapshot: FabricSnapshot | None, prefix: str | None = None) -> np.ndarray | None:
        """Per sample flow to ``prefix`` (default: the first anycast prefix), the device it enters at
        (``model.ingress``: client-facing routers, else an assumed upstream ECMP over the reachable
        spines); None where there is nowhere to enter."""
        if snapshot is None:
            return None
        flows = self.flows(prefix or self.timeline.anycast_prefixes[0])
        if flows is None:
            return None
        got, _ = ingress_of(snapshot, flows)
        if got is None:
            return None
        return np.asarray(got[0], dtype=object)[got[1]]

    def paths(self, prefix: str) -> tuple[FabricSnapshot, PathResult] | None:
        """The newest (snapshot, trace of the sample flows) known for ``prefix``; see :meth:`trace`."""
        return self._paths.get(prefix)

    def view(self, prefix: str) -> FlowView | None:
        """The Flows view's flows: the sample and the busiest sampled flows, traced (None: no sampled traffic
        traced yet — the view then shows the sample from :meth:`paths`)."""
        return self._views.get(prefix)

    def trace(self, prefix: str) -> None:
        """Trace the sample flows over the timeline's current snapshot on the worker (result in :meth:`paths`)."""
        snap = self.timeline.snapshot
        if snap is not None:
            self._submit(self._trace, prefix, snap)

    def close(self) -> None:
        self._unsubscribe()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(fn, *args))

    def _on_change(self, change: Change) -> None:
        prefixes = set(self.timeline.anycast_prefixes)
        events = [e for e in change.events if e.prefix in prefixes]
        if events and change.before is not None:
            self._submit(self._compute, change, events)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted change is computed (tests, screenshots); False on timeout."""
        from concurrent.futures import wait

        done, not_done = wait(list(self._pending), timeout=timeout)
        return not not_done

    def _trace(self, prefix: str, snap: FabricSnapshot) -> None:
        from anycast_tui.model.paths import trace

        flows, ingress = self.flows(prefix), self.ingress(snap, prefix)
        if flows is None or ingress is None:
            return
        try:
            self._paths[prefix] = (snap, trace(snap, flows, ingress))
            view = self._sampled_view(prefix, snap, flows, ingress)
            if view is not None:
                self._views[prefix] = view
        except Exception:
            logging.getLogger(__name__).exception("trace of %s failed", prefix)
            return
        if self.on_result is not None:
            self.on_result()

    def _sampled_view(self, prefix: str, snap: FabricSnapshot, flows: FlowArray,
                      ingress: np.ndarray) -> FlowView | None:
        from anycast_tui.model.paths import trace

        sset = self.sampled.flow_set(prefix, self.clock()) if self.sampled is not None else None
        if sset is None or not len(sset):
            return None
        if len(sset) > VIEW_SAMPLED_MAX:
            sset = sset.select(np.sort(np.argsort(-sset.packets, kind="stable")[:VIEW_SAMPLED_MAX]))
        got = observed_ingress(snap, sset)
        if got is None:
            return None
        s = sset.flows
        both = FlowArray(*(np.concatenate([getattr(flows, c), getattr(s, c)]) for c in
                           ("family", "proto", "src", "dst", "sport", "dport", "flowlabel")))
        entry = np.concatenate([np.asarray(ingress, dtype=object), np.asarray(got[0], dtype=object)[got[1]]])
        sources = np.concatenate([np.full(len(flows), SYNTHETIC, np.uint8), np.full(len(s), SAMPLED, np.uint8)])
        return FlowView(both, entry, sources, snap, trace(snap, both, entry))

    def _other_sources(self, change: Change, prefix: str) -> dict[str, dict[str, int]]:
        """Counts of the live and configured flows to ``prefix``'s address (sources without flows left out)."""
        from anycast_tui.model.impact import impact

        dst = str(ipaddress.ip_network(prefix, strict=False).network_address)
        out: dict[str, dict[str, int]] = {}
        sets = (("live", live_flows(change.before, dst)),
                ("configured", [f for f in self._configured if f.dst == dst]))
        for src, flows in sets:
            if not flows:
                continue
            arr = FlowArray.from_flows(flows)
            if all(f.ingress for f in flows):
                ingress = ingress_after = live_ingress(change.before, flows)
            else:
                ingress, ingress_after = ingress_of(change.before, arr)[0], ingress_of(change.after, arr)[0]
            if ingress is None or ingress_after is None:
                continue
            try:
                out[src] = impact(change.before, change.after, arr, ingress, ingress_after=ingress_after).counts
            except Exception:
                logging.getLogger(__name__).exception("impact of the %s flows to %s failed", src, prefix)
        return out

    def _compute(self, change: Change, events: list[Event]) -> None:
        from anycast_tui.model.impact import impact

        for prefix in sorted({e.prefix for e in events if e.prefix}):
            flows = self.flows(prefix)
            if flows is None:
                continue  # the sample clients are IPv4
            ingress, ingress_after = self.ingress(change.before, prefix), self.ingress(change.after, prefix)
            if ingress is None or ingress_after is None:
                continue
            old = self._paths.get(prefix)
            before_result = old[1] if old is not None and old[0] is change.before else None
            try:
                imp = impact(change.before, change.after, flows, ingress, ingress_after=ingress_after,
                             before_result=before_result)
                n_splits, keys = imp.splits(limit=10_000)
            except Exception:  # a model bug must not kill the worker; the event just shows no count
                logging.getLogger(__name__).exception("impact of %s failed", prefix)
                continue
            self._paths[prefix] = (change.after, imp.after)
            sources = {"synthetic": imp.counts, **self._other_sources(change, prefix)}
            counts = dict(imp.counts)
            for src, c in sources.items():
                if src != "synthetic":
                    counts.update({f"{src}_{k}": v for k, v in c.items()})
            split = _rows_of_sources(flows, keys) if n_splits else np.zeros(0, np.int32)
            detail = EventImpact.of(prefix, change.before, change.after, imp, split, n_splits)
            for e in events:
                if e.prefix == prefix:
                    self._results[e] = counts
                    self._sources[e] = sources
                    self._detail[e] = detail
                    if self.on_impact is not None:
                        try:
                            self.on_impact(e, prefix, imp)
                        except Exception:  # a listener (the recorder) must not stop the counts
                            logging.getLogger(__name__).exception("impact listener failed")
            while len(self._detail) > self.keep:
                del self._detail[next(iter(self._detail))]
        if self.on_result is not None:
            self.on_result()


def _configured_flows(configured: tuple[FlowArray, FlowMeta | None] | None) -> list[Flow]:
    if configured is None:
        return []
    arr, meta = configured
    ingress = meta.ingress if meta is not None else None
    out = []
    for i in range(len(arr)):
        f = arr.flow(i)
        if ingress is not None and ingress[i]:
            f = Flow(f.proto, f.src, f.sport, f.dst, f.dport, f.flowlabel, str(ingress[i]), f.group)
        out.append(f)
    return out


def _rows_of_sources(flows: FlowArray, keys: tuple[str, ...]) -> np.ndarray:
    """Indexes of the flows whose source address is one of ``keys``."""
    want = np.zeros((len(keys), 16), np.uint8)
    for i, k in enumerate(keys):
        packed = ipaddress.ip_address(k).packed
        want[i, :len(packed)] = np.frombuffer(packed, np.uint8)
    src = np.ascontiguousarray(flows.src).view(np.dtype((np.void, 16))).ravel()
    return np.flatnonzero(np.isin(src, want.view(np.dtype((np.void, 16))).ravel())).astype(np.int32)
