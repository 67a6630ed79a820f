"""What one incident did to the flows, end to end: the one implementation every surface shows.

For each phase of an incident (its onset, and its restore once anything came
back) the fabric before and after (``IncidentBook.phases``) is compared over

* **estimated**: a fixed, seeded sample of synthetic client flows per anycast
  address (``SAMPLE_FLOWS`` flows from ``SAMPLE_CLIENTS`` clients, the same
  everywhere), a share of hash space, never real customers;
* **live**: the connections the anycast servers report alive in the *before*
  fabric (``model.flows.live_flow_set``): measured.  UDP flows are only
  counted where conntrack shows them; elsewhere ``udp_moved`` is None
  (unknown), never 0;
* **sampled**: the flows the fabric's own sFlow / IPFIX exports showed alive
  before the onset (``model.sampled``), each entering where it was sampled
  closest to the clients, weighted by its estimated traffic for the packet
  rate moved: measured on real traffic, at the devices' sampling rate.

Every flow is placed from where it enters (``model.ingress``: client-facing
routers, else an assumed upstream ECMP over the reachable spines, recomputed
on each side so a failed spine's flows land on the others), hop by hop, to the
server that answers it.  moved = answering server changed; a moved TCP flow
that had a server is reset, a moved UDP flow continues; collateral = moved
between servers that answered both before and after (neither went away nor
came: the move is the hashing's doing, what resilient hashing avoids on a
failure).  ``servers_lost`` are servers that
answered flows before and none after.

Pure: snapshots in, typed counts out.  JSON only at the recording boundary
(``to_json`` / ``from_json``).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from anycast_tui.model.flows import live_flow_set, synthetic_flows
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import EventImpact, Impact, impact
from anycast_tui.model.whatif import WhatIf, WhatIfError, WhatIfKind, apply, with_mapping
from anycast_tui.model.incidents import Incident, IncidentKind, PhaseSnapshots
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.paths import PathOutcome
from anycast_tui.model.sampled import SampledFlowSet
from anycast_tui.model.types import EventKind, FabricSnapshot, HealthStatus, Role

SAMPLE_FLOWS = 10_000
SAMPLE_CLIENTS = 200
MATRIX_MAX = 64  # from→to pairs kept per phase (largest first)


@dataclass(frozen=True, slots=True)
class ImpactCounts:
    """Counts over one flow set."""

    flows: int = 0
    moved: int = 0
    tcp_reset: int = 0
    udp_moved: int = 0
    collateral: int = 0

    def __add__(self, other: "ImpactCounts") -> "ImpactCounts":
        return ImpactCounts(self.flows + other.flows, self.moved + other.moved, self.tcp_reset + other.tcp_reset,
                            self.udp_moved + other.udp_moved, self.collateral + other.collateral)

    @classmethod
    def of(cls, imp: Impact) -> "ImpactCounts":
        c = imp.counts
        return cls(c["flows"], c["moved"], c["tcp_reset"], c["udp"], c["collateral"])


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """Counts over the live connections the servers reported (measured)."""

    connections: int = 0  # alive flows to the incident's addresses before it
    tcp_reset: int = 0
    udp_moved: int | None = None  # None: UDP cannot be seen (no conntrack on the servers)
    stale: int = 0  # sockets left over from connections already gone, not counted

    def __add__(self, other: "LiveCounts") -> "LiveCounts":
        udp = None if self.udp_moved is None or other.udp_moved is None else self.udp_moved + other.udp_moved
        return LiveCounts(self.connections + other.connections, self.tcp_reset + other.tcp_reset, udp,
                          self.stale + other.stale)


@dataclass(frozen=True, slots=True)
class SampledCounts:
    """Counts over the fabric's sampled flows (sFlow / IPFIX) alive before the phase: measured on real traffic."""

    flows: int = 0
    moved: int = 0
    tcp_reset: int = 0
    udp_moved: int = 0
    pps: float = 0.0  # estimated packets/s of the sampled flows (sampled × rate, over the window)
    moved_pps: float = 0.0  # … of the moved ones
    rate: str = "1:?"  # the sampling rate(s): "1:400"
    window_s: float = 0.0

    def __add__(self, other: "SampledCounts") -> "SampledCounts":
        rate = self.rate if self.rate == other.rate or not other.flows else (other.rate if not self.flows else
                                                                             f"{self.rate}, {other.rate}")
        return SampledCounts(self.flows + other.flows, self.moved + other.moved, self.tcp_reset + other.tcp_reset,
                             self.udp_moved + other.udp_moved, self.pps + other.pps, self.moved_pps + other.moved_pps,
                             rate, max(self.window_s, other.window_s))


