"""Prometheus metrics of a live session: one custom collector reading the session's state at scrape time.

Headless (no textual).  ``FabricCollector.collect()`` reads what the session
already holds — the timeline's newest snapshot, the poller's per-device poll
times, the ``IncidentTracker``'s incidents and impact, the newest
``HealthReport`` (``healthwatch.HealthWatch``) — and yields metric
families; nothing is counted on the hot path (a poll, an event) for the
exporter.  What a device's records give (next hops, buckets) is derived once
per changed record set and kept while the poller hands back the same objects.
``serve(listen, collector)`` exposes it on its own ``CollectorRegistry`` (with
the process' own ``process_*`` metrics, read from /proc per scrape) at
``http://ADDR:PORT/metrics``, always in the 0.0.4 text format (gzipped when
asked).

Conventions: every name starts ``anycast_``, base units (seconds, ratios
0..1), counters end ``_total``.  Labels are bounded: ``device`` and
``server`` only name devices of the snapshot (the inventory), ``prefix`` only
the configured anycast prefixes, ``nexthop`` a neighbour of the inventory (or
``unknown``), ``rule`` / ``severity`` / ``kind`` / ``status`` / ``source``
come from fixed sets in the code — never a client address nor text a device
printed.

Counters of incident impact are sums over incidents of each incident's numbers
(onset + restore phase) as the scrapes saw them: an incident whose impact is
revised up adds the difference, one revised down adds nothing (a counter never
goes down), and one merged into another carries what was counted into it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Callable, Iterable, Iterator, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from anycast_tui.errors import CliError
from anycast_tui.model.health import HealthReport, Severity
from anycast_tui.model.incident_impact import IncidentImpact
from anycast_tui.model.incidents import Incident, IncidentKind
from anycast_tui.model.paths import address_map
from anycast_tui.model.placement import usable
from anycast_tui.model.rib import rib_fib
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import DeviceState, FabricSnapshot, HealthStatus, Interface, Role, Route, select_routes
from anycast_tui.model.views import device_quality

UNKNOWN_NEXTHOP = "unknown"


class PollTimes(Protocol):
    """What the exporter reads of a poller (``collect.poller.Poller``)."""

    def polls(self, name: str) -> int: ...

    def poll_duration(self, name: str) -> float | None: ...


class Incidents(Protocol):
    """What the exporter reads of an ``IncidentTracker``."""

    def incidents(self) -> list[Incident]: ...

    def impact(self, incident_id: int) -> IncidentImpact | None: ...

    def merged(self) -> dict[int, int]: ...


# --------------------------------------------------------------------------- per device, from its records


@dataclass(frozen=True, slots=True)
class _Group:
    """What one device's route to one anycast prefix gives (derived once per record set)."""

    usable: int  # next hops the kernel hashes over
    configured: int  # next hops of the route, dead / linkdown included
    resilient: bool
    buckets: tuple[tuple[str, int], ...] = ()  # (gateway or dev, buckets) of a resilient group's table
    bgp: int | None = None  # paths BGP uses (FRR's RIB read), else None
    mismatch: bool | None = None  # RIB and FIB disagree (FRR only)


def _route(state: DeviceState, prefix: str) -> Route | None:
    best: Route | None = None
    for r in select_routes(state.routes, (prefix,), lambda k: k[0] != "local"):
        if r.type == "unicast":
            if best is None or (r.metric or 0) < (best.metric or 0):
                best = r
    return best


