"""``evaluate``: every health check over one fabric snapshot, one ``HealthReport`` (re-exported by
``model/health.py``, the contract).

Per anycast prefix with a flow sample, the sample is placed end to end once (``shares.trace_prefix``: where
it enters by ``model.ingress``, hop by hop by ``model.paths``, as incident impact places it); the server
shares (``shares.py``), the devices' spreads (``polarization.py``) and the rules (``rules.py``) all read that
one placement.  Live flows (``DeviceState.flows``) feed the connection rules; ``HealthTracker`` carries what
they need across polls.  Pure apart from the tracker.
"""

from __future__ import annotations

import ipaddress
from typing import Collection, Mapping

from anycast_tui.model import polarization, rules, shares
from anycast_tui.model.findings import DeviceSpread, Finding, HealthReport, ServerShare, Severity
from anycast_tui.model.mapping import PlacementError
from anycast_tui.model.rules import HealthTracker, Thresholds
from anycast_tui.model.shares import SampleOf, TrafficOf, health_sample
from anycast_tui.model.types import ConfiguredGroup, Event, EventKind, FabricSnapshot

__all__ = ["HealthTracker", "Thresholds", "evaluate", "finding_events", "open_findings"]


def evaluate(snap: FabricSnapshot, *, sample_of: SampleOf = health_sample, tracker: HealthTracker | None = None,
             weights: Mapping[str, float] | None = None, thresholds: Thresholds = Thresholds(),
             tcp: Collection[str] | None = None, traffic_of: TrafficOf | None = None,
             frr_config: Mapping[str, tuple[ConfiguredGroup, ...]] | None = None) -> HealthReport:
    """Every check over ``snap`` (see ``rules.py`` for the rules).

    ``sample_of``: the flows placed per anycast address (default: incident impact's synthetic sample for IPv4,
    its IPv6 counterpart for IPv6: ``shares.health_sample``); ``traffic_of``: the fabric's sampled flows per
    anycast prefix (``SampledWindow.flow_set``): server shares are then measured on them (their estimated
    packets), the hash space's beside; ``frr_config``: device → the nexthop-groups of its FRR running
    configuration (``parse.frr_running``), for ``resilient-not-in-effect`` (default: each device's
``frr_groups``, as its collector read them);
    ``tracker``: first-seen times of live TCP connections across polls (without one, long-lived TCP is not
    judged); ``weights``: server → configured weight (fair shares by weight; default equal); ``tcp``: prefixes
    known to serve TCP (default: those with live TCP flows)."""
    th = thresholds
    prefixes = tuple(snap.anycast_prefixes)
    if tracker is not None:
        tracker.observe(snap, prefixes)
    findings: list[Finding] = rules.not_answering(snap)
    all_shares: list[ServerShare] = []
    all_spreads: list[DeviceSpread] = []
    spaces_all: list[shares.HashSpaces] = []
    pairs: dict[str, set[tuple[str, str]]] = {}
    family_of: dict[tuple[str, str], int] = {}
    ups: dict[str, dict[str, set[str]]] = {}
    notes: list[str] = []
    tcp_set = set(tcp) if tcp is not None else rules.tcp_prefixes(snap, prefixes)
    per_prefix = []
    for prefix in prefixes:
        try:
            paths = shares.trace_prefix(snap, prefix, sample_of)
            if paths is None:
                continue
            spaces = shares.HashSpaces(snap, paths.flows, prefix)
            adjacent = polarization.adjacency(snap, spaces)
            sset = traffic_of(prefix) if traffic_of is not None else None
            traffic = shares.sampled_traffic(snap, sset) if sset is not None and len(sset) else None
            got, topo, parents = shares.server_shares(snap, paths, spaces, weights, traffic,
                                                      th.sampled_min_flows)
            spread = polarization.spreads(snap, paths, spaces)
        except PlacementError as exc:  # a device's tables contradict themselves: say so, check the rest
            findings.append(Finding("tables-inconsistent", Severity.ERROR, prefix,
                                    f"{prefix}: flows cannot be placed: {exc}",
                                    "read the device's routes and nexthop objects again (a route naming a nexthop "
                                    "the table lacks, a bad weight)", (str(exc),)))
            continue
        spaces_all.append(spaces)
        pairs[prefix] = adjacent
        fam = ipaddress.ip_network(prefix, strict=False).version
        family_of.update({p: fam for p in pairs[prefix]})
        ups[prefix] = polarization.upstream(paths)
        all_shares += got
        all_spreads += spread
        notes.append(f"{prefix}: {paths.note}; {len(paths.flows):,} synthetic flows"
                     + (f"; sampled traffic: {traffic.text} ({traffic.total:,} in the window)" if traffic else ""))
        per_prefix.append((prefix, paths, spaces, got, topo, parents, spread))
    findings += rules.seed_zero(snap, spaces_all)
    findings += rules.same_seed(snap, pairs)
    pol = rules.polarized(snap, all_spreads, ups, th)
    findings += pol
    for prefix, paths, spaces, got, topo, parents, spread in per_prefix:
        devices = [f.subject.split(" ")[0] for f in pol if f.subject.endswith(" " + prefix)]
        findings += rules.imbalance(prefix, got, topo, parents, devices, th)
        if prefix in tcp_set:
            findings += rules.hash_threshold_tcp(snap, paths, spaces)
    findings += rules.rib_fib(snap, prefixes)
    if frr_config is None:  # what the collectors read (DeviceState.frr_groups)
        frr_config = {n: st.frr_groups for n, st in snap.devices.items() if st.frr_groups is not None}
    if frr_config:
        findings += rules.resilient_not_in_effect(snap, frr_config)
    findings += rules.outbound_tcp(snap, prefixes, th)
    if tracker is not None:
        findings += rules.long_lived(snap, tracker, prefixes, th)
    findings += rules.multi_connection(snap, prefixes, th)
    findings.sort(key=lambda f: (-f.severity, f.rule, f.subject))
    table = polarization.hash_table(snap, spaces_all, set().union(*pairs.values()) if pairs else set(), family_of)
    return HealthReport(snap.taken_at_ms, tuple(all_shares), tuple(all_spreads), tuple(findings), table,
                        tuple(notes))