@dataclass(frozen=True, slots=True)
class PhaseImpact:
    """One phase (onset or restore) of an incident, end to end."""

    estimated: ImpactCounts
    live: LiveCounts | None  # None: no device reports live flows
    matrix: tuple[tuple[str, str, int], ...]  # (from server, to server, estimated moved flows), largest first
    servers_before: tuple[str, ...]  # servers answering sample flows before
    servers_lost: tuple[str, ...]  # … that answer none after
    servers_gained: tuple[str, ...]  # servers answering after that did not before
    ingress: str  # how flows were placed on entry ("ingress assumed: upstream ECMP over spine01, spine02")
    ingress_assumed: bool
    sample: str  # what "estimated" was computed on ("10,000 synthetic flows")
    sampled: SampledCounts | None = None  # None: no sampled traffic (no exporter, or none to these prefixes)
    # which sample flows moved, for the first prefix (in memory only: the Flows view's marks, the bucket bar)
    detail: EventImpact | None = field(default=None, compare=False, repr=False)

    @property
    def capacity_lost(self) -> str:
        """``1 of 4 servers, 25 %``; empty when none was lost."""
        if not self.servers_lost or not self.servers_before:
            return ""
        n, total = len(self.servers_lost), len(self.servers_before)
        return f"{n} of {total} server{'s' if total != 1 else ''}, {round(100 * n / total)} %"


@dataclass(frozen=True, slots=True)
class IncidentImpact:
    incident_id: int
    onset: PhaseImpact | None
    restore: PhaseImpact | None
    # the onset's estimated counts had the changed devices' groups been resilient (None: not computed / not a failure)
    resilient: ImpactCounts | None = None

    @property
    def headline(self) -> PhaseImpact | None:
        """The phase every surface leads with: the onset (what the failure moved); an addition's own."""
        return self.onset if self.onset is not None else self.restore


def estimated_text(p: PhaseImpact) -> str:
    """``3,308 moved (1,645 TCP reset, 1,663 UDP) of 10,000 synthetic flows, estimated``."""
    e = p.estimated
    text = f"{e.moved:,} moved ({e.tcp_reset:,} TCP reset, {e.udp_moved:,} UDP) of {p.sample}, estimated"
    return text + (f" · {e.collateral:,} collateral" if e.collateral else "")


def live_text(p: PhaseImpact) -> str:
    """``live: 16 TCP reset, 17 UDP moved of 40 connections`` (UDP n/a without conntrack); "" without live flows."""
    lv = p.live
    if lv is None:
        return ""
    udp = "UDP n/a (no conntrack)" if lv.udp_moved is None else f"{lv.udp_moved:,} UDP moved"
    stale = f" ({lv.stale:,} left-over sockets not counted)" if lv.stale else ""
    return f"live: {lv.tcp_reset:,} TCP reset, {udp} of {lv.connections:,} connections, measured{stale}"


def rate_text(pps: float) -> str:
    """A packet rate as incident texts print it: 3 significant digits, ``k`` / ``M`` above a thousand / million."""
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if pps >= div:
            return f"{pps / div:.3g} {unit}"
    return f"{pps:.3g}"


