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
from anycast_tui.model.findings import DeviceSpread, Finding, HealthReport, ServerShare
from anycast_tui.model.incident_impact import default_sample
from anycast_tui.model.rules import HealthTracker, Thresholds
from anycast_tui.model.shares import SampleOf
from anycast_tui.model.types import FabricSnapshot

__all__ = ["HealthTracker", "Thresholds", "evaluate"]


def evaluate(snap: FabricSnapshot, *, sample_of: SampleOf = default_sample, tracker: HealthTracker | None = None,
             weights: Mapping[str, float] | None = None, thresholds: Thresholds = Thresholds(),
             tcp: Collection[str] | None = None) -> HealthReport:
    """Every check over ``snap`` (see ``rules.py`` for the rules).

    ``sample_of``: the flows placed per anycast address (default: incident impact's synthetic sample);
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
        paths = shares.trace_prefix(snap, prefix, sample_of)
        if paths is None:
            continue
        spaces = shares.HashSpaces(snap, paths.flows, prefix)
        spaces_all.append(spaces)
        pairs[prefix] = polarization.adjacency(snap, spaces)
        fam = ipaddress.ip_network(prefix, strict=False).version
        family_of.update({p: fam for p in pairs[prefix]})
        ups[prefix] = polarization.upstream(paths)
        got, topo, parents = shares.server_shares(snap, paths, spaces, weights)
        spread = polarization.spreads(snap, paths, spaces)
        all_shares += got
        all_spreads += spread
        notes.append(f"{prefix}: {paths.note}; {len(paths.flows):,} synthetic flows")
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
    findings += rules.outbound_tcp(snap, prefixes, th)
    if tracker is not None:
        findings += rules.long_lived(snap, tracker, prefixes, th)
    findings += rules.multi_connection(snap, prefixes, th)
    findings.sort(key=lambda f: (-f.severity, f.rule, f.subject))
    table = polarization.hash_table(snap, spaces_all, set().union(*pairs.values()) if pairs else set(), family_of)
    return HealthReport(snap.taken_at_ms, tuple(all_shares), tuple(all_spreads), tuple(findings), table,
                        tuple(notes))