def _group(state: DeviceState, prefix: str) -> _Group:
    route = _route(state, prefix)
    rf = rib_fib(state, prefix)
    bgp, mismatch = (rf.bgp, not rf.agree) if rf is not None else (None, None)
    if route is None:
        return _Group(0, 0, False, (), bgp, mismatch)
    group = state.group(route.nhid) if route.nhid is not None else None
    if group is None:
        hops = route.nexthops
        return _Group(sum(1 for nh in hops if usable(nh.flags, state.hash)), len(hops), False, (), bgp, mismatch)
    objects = {o.id: o for o in state.nexthops.objects}
    ok = sum(1 for m in group.members if m.id in objects and usable(objects[m.id].flags, state.hash))
    resilient = group.type == "resilient"
    buckets: dict[str, int] = {}
    for b in group.bucket_table if resilient else ():
        o = objects.get(b.nhid)
        key = (o.gateway or o.dev or "") if o is not None else ""
        buckets[key] = buckets.get(key, 0) + 1
    return _Group(ok, len(group.members), resilient, tuple(buckets.items()), bgp, mismatch)


@dataclass
class _DeviceCache:
    inputs: tuple[object, ...]  # the records it was derived from (compared by identity)
    prefixes: tuple[str, ...]
    groups: dict[str, _Group] = field(default_factory=dict)
    quality: str | None = None  # placement quality (model.views.device_quality), None before the first poll
    rows: dict[str, list] = field(default_factory=dict)  # its series of the _STATIC families
    buckets: tuple[object, list] | None = None  # (the address map they were named with, its bucket series)


# --------------------------------------------------------------------------- per device, as series

_LP = ("device", "prefix")
# families whose series change only with a device's records: each device's series are built once per record set
_STATIC = (
    ("anycast_device_info", "1 per device of the inventory, with its role and platform", ("device", "role", "platform")),
    ("anycast_hash_seed", "net.ipv4.fib_multipath_hash_seed as last read (0: the kernel uses a random boot key, "
     "placement unknown)", ("device",)),
    ("anycast_hash_policy", "fib_multipath_hash_policy as last read, per IP family", ("device", "family")),
    ("anycast_placement_quality", "1, labelled with how exactly the engine knows where the device sends a flow: "
     "exact, approximate or unknown (one series per device, the current one)", ("device", "quality")),
    ("anycast_nexthops", "Next hops the kernel hashes the anycast prefix over (not dead; not linkdown when "
     "ignore_routes_with_linkdown); 0: no route", _LP),
    ("anycast_nexthops_configured", "Next hops of the device's route to the anycast prefix, dead and linkdown ones "
     "included", _LP),
    ("anycast_nexthops_expected", "Paths BGP uses for the prefix (FRR's RIB and multipath state; only devices whose "
     "RIB is read)", _LP),
    ("anycast_rib_fib_mismatch", "1 while BGP's paths and the kernel FIB's next hops disagree for the prefix in the "
     "last poll (FRR devices only)", _LP),
    ("anycast_group_resilient", "1 when the route uses a resilient nexthop group", _LP),
)
_BUCKETS = ("anycast_group_buckets", "Buckets of the resilient group's table held by each next hop (nexthop: the "
            "neighbour's inventory name, or unknown)", ("device", "prefix", "nexthop"))


def _families(specs: Iterable[tuple[str, str, tuple[str, ...]]]) -> dict[str, GaugeMetricFamily]:
    return {name: GaugeMetricFamily(name, doc, labels=list(labels)) for name, doc, labels in specs}


def _static_rows(state: DeviceState, groups: dict[str, _Group], quality: str | None) -> dict[str, list]:
    """The device's series of the ``_STATIC`` families (prometheus_client Samples, kept while its records are)."""
    f = _families(_STATIC)
    name = state.device.name
    f["anycast_device_info"].add_metric([name, state.device.role.value, _platform(state.device.platform)], 1.0)
    if state.collected_at_ms is not None:
        f["anycast_hash_seed"].add_metric([name], float(state.hash.seed))
        f["anycast_hash_policy"].add_metric([name, "4"], float(state.hash.policy))
        f["anycast_hash_policy"].add_metric([name, "6"], float(state.hash.policy6))
        if quality is not None:
            f["anycast_placement_quality"].add_metric([name, quality], 1.0)
    for prefix, g in groups.items():  # (none: no records yet, or a server, which holds the address itself)
        f["anycast_nexthops"].add_metric([name, prefix], float(g.usable))
        f["anycast_nexthops_configured"].add_metric([name, prefix], float(g.configured))
        if g.bgp is not None:
            f["anycast_nexthops_expected"].add_metric([name, prefix], float(g.bgp))
        if g.mismatch is not None:
            f["anycast_rib_fib_mismatch"].add_metric([name, prefix], 1.0 if g.mismatch else 0.0)
        if g.configured:
            f["anycast_group_resilient"].add_metric([name, prefix], 1.0 if g.resilient else 0.0)
    return {k: fam.samples for k, fam in f.items() if fam.samples}