def sampled_text(p: PhaseImpact) -> str:
    """``sampled: 1,204 of 5,310 flows moved (≈ 96 k pkt/s at 1:400), 580 TCP reset``; "" without samples."""
    sc = p.sampled
    if sc is None:
        return ""
    return (f"sampled: {sc.moved:,} of {sc.flows:,} flows moved (≈ {rate_text(sc.moved_pps)} pkt/s at {sc.rate}), "
            f"{sc.tcp_reset:,} TCP reset, {sc.udp_moved:,} UDP, measured on sampled traffic")


def resilient_text(imp: IncidentImpact) -> str:
    """``with resilient hashing it would have moved 2,489 flows (0 collateral) instead of 3,308, estimated``;
    "" when not known or not a failure."""
    alt, on = imp.resilient, imp.onset
    if alt is None or on is None:
        return ""
    if alt.moved == on.estimated.moved:
        return f"resilient hashing would have moved as many ({alt.moved:,}), estimated"
    return (f"with resilient hashing it would have moved {alt.moved:,} flows ({alt.collateral:,} collateral) "
            f"instead of {on.estimated.moved:,}, estimated")


def phase_text(p: PhaseImpact | None) -> str:
    """One line: estimated, live, servers lost, ingress model."""
    if p is None:
        return "impact not computed"
    parts = [estimated_text(p)]
    if lt := live_text(p):
        parts.append(lt)
    if st := sampled_text(p):
        parts.append(st)
    if p.capacity_lost:
        parts.append(f"out of service: {', '.join(p.servers_lost)} ({p.capacity_lost})")
    if p.ingress_assumed:
        parts.append(p.ingress)
    return " · ".join(parts)


SampleOf = Callable[[str], FlowArray | None]
SampledOf = Callable[[str, int], SampledFlowSet | None]  # (prefix, detection ms) -> sampled flows alive by then


@functools.lru_cache(maxsize=16)
def default_sample(dst: str) -> FlowArray | None:
    """The sample every surface uses for ``dst`` (None for IPv6 addresses: the sample clients are IPv4)."""
    if ipaddress.ip_address(dst).version != 4:
        return None
    return synthetic_flows(SAMPLE_CLIENTS, SAMPLE_FLOWS, dst=dst)


def _servers(snap: FabricSnapshot, imp: Impact, ends: np.ndarray, result_outcome: np.ndarray) -> set[str]:
    delivered = result_outcome == PathOutcome.DELIVERED
    names = {imp.labels[int(i)] for i in np.unique(ends[delivered])}
    return {n for n in names if n in snap.devices and snap.devices[n].device.role is Role.SERVER}


def _counts(imp: Impact, lost: set[str], gained: set[str]) -> ImpactCounts:
    """Counts of one comparison; collateral = moved flows between servers that answered both before and
    after (a flow whose server went away had to move, one taken by a server that came had to; any
    other move is the hashing's doing — what resilient hashing avoids on a failure)."""
    c = ImpactCounts.of(imp)

    def on(ends: np.ndarray, names: set[str]) -> np.ndarray:
        codes = [i for i, label in enumerate(imp.labels) if label in names]
        return np.isin(ends, codes) if codes else np.zeros(len(ends), bool)

    needed = on(imp.before_end, lost) | on(imp.after_end, gained)
    return ImpactCounts(c.flows, c.moved, c.tcp_reset, c.udp_moved, int((imp.moved & ~needed).sum()))