# --------------------------------------------------------------------------- findings as events


def _event(f: Finding, kind: EventKind, t_ms: int) -> Event:
    words = f.subject.split()
    prefix = next((w for w in words if "/" in w), None)
    cleared = kind is EventKind.FINDING_CLEARED
    detail = f"{'cleared' if cleared else f.severity.label} {f.rule}: {f.summary}"
    return Event(t_ms, words[0] if words else "", kind, f"{f.rule} {f.subject}", detail, prefix=prefix,
                 before=f.severity.label if cleared else None, after=None if cleared else f.severity.label)


def finding_events(before: HealthReport | None, after: HealthReport) -> list[Event]:
    """Findings that appeared (``FINDING_RAISED``; also one whose severity changed) and went away
    (``FINDING_CLEARED``) from ``before`` to ``after``, at ``after``'s time: a finding is the same finding while
    its key (rule, subject) stays; its event's subject is ``"rule subject"``, its detail the one-line summary."""
    old = {f.key: f for f in before.findings} if before is not None else {}
    new = {f.key: f for f in after.findings}
    t = after.taken_at_ms
    out = [_event(old[k], EventKind.FINDING_CLEARED, t) for k in old if k not in new]
    out += [_event(f, EventKind.FINDING_RAISED, t) for k, f in new.items()
            if k not in old or old[k].severity != f.severity]
    return out


def open_findings(events: list[Event], t0: int, t1: int | None) -> list[tuple[str, str, int]]:
    """(``"rule subject"``, severity, raised at ms) of the findings open at some time in [t0, t1] (t1 None: still
    going), from a timeline's or a recording's events in time order: raised at or before t1 and not cleared
    before t0."""
    state: dict[str, tuple[str, int]] = {}
    during: dict[str, tuple[str, int]] = {}
    for ev in events:
        if t1 is not None and ev.time_ms > t1:
            break
        if ev.kind is EventKind.FINDING_RAISED:
            state[ev.subject] = (ev.after or "", ev.time_ms)
            if ev.time_ms >= t0:
                during[ev.subject] = state[ev.subject]
        elif ev.kind is EventKind.FINDING_CLEARED:
            if ev.subject in state and ev.time_ms >= t0:
                during.setdefault(ev.subject, state[ev.subject])
            state.pop(ev.subject, None)
    during.update(state)
    order = {s.label: -s for s in Severity}
    return sorted(((k, sev, t) for k, (sev, t) in during.items()), key=lambda x: (order.get(x[1], 0), x[2], x[0]))