def _bucket_rows(name: str, groups: dict[str, _Group], owners: dict[str, str]) -> list:
    fam = _families((_BUCKETS,))[_BUCKETS[0]]
    for prefix, g in groups.items():
        per: dict[str, int] = {}
        for gw, n in g.buckets:
            who = owners.get(gw, UNKNOWN_NEXTHOP)
            per[who] = per.get(who, 0) + n
        for who, n in sorted(per.items()):
            fam.add_metric([name, prefix, who], float(n))
    return fam.samples


# --------------------------------------------------------------------------- incident counters


_FIELDS = ("moved_estimated", "moved_live", "tcp_estimated", "tcp_live", "udp_estimated", "udp_live",
           "flows_estimated", "flows_live")


def _impact_numbers(imp: IncidentImpact | None) -> dict[str, int]:
    out = dict.fromkeys(_FIELDS, 0)
    if imp is None:
        return out
    for phase in (imp.onset, imp.restore):
        if phase is None:
            continue
        e = phase.estimated
        out["moved_estimated"] += e.moved
        out["tcp_estimated"] += e.tcp_reset
        out["udp_estimated"] += e.udp_moved
        out["flows_estimated"] += e.flows
        if phase.live is not None:
            lv = phase.live
            out["tcp_live"] += lv.tcp_reset
            out["udp_live"] += lv.udp_moved or 0
            out["moved_live"] += lv.tcp_reset + (lv.udp_moved or 0)
            out["flows_live"] += lv.connections
    return out