def phase_impact(phase: PhaseSnapshots, prefixes: tuple[str, ...], sample_of: SampleOf = default_sample, *,
                 keep_detail: bool = False, with_live: bool = True,
                 sampled_of: SampledOf | None = None) -> PhaseImpact | None:
    """End-to-end impact of one phase over the sample (and live flows) to every address in ``prefixes``
    (``keep_detail``: which sample flows moved, for the first prefix with a sample)."""
    detail: EventImpact | None = None
    before, after = phase.before, phase.after
    est = ImpactCounts()
    live_counts: LiveCounts | None = None
    matrix: dict[tuple[str, str], int] = {}
    had: set[str] = set()
    has: set[str] = set()
    note, assumed, n_sample, any_prefix = "", False, 0, False
    sampled: SampledCounts | None = None
    for prefix in prefixes:
        dst = str(ipaddress.ip_network(prefix, strict=False).network_address)
        flows = sample_of(dst)
        if flows is not None and len(flows):
            ing_b, model_b = ingress_of(before, flows)
            ing_a, model_a = ingress_of(after, flows)
            if ing_b is None or ing_a is None:
                note, assumed = (model_b if ing_b is None else model_a).note, True
            else:
                imp = impact(before, after, flows, ing_b, ingress_after=ing_a)
                any_prefix = True
                note, assumed = model_b.note, model_b.assumed or model_a.assumed
                if keep_detail and detail is None:
                    detail = EventImpact.of(prefix, before, after, imp)
                had_p = _servers(before, imp, imp.before_end, imp.before.outcome)
                has_p = _servers(after, imp, imp.after_end, imp.after.outcome)
                est = est + _counts(imp, had_p - has_p, has_p - had_p)
                n_sample += len(flows)
                for pair, n in imp.matrix().items():
                    matrix[pair] = matrix.get(pair, 0) + n
                had |= had_p
                has |= has_p
        lv = _live(before, after, dst) if with_live else None
        if lv is not None:
            live_counts = lv if live_counts is None else live_counts + lv
        sset = sampled_of(prefix, _detected_ms(phase)) if with_live and sampled_of is not None else None
        if sset is not None and len(sset):
            sc = _sampled(before, after, sset)
            sampled = sc if sampled is None else sampled + sc
    if not any_prefix and live_counts is None and sampled is None:
        return None
    pairs = tuple((a, b, n) for (a, b), n in sorted(matrix.items(), key=lambda kv: (-kv[1], kv[0]))[:MATRIX_MAX])
    return PhaseImpact(est, live_counts, pairs, tuple(sorted(had)), tuple(sorted(had - has)), tuple(sorted(has - had)),
                       note, assumed, f"{n_sample:,} synthetic flows", sampled, detail)


def _detected_ms(phase: PhaseSnapshots) -> int:
    """When the phase was seen: the newest collection or health change among the device states it changed (the
    snapshots' own times may be older: an incident's after side is its before side with those states)."""
    before = phase.before.devices
    times = [phase.after.taken_at_ms, phase.before.taken_at_ms]
    for name, st in phase.after.devices.items():
        if before.get(name) is not st:
            times += [t for t in (st.collected_at_ms, st.health.since_ms) if t is not None]
    return max(times)


def observed_ingress(snap: FabricSnapshot, sset: SampledFlowSet) -> tuple[tuple[str, ...], np.ndarray] | None:
    """Each sampled flow enters where it was sampled closest to the clients; a flow whose entry device is not
    in ``snap`` or not forwarding (failed) enters where the ingress model puts it instead."""
    ok = np.array([n in snap.devices and snap.devices[n].health.status is HealthStatus.OK
                   for n in sset.entry_names] or [False], bool)
    keep = ok[sset.entry] if len(sset.entry_names) else np.zeros(len(sset), bool)
    if keep.all():
        return sset.entry_names, sset.entry
    model, _ = ingress_of(snap, sset.flows)
    if model is None:
        return None
    names = tuple(dict.fromkeys(sset.entry_names + model[0]))
    ix = {n: i for i, n in enumerate(names)}
    own = np.array([ix[n] for n in sset.entry_names], np.int64)[sset.entry] if sset.entry_names else sset.entry
    other = np.array([ix[n] for n in model[0]], np.int64)[model[1]]
    return names, np.where(keep, own, other)


def _sampled(before: FabricSnapshot, after: FabricSnapshot, sset: SampledFlowSet) -> SampledCounts:
    ing_b = observed_ingress(before, sset)
    ing_a = observed_ingress(after, sset)
    base = SampledCounts(len(sset), pps=sset.pps(), rate=sset.rate_text, window_s=sset.window_s)
    if ing_b is None or ing_a is None:
        return base
    imp = impact(before, after, sset.flows, ing_b, ingress_after=ing_a)
    c = ImpactCounts.of(imp)
    return replace(base, moved=c.moved, tcp_reset=c.tcp_reset, udp_moved=c.udp_moved,
                   moved_pps=sset.pps(np.asarray(imp.moved, bool)))


def _live(before: FabricSnapshot, after: FabricSnapshot, dst: str) -> LiveCounts | None:
    lf = live_flow_set(before, dst)
    if lf.devices == 0:
        return None
    if not lf.flows:
        return LiveCounts(0, 0, 0 if lf.udp_known else None, lf.stale)
    arr = FlowArray.from_flows(list(lf.flows))
    ing_b, _ = ingress_of(before, arr)
    ing_a, _ = ingress_of(after, arr)
    if ing_b is None or ing_a is None:
        return LiveCounts(len(lf.flows), 0, None, lf.stale)
    imp = impact(before, after, arr, ing_b, ingress_after=ing_a)
    c = ImpactCounts.of(imp)  # collateral is not shown for live flows
    return LiveCounts(len(lf.flows), c.tcp_reset, c.udp_moved if lf.udp_known else None, lf.stale)


def incident_impact(incident_id: int, onset: PhaseSnapshots | None, restore: PhaseSnapshots | None,
                    prefixes: tuple[str, ...], sample_of: SampleOf = default_sample, *,
                    keep_detail: bool = False, sampled_of: SampledOf | None = None) -> IncidentImpact:
    """Both phases of one incident (see the module doc)."""
    return IncidentImpact(
        incident_id,
        phase_impact(onset, prefixes, sample_of, keep_detail=keep_detail, sampled_of=sampled_of)
        if onset is not None else None,
        phase_impact(restore, prefixes, sample_of, keep_detail=keep_detail, sampled_of=sampled_of)
        if restore is not None else None)


def whatif_changes(inc: Incident) -> list[WhatIf]:
    """The incident's onset as what-if edits (``model.impact``): a device that went unreachable fails, each
    anycast next hop a device lost fails on it.  Applied to the before fabric they give the after one (the
    test checks that on the simulator), under any mapping."""
    devices = [WhatIf(WhatIfKind.FAIL_DEVICE, ev.device) for ev in inc.events
               if ev.kind is EventKind.DEVICE_UNREACHABLE]
    hops = [WhatIf(WhatIfKind.FAIL_NEXTHOP, ev.device, ev.nexthop.gateway) for ev in inc.events
            if ev.kind is EventKind.NEXTHOP_REMOVED and ev.prefix in inc.prefixes and ev.nexthop is not None
            and ev.nexthop.gateway]
    return list(dict.fromkeys(devices + hops))


def replayed_onset(before: FabricSnapshot, inc: Incident, mapping: str = "actual") -> FabricSnapshot | None:
    """``before`` with the incident's onset applied as what-if edits, the devices the incident changed
    under ``mapping`` (their routes that can carry a flow to the incident's prefixes); None without any edit."""
    changes = whatif_changes(inc)
    if not changes:
        return None
    snap = with_mapping(before, mapping, only=set(inc.devices), covering=inc.prefixes)
    for change in changes:
        try:
            snap = apply(snap, change)
        except WhatIfError:
            continue  # e.g. a next hop of a device already failed by an earlier edit
    return snap