class _IncidentCounters:
    """Monotonic totals over incidents, advanced at scrape time (see the module's docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals = dict.fromkeys(_FIELDS, 0)
        self.kinds = {k.value: 0 for k in IncidentKind}
        self.last_id = 0  # incidents up to this id are counted
        self.counted: dict[int, dict[str, int]] = {}  # per incident still in the book: what the totals hold of it

    def advance(self, tracker: Incidents, merged: dict[int, int]) -> int:
        """Count new incidents and impact grown since the last scrape; the number of open incidents."""
        incs = tracker.incidents()
        with self.lock:
            for old, new in merged.items():  # what was counted of a merged-away incident lives on in its survivor
                if old in self.counted:
                    got = self.counted.pop(old)
                    into = self.counted.setdefault(new, dict.fromkeys(_FIELDS, 0))
                    for k in _FIELDS:
                        into[k] += got[k]
            n_open = 0
            live_ids = set()
            for inc in incs:
                live_ids.add(inc.id)
                n_open += inc.open
                if inc.id > self.last_id:
                    self.kinds[inc.kind.value] += 1
                now = _impact_numbers(tracker.impact(inc.id))
                had = self.counted.setdefault(inc.id, dict.fromkeys(_FIELDS, 0))
                for k in _FIELDS:
                    if now[k] > had[k]:
                        self.totals[k] += now[k] - had[k]
                        had[k] = now[k]
            if incs:
                self.last_id = max(self.last_id, max(live_ids))
            for iid in [i for i in self.counted if i not in live_ids]:  # dropped from the book: stays counted
                del self.counted[iid]
            return n_open


# --------------------------------------------------------------------------- the collector


class FabricCollector(Collector):
    """The session's metrics, read at scrape time.

    ``timeline``: the live timeline (devices, prefixes); ``poller``: per-device poll counts and durations
    (a LiveSession's; None for the simulator, whose polls are not timed); ``incidents``: an IncidentTracker;
    ``health``: returns the newest HealthReport (``HealthWatch.report``), or None while there is none.
    """

    def __init__(self, timeline: Timeline, *, poller: PollTimes | None = None, incidents: Incidents | None = None,
                 health: Callable[[], HealthReport | None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.timeline = timeline
        self.poller = poller
        self.incidents = incidents
        self.health = health
        self.clock = clock
        self._devices: dict[str, _DeviceCache] = {}
        self._devices_lock = threading.Lock()
        self._owner_cache: tuple[list[tuple[Interface, ...]], dict[str, str]] | None = None
        self._counters = _IncidentCounters()
        self.derived_groups = 0  # (device, prefix) groups derived from records, not reused (tests, bench)

    # ------------------------------------------------------------------ helpers

    def _derived(self, state: DeviceState, prefixes: tuple[str, ...]) -> _DeviceCache:
        """What ``state``'s records give, derived again only when one of them is another object."""
        inputs = (state.routes, state.nexthops, state.rib, state.hash, state.device, state.collected_at_ms is None)
        with self._devices_lock:
            c = self._devices.get(state.device.name)
        if c is not None and c.prefixes == prefixes and all(a is b for a, b in zip(c.inputs, inputs)):
            return c
        routed = state.collected_at_ms is not None and state.device.role is not Role.SERVER
        q = device_quality(state)
        groups = {p: _group(state, p) for p in prefixes} if routed else {}
        self.derived_groups += len(groups)
        quality = q.placement.value if q is not None else None
        c = _DeviceCache(inputs, prefixes, groups, quality, _static_rows(state, groups, quality))
        with self._devices_lock:
            self._devices[state.device.name] = c
        return c

    def _owners(self, snap: FabricSnapshot) -> dict[str, str]:
        """Interface address -> device (``model.paths.address_map``), again only when some device's interfaces
        are other objects."""
        key = [st.interfaces for st in snap.devices.values()]
        with self._devices_lock:
            hit = self._owner_cache
        if hit is not None and len(hit[0]) == len(key) and all(a is b for a, b in zip(hit[0], key)):
            return hit[1]
        owners = address_map(snap)
        with self._devices_lock:
            self._owner_cache = (key, owners)
        return owners

    # ------------------------------------------------------------------ collect

    def collect(self) -> Iterator[Metric]:
        snap = self.timeline.snapshot
        prefixes = tuple(self.timeline.anycast_prefixes)
        devices = dict(snap.devices) if snap is not None else {}
        names = sorted(devices)
        now = self.clock()
        derived = {n: self._derived(devices[n], prefixes) for n in names}
        yield from self._device_metrics(devices, names, now)
        yield from self._static_metrics(snap, names, derived)
        yield from self._health_metrics(set(names), set(prefixes))
        yield from self._incident_metrics()
        with self._devices_lock:
            for gone in [n for n in self._devices if n not in devices]:
                del self._devices[gone]

    def _device_metrics(self, devices: dict[str, DeviceState], names: list[str], now: float) -> Iterator[Metric]:
        up = GaugeMetricFamily("anycast_device_up", "1 when the device's last poll succeeded (health ok), else 0",
                               labels=["device"])
        status = GaugeMetricFamily("anycast_device_status",
                                   "1, labelled with the device's current health status, one series per device "
                                   "(unknown: not polled yet; ok; stale: last good data older than the last "
                                   "attempt; error: never had good data)", labels=["device", "status"])
        age = GaugeMetricFamily("anycast_poll_age_seconds", "Seconds since the device's last successful poll",
                                labels=["device"])
        last = GaugeMetricFamily("anycast_device_last_ok_timestamp_seconds",
                                 "Unix time of the device's last successful poll", labels=["device"])
        dur = GaugeMetricFamily("anycast_poll_duration_seconds", "Wall time of the device's last poll (connect, "
                                "commands, parse), failed or not", labels=["device"])
        polls = CounterMetricFamily("anycast_polls", "Polls of the device completed, failed or not",
                                    labels=["device"])
        for name in names:
            st = devices[name]
            h = st.health
            up.add_metric([name], 1.0 if h.status is HealthStatus.OK else 0.0)
            status.add_metric([name, h.status.value], 1.0)
            if h.last_ok_ms is not None:
                age.add_metric([name], max(0.0, now - h.last_ok_ms / 1000))
                last.add_metric([name], h.last_ok_ms / 1000)
            if self.poller is not None:
                try:
                    d, n = self.poller.poll_duration(name), self.poller.polls(name)
                except KeyError:  # not a device of the poller's inventory
                    continue
                if d is not None:
                    dur.add_metric([name], d)
                polls.add_metric([name], float(n))
        yield from (up, status, age, last)
        if self.poller is not None:
            yield from (dur, polls)

    def _static_metrics(self, snap: FabricSnapshot, names: list[str],
                        derived: dict[str, _DeviceCache]) -> Iterator[Metric]:
        fams = _families(_STATIC)
        for name in names:
            for k, rows in derived[name].rows.items():
                fams[k].samples.extend(rows)
        yield from fams.values()
        buckets = _families((_BUCKETS,))[_BUCKETS[0]]
        owners: dict[str, str] | None = None
        for name in names:
            c = derived[name]
            if not any(g.buckets for g in c.groups.values()):
                continue
            if owners is None:
                owners = self._owners(snap)
            if c.buckets is None or c.buckets[0] is not owners:
                c.buckets = (owners, _bucket_rows(name, c.groups, owners))
            buckets.samples.extend(c.buckets[1])
        yield buckets

    def _health_metrics(self, names: set[str], prefixes: set[str]) -> Iterator[Metric]:
        report = self.health() if self.health is not None else None
        share = GaugeMetricFamily("anycast_server_share", "The server's share (0..1) of the prefix's flows, end to "
                                  "end (hash space on a synthetic sample, or sampled traffic)",
                                  labels=["prefix", "server"])
        fair = GaugeMetricFamily("anycast_server_fair_share", "The server's fair share (0..1): equal, or by "
                                 "configured weight", labels=["prefix", "server"])
        imbalance = GaugeMetricFamily("anycast_imbalance_ratio", "max(share / fair share) over the prefix's "
                                      "servers (1: even)", labels=["prefix"])
        polar = GaugeMetricFamily("anycast_polarization_ratio", "How unevenly the device spreads the flows that "
                                  "reach it over its next hops: worst next hop's share over (or under) its "
                                  "uniform-input share (1: none)", labels=["device", "prefix"])
        findings = GaugeMetricFamily("anycast_findings", "Open health findings by rule and severity",
                                     labels=["rule", "severity"])
        taken = GaugeMetricFamily("anycast_health_report_timestamp_seconds",
                                  "Unix time of the snapshot the newest health report was computed on")
        if report is not None:
            taken.add_metric([], report.taken_at_ms / 1000)
            for s in report.shares:
                if s.prefix in prefixes and s.server in names:
                    share.add_metric([s.prefix, s.server], s.share)
                    fair.add_metric([s.prefix, s.server], s.fair)
            for p in sorted({s.prefix for s in report.shares} & prefixes):
                r = report.imbalance(p)
                if r is not None:
                    imbalance.add_metric([p], r)
            for sp in report.spreads:
                if sp.prefix in prefixes and sp.device in names:
                    polar.add_metric([sp.device, sp.prefix], sp.ratio)
            counts: dict[tuple[str, str], int] = {}
            for f in report.findings:
                key = (_rule(f.rule), Severity(f.severity).label)
                counts[key] = counts.get(key, 0) + 1
            for (rule, sev), n in sorted(counts.items()):
                findings.add_metric([rule, sev], float(n))
        yield from (share, fair, imbalance, polar, findings, taken)

    def _incident_metrics(self) -> Iterator[Metric]:
        if self.incidents is None:
            return
        n_open = self._counters.advance(self.incidents, self.incidents.merged())
        c = self._counters
        total = CounterMetricFamily("anycast_incidents", "Incidents seen (kind as first scraped)", labels=["kind"])
        for kind, n in c.kinds.items():
            total.add_metric([kind], float(n))
        yield total
        yield GaugeMetricFamily("anycast_incidents_open", "Incidents open now (something they removed is missing)",
                                value=float(n_open))
        src = ["source"]
        specs = (("anycast_incident_flows_moved", "Flows incidents moved to another server (estimated: the "
                  "synthetic sample; live: the connections the servers reported, UDP only where conntrack is read)",
                  "moved"),
                 ("anycast_incident_tcp_resets", "TCP flows incidents reset (moved while established)", "tcp"),
                 ("anycast_incident_udp_flows_moved", "UDP flows incidents moved (live: only where conntrack is "
                  "read)", "udp"),
                 ("anycast_incident_flows_considered", "Flows the impact was computed over (estimated: the "
                  "sample per phase; live: connections alive before each phase)", "flows"))
        with c.lock:
            for name, doc, key in specs:
                m = CounterMetricFamily(name, doc, labels=src)
                for source in ("estimated", "live"):
                    m.add_metric([source], float(c.totals[f"{key}_{source}"]))
                yield m


_PLATFORMS = frozenset({"linux", "cumulus", "sonic", "frr", "sim"})


def _platform(p: str) -> str:
    return p if p in _PLATFORMS else "other"


def _rule(rule: str) -> str:
    """A rule id as a label value: the checks' stable ids are short words; anything else is cut short."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in rule[:64])


# --------------------------------------------------------------------------- serving


# the 0.0.4 text format Prometheus has always read; prometheus_client would answer OpenMetrics when asked (Prometheus
# asks), which costs about twice the time per series at scale and gives these metrics nothing (no exemplars,
# no _created series)
TEXT_FORMAT = "text/plain; version=0.0.4"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds up the exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class' name
        """No line per scrape on stderr."""


def _text_format(app: Callable) -> Callable:
    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ["HTTP_ACCEPT"] = TEXT_FORMAT
        return app(environ, start_response)
    return wrapped


class MetricsServer:
    """The HTTP endpoint (prometheus_client's WSGI app, gzip when asked, on a threaded server) on its own
    registry; every path answers the metrics."""

    def __init__(self, listen: tuple[str, int], collectors: Iterable[Collector], *, process: bool = True) -> None:
        from prometheus_client import ProcessCollector, make_wsgi_app

        self.registry = CollectorRegistry(auto_describe=False)
        for c in collectors:
            self.registry.register(c)
        if process:
            ProcessCollector(registry=self.registry)  # process_cpu_seconds_total & co: a few /proc reads
        addr, port = listen
        try:
            family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
            server_class = type("_Server", (_Server,), {"address_family": family})
            self._server = make_server(addr, port, _text_format(make_wsgi_app(self.registry)), server_class,
                                       handler_class=_Quiet)
        except OSError as exc:
            raise CliError(f"metrics: cannot listen on {_show(addr, port)}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        self.addr, self.port = addr, self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{_show(self.addr, self.port)}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _show(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def serve(listen: tuple[str, int], collector: FabricCollector) -> MetricsServer:
    """Serve ``collector`` at ``http://ADDR:PORT/metrics`` until ``close()``; a CliError when it cannot listen."""
    return MetricsServer(listen, [collector])