def resilient_counts(phase: PhaseSnapshots, inc: Incident, sample_of: SampleOf = default_sample
                     ) -> ImpactCounts | None:
    """What the onset would have moved had the groups of the devices it changed been resilient (the others
    place a flow alike before and after, whatever their mapping; converting only these keeps the cost to
    them); None when it cannot be replayed."""
    if inc.kind is not IncidentKind.FAILURE:
        return None
    after = replayed_onset(phase.before, inc, "resilient")
    if after is None:
        return None
    before = with_mapping(phase.before, "resilient", only=set(inc.devices), covering=inc.prefixes)
    p = phase_impact(PhaseSnapshots(before, after), inc.prefixes, sample_of, with_live=False)
    return p.estimated if p is not None else None


def without_detail(imp: IncidentImpact) -> IncidentImpact:
    """The same counts without the per-flow arrays (what older incidents keep in memory)."""
    def strip(p: PhaseImpact | None) -> PhaseImpact | None:
        return None if p is None or p.detail is None else replace(p, detail=None)
    return IncidentImpact(imp.incident_id, strip(imp.onset) if imp.onset and imp.onset.detail else imp.onset,
                          strip(imp.restore) if imp.restore and imp.restore.detail else imp.restore, imp.resilient)


# --------------------------------------------------------------------------- JSON (recording boundary)


def counts_json(c: ImpactCounts) -> dict[str, int]:
    return {"flows": c.flows, "moved": c.moved, "tcp_reset": c.tcp_reset, "udp_moved": c.udp_moved,
            "collateral": c.collateral}


def live_json(c: LiveCounts | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"connections": c.connections, "tcp_reset": c.tcp_reset, "udp_moved": c.udp_moved, "stale": c.stale}


def sampled_json(c: SampledCounts | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"flows": c.flows, "moved": c.moved, "tcp_reset": c.tcp_reset, "udp_moved": c.udp_moved,
            "pps": round(c.pps, 3), "moved_pps": round(c.moved_pps, 3), "rate": c.rate, "window_s": c.window_s}


def sampled_from_json(d: dict[str, Any] | None) -> SampledCounts | None:
    if not d:
        return None
    return SampledCounts(int(d["flows"]), int(d["moved"]), int(d["tcp_reset"]), int(d["udp_moved"]),
                         float(d.get("pps", 0.0)), float(d.get("moved_pps", 0.0)), str(d.get("rate", "1:?")),
                         float(d.get("window_s", 0.0)))


def phase_json(p: PhaseImpact | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"estimated": counts_json(p.estimated), "live": live_json(p.live), "sampled": sampled_json(p.sampled),
            "servers": [list(m) for m in p.matrix], "servers_before": list(p.servers_before),
            "servers_lost": list(p.servers_lost), "servers_gained": list(p.servers_gained),
            "ingress": p.ingress, "ingress_assumed": p.ingress_assumed, "sample": p.sample}


def counts_from_json(d: dict[str, Any] | None) -> ImpactCounts | None:
    if not d:
        return None
    return ImpactCounts(int(d["flows"]), int(d["moved"]), int(d["tcp_reset"]), int(d["udp_moved"]),
                        int(d["collateral"]))


def phase_from_json(d: dict[str, Any] | None) -> PhaseImpact | None:
    if not d:
        return None
    e = d["estimated"]
    lv = d.get("live")
    return PhaseImpact(ImpactCounts(int(e["flows"]), int(e["moved"]), int(e["tcp_reset"]), int(e["udp_moved"]),
                                    int(e["collateral"])),
                       None if lv is None else LiveCounts(int(lv["connections"]), int(lv["tcp_reset"]),
                                                          None if lv["udp_moved"] is None else int(lv["udp_moved"]),
                                                          int(lv.get("stale", 0))),
                       tuple((str(a), str(b), int(n)) for a, b, n in d.get("servers", ())),
                       tuple(map(str, d.get("servers_before", ()))), tuple(map(str, d.get("servers_lost", ()))),
                       tuple(map(str, d.get("servers_gained", ()))), str(d.get("ingress", "")),
                       bool(d.get("ingress_assumed", False)), str(d.get("sample", "")),
                       sampled_from_json(d.get("sampled")))
