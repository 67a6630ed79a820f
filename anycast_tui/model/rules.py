"""The rules: each a pure function of the snapshot (and what the other check modules computed) that returns
``Finding``s with a stable kebab-case id, a severity, a one-line summary, a one-line fix and evidence lines.

===============================  ========  ==========================================================
rule                             severity  when
===============================  ========  ==========================================================
device-not-answering             error     a device did not answer its last poll (never, or stale)
data-not-collected               warning   devices nobody asked (``Health.unobserved``: their collector is
                                           silent, the bus is down): one finding per reason, the devices
                                           in its evidence
seed-zero                        warning   a device hashing an anycast prefix over several next hops
                                           has ``fib_multipath_hash_seed`` 0 (random key per boot)
same-seed-consecutive-tiers      warning   a device and one it forwards an anycast prefix to hash alike
                                           (policy, fields under policy 3, non-zero seed)
polarized                        warning   a next hop gets under half / over twice its fair share of
                                           the flows really reaching the device (``polarization.py``)
imbalance                        warning   a server's share of a prefix (of the sampled traffic where there
                                           is enough, else of hash space: measured on the sample, or by the
                                           routes alone) is ≥ ``Thresholds.imbalance`` × its fair share (the
                                           topology's doing, the hashing's or the traffic's: said which)
hash-threshold-tcp               warning   a prefix that carries TCP is hashed by non-resilient groups;
                                           the what-if cost of a next-hop failure under both
rib-fib-mismatch                 error     BGP's paths ≠ the kernel's next hops, in two polls running
                                           (warning when seen in one only: a recording's moment)
outbound-tcp-anycast             error     a server holds TCP it opened from the anycast address
long-lived-tcp                   warning   TCP connections to an anycast address alive longer than
                                           ``Thresholds.long_lived_s`` (``HealthTracker``)
multi-connection-protocol        warning   live connections of a multi-connection protocol (FTP …) to
                                           an anycast address; a client's connections on several servers
resilient-not-in-effect          warning   FRR's running configuration has a resilient nexthop-group, the
                                           kernel forwards over its next hops with a plain group or route
tables-inconsistent              error     a device's tables contradict themselves: flows to the prefix
                                           cannot be placed (``checks.evaluate`` reports it, checks the rest)
===============================  ========  ==========================================================
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, replace
from typing import Collection, Iterable, Mapping

import numpy as np

from anycast_tui.model.findings import DeviceSpread, Finding, ServerShare, Severity
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import impact
from anycast_tui.model.whatif import WhatIf, WhatIfError, WhatIfKind, apply, with_mapping
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.paths import Tracer, any_hop, code_mask
from anycast_tui.model.placement import HashCache, Outcome, compiled_for, hash_space
from anycast_tui.model.polarization import hash_key, same_hash, worst_hop
from anycast_tui.model.rib import disagreements
from anycast_tui.model.shares import HashSpaces, PrefixPaths, prefix_address, rate_text, topology_text
from anycast_tui.model.types import (ConfiguredGroup, DeviceState, FabricSnapshot, Flow, Health, HealthStatus,
                                     select_routes)

EVIDENCE_MAX = 20  # evidence lines listing sessions / devices, at most
MULTI_CONNECTION_PORTS = {21: "FTP", 20: "FTP data", 69: "TFTP", 554: "RTSP", 1723: "PPTP", 5060: "SIP",
                          1719: "H.323", 1720: "H.323"}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where a rule starts to fire."""

    imbalance: float = 1.2  # max share / fair share of a server (measured, or by the routes alone)
    polarized_low: float = 0.5  # a next hop's share of the flows reaching its device / its uniform share
    polarized_high: float = 2.0
    long_lived_s: float = 300.0  # TCP connections alive longer than this are long-lived
    ephemeral_ports: tuple[int, int] = (32768, 60999)  # Linux ip_local_port_range default: a server-opened port
    sampled_min_flows: int = 100  # sampled flows placed on servers before shares are measured on sampled traffic


def _pct(x: float) -> str:
    return f"{round(100 * x, 1):g} %"


def _list(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _hs(snap: FabricSnapshot, name: str) -> str:
    hs = snap.devices[name].hash
    fields = f", fields 0x{hs.fields:04x}" if hs.policy == 3 else ""
    return f"{name}: policy {hs.policy}{fields}, seed {hs.seed}"


# --------------------------------------------------------------------------- devices


def not_answering(snap: FabricSnapshot) -> list[Finding]:
    out = []
    unobserved: dict[str, list[str]] = {}
    for name, st in snap.devices.items():
        h = st.health
        if h.status in (HealthStatus.OK, HealthStatus.UNKNOWN):  # UNKNOWN: not polled yet (check polls them all)
            continue
        if h.status is HealthStatus.STALE and h.unobserved:  # not asked: the device may be fine
            unobserved.setdefault(h.error or "not collected", []).append(name)
            continue
        why = h.error or "no answer yet"
        if h.status is HealthStatus.STALE:
            summary = f"{name} did not answer its last poll ({why}): its data is from an earlier poll"
        else:
            summary = f"{name} never answered ({why})"
        out.append(Finding("device-not-answering", Severity.ERROR, name, summary,
                           "check the device, its SSH access and the inventory entry",
                           (f"health: {h.status.value}", f"reason: {why}")))
    for why, names in unobserved.items():
        n = len(names)
        out.append(Finding("data-not-collected", Severity.WARNING, why,
                           f"{why}: {n} device{'s' if n != 1 else ''} stale ({_list(names)}), their data from before",
                           "check the collector and the bus (the devices themselves were not asked)",
                           tuple(f"{x}: stale, not asked" for x in names)))
    return out


# --------------------------------------------------------------------------- hashing


def seed_zero(snap: FabricSnapshot, spaces: list[HashSpaces]) -> list[Finding]:
    out = []
    for name, st in snap.devices.items():
        if st.collected_at_ms is None or st.hash.seed != 0 or st.device.platform in ("cumulus", "sonic"):
            continue
        multi = [sp.prefix for sp in spaces if sp.multipath(name)]
        if not multi:
            continue
        out.append(Finding(
            "seed-zero", Severity.WARNING, name,
            f"{name} hashes with seed 0: the kernel picks a random key at boot, so where its flows go is unknown "
            f"and changes with every reboot",
            f"set net.ipv4.fib_multipath_hash_seed on {name} to a non-zero value, different from its neighbours'",
            (_hs(snap, name), f"several next hops for {_list(multi)}")))
    return out


def same_seed(snap: FabricSnapshot, pairs: dict[str, set[tuple[str, str]]]) -> list[Finding]:
    """``pairs``: per prefix, (a, b) where a forwards it to b and b forwards it on."""
    ups: dict[str, set[str]] = {}
    for prefix, ps in pairs.items():
        fam = ipaddress.ip_network(prefix, strict=False).version
        for a, b in ps:
            if same_hash(snap, a, b, fam):
                ups.setdefault(b, set()).add(a)
    out = []
    for b in sorted(ups):
        a = sorted(ups[b])
        policy, _, seed = hash_key(snap.devices[b].hash, 4)
        out.append(Finding(
            "same-seed-consecutive-tiers", Severity.WARNING, b,
            f"{b} and {_list(a, 3)} use policy {policy} with the same seed {seed}: {b} re-hashes flows they "
            f"already split alike (polarization risk)",
            f"give {b} a fib_multipath_hash_seed of its own (a different seed per tier, or per device)",
            tuple(_hs(snap, n) for n in [b, *a][:EVIDENCE_MAX])))
    return out


def polarized(snap: FabricSnapshot, spreads: Iterable[DeviceSpread], ups: dict[str, dict[str, set[str]]],
              th: Thresholds) -> list[Finding]:
    """``ups``: per prefix, device → the devices handing it flows."""
    out = []
    for sp in spreads:
        hit = worst_hop(sp, th.polarized_low, th.polarized_high)
        if hit is None:
            continue
        hop, s, u = hit
        fam = ipaddress.ip_network(sp.prefix, strict=False).version
        before = sorted(ups.get(sp.prefix, {}).get(sp.device, ()))
        alike = [a for a in before if same_hash(snap, a, sp.device, fam)]
        what = f"{sp.device} sends {_pct(s)} to {hop} (uniform input: {_pct(u)}) of the {sp.flows:,} flows reaching it"
        if alike:
            policy, _, _ = hash_key(snap.devices[sp.device].hash, fam)
            summary = f"{sp.device} and {_list(alike, 3)} use policy {policy} with the same seed: {what}"
            fix = f"give {sp.device} a fib_multipath_hash_seed of its own"
        else:
            summary = f"flows reaching {sp.device} from {_list(before, 3) or 'its entry'} are uneven in its hash space: {what}"
            fix = (f"hash on more fields (policy 1) and with different seeds on {sp.device} and "
                   f"{_list(before, 3) or 'the devices before it'}")
        uni = dict(sp.uniform)
        evidence = tuple(f"{h}: {_pct(x)} of {sp.flows:,} flows (uniform input {_pct(uni.get(h, 0.0))})"
                         for h, x in sp.shares[:EVIDENCE_MAX])
        evidence += tuple(_hs(snap, n) for n in [sp.device, *before][:4] if n in snap.devices)
        out.append(Finding("polarized", Severity.WARNING, f"{sp.device} {sp.prefix}", summary, fix, evidence))
    return out


# --------------------------------------------------------------------------- shares


def imbalance(prefix: str, shares: tuple[ServerShare, ...], topo: dict[str, float], parents: dict[str, set[str]],
              polarized_devices: list[str], th: Thresholds) -> list[Finding]:
    """A server's share ≥ ``th.imbalance`` × fair.  Measured on sampled traffic when the shares are (said so, with
    the flows and packet rate it rests on), on hash space otherwise; why: the topology, the hashing, or — hash
    space fair, sampled traffic not — the traffic itself."""
    mine = [s for s in shares if s.prefix == prefix and s.fair > 0]
    if not mine:
        return []
    worst = max(mine, key=lambda s: (s.share / s.fair, s.server))
    ratio = worst.share / worst.fair
    fair = {s.server: s.fair for s in mine}
    by_topology = max((topo.get(s, 0.0) / f for s, f in fair.items()), default=0.0)
    if ratio < th.imbalance and by_topology < th.imbalance - 1e-9:  # the routes' own shares: no sampling noise
        return []
    sampled = worst.sampled
    by_hash = max(((s.hash_share or 0.0) / s.fair for s in mine), default=0.0) if sampled else ratio
    why, per_device = topology_text(topo, parents, fair, th.imbalance)
    if sampled:
        flows = sum(s.flows or 0 for s in mine)
        pps = sum(s.pps or 0.0 for s in mine)
        head = (f"{prefix}: {worst.server} gets {_pct(worst.share)} of the sampled traffic against a fair "
                f"{_pct(worst.fair)} ({ratio:.2f}× fair; measured on {flows:,} sampled flows, "
                f"≈ {rate_text(pps)} pkt/s)")
    else:
        head = (f"{prefix}: {worst.server} gets {_pct(worst.share)} of the hash space against a fair "
                f"{_pct(worst.fair)} ({ratio:.2f}× fair)")
    if why:
        summary = f"{head}; by topology: {why}"
        fix = ("give every leaf the same number of servers, or weight the routes (UCMP) by the servers behind each "
               "next hop") if per_device else ("find the group missing next hops or weighted unevenly on the way "
                                               "(see the device spreads and the BGP paths)")
    elif sampled and by_hash < th.imbalance:
        summary = (f"{head}; by traffic: the hash space is fair ({by_hash:.2f}× at most), the flows it carries "
                   f"are not: {worst.server} answers {worst.flows or 0:,} of the sampled flows, with "
                   f"{_pct(worst.share)} of the packets")
        fix = ("the hashing places flows, not bytes: a few heavy flows (or clients) land where their 5-tuples hash; "
               "more flows per heavy client, or weights, even it out")
    elif polarized_devices:
        summary = f"{head}; by hashing: polarized on {_list(polarized_devices, 3)}"
        fix = "see the polarized findings: a seed of its own on each device that re-hashes alike"
    else:
        summary, fix = f"{head}; by hashing", "hash on more fields (policy 1) with different seeds per tier"

    def line(s: ServerShare) -> str:
        if not s.sampled:
            return f"{s.server}: {_pct(s.share)} (fair {_pct(s.fair)}, topology {_pct(topo.get(s.server, 0.0))})"
        return (f"{s.server}: {_pct(s.share)} of the sampled traffic (≈ {rate_text(s.pps or 0.0)} pkt/s, "
                f"{s.flows or 0:,} flows; hash space {_pct(s.hash_share or 0.0)}, fair {_pct(s.fair)}, "
                f"topology {_pct(topo.get(s.server, 0.0))})")
    evidence = tuple(line(s) for s in sorted(mine, key=lambda s: -s.share)[:EVIDENCE_MAX]) + (mine[0].basis,)
    return [Finding("imbalance", Severity.WARNING, prefix, summary, fix, evidence)]


# --------------------------------------------------------------------------- hash-threshold in front of TCP


def group_kind(snap: FabricSnapshot, name: str, spaces: HashSpaces) -> str:
    """``resilient``, ``hash-threshold`` (plain multipath routes and mpath groups) or ``single`` for the prefix."""
    if not spaces.multipath(name):
        return "single"
    st = snap.devices[name]
    route = spaces.route(name)
    g = st.group(route.nhid) if route is not None and route.nhid is not None else None
    return g.type if g is not None and g.type == "resilient" else "hash-threshold"


def tcp_prefixes(snap: FabricSnapshot, prefixes: Iterable[str]) -> set[str]:
    """Prefixes with live TCP flows to their address on an answering device."""
    addrs = {str(ipaddress.ip_network(p, strict=False).network_address): p for p in prefixes}
    out = set()
    for st in snap.devices.values():
        if st.health.status is HealthStatus.OK:
            for f in st.flows:
                if f.proto == 6 and f.dst in addrs:
                    out.add(addrs[f.dst])
    return out


def hash_threshold_tcp(snap: FabricSnapshot, paths: PrefixPaths, spaces: HashSpaces) -> list[Finding]:
    devices = sorted(d for d in snap.devices if snap.devices[d].collected_at_ms is not None
                     and group_kind(snap, d, spaces) == "hash-threshold")
    if not devices:
        return []
    evidence = [f"hash-threshold groups for {paths.prefix} on {_list(devices, 8)}"]
    cost = _next_failure_cost(snap, paths, spaces, devices)
    if cost:
        evidence.append(cost)
    evidence.append("resilient groups keep unrelated flows on a failure, not when a next hop is added "
                    "(a restore, a new server)")
    return [Finding("hash-threshold-tcp", Severity.WARNING, paths.prefix,
                    f"{paths.prefix} carries TCP and {len(devices)} device{'s' if len(devices) != 1 else ''} hash it "
                    f"with hash-threshold groups: a next-hop failure also resets TCP that did not use it",
                    f"use resilient nexthop groups (type resilient) on {_list(devices, 3)}", tuple(evidence))]


def _slim(state: DeviceState, dst: str) -> DeviceState:
    """``state`` with only the routes that can match ``dst`` (and the groups they use): it places flows to
    ``dst`` alike, and a what-if on it re-maps and recompiles a few routes, not the device's thousand."""
    addr = ipaddress.ip_address(dst)
    routes = select_routes(state.routes, keep=lambda k: _holds(k[1], addr))
    used = {r.nhid for r in routes if r.nhid is not None}
    groups = tuple(g for g in state.nexthops.groups if g.id in used)
    return replace(state, routes=routes, nexthops=replace(state.nexthops, groups=groups))


def _holds(dst: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Prefix ``dst`` holds ``addr``."""
    if (":" in dst) != (addr.version == 6):
        return False
    return addr in ipaddress.ip_network(dst, strict=False)


def _with_device(snap: FabricSnapshot, state: DeviceState) -> FabricSnapshot:
    return replace(snap, devices={**snap.devices, state.device.name: state})


def _next_failure_cost(snap: FabricSnapshot, paths: PrefixPaths, spaces: HashSpaces, devices: list[str]) -> str:
    """The what-if of one next-hop failure on the hash-threshold device with the widest group (most flows
    among equals), over the sample flows that reach it, with its groups as they are and as resilient groups.
    Only that device changes, so the flows are placed from it on (their way to it stays the same)."""
    res = paths.result
    ix = {d: i for i, d in enumerate(res.devices)}
    visits = np.bincount(res.hops[res.hops >= 0], minlength=len(res.devices))  # a flow visits a device once

    def width(d: str) -> int:
        return sum(1 for c, _ in spaces.of(d) if c.outcome is Outcome.FORWARD)

    seen = [d for d in devices if d in ix and visits[ix[d]]]
    if not seen:
        return ""
    dev = max(seen, key=lambda d: (width(d), int(visits[ix[d]]), d))
    rows = np.flatnonzero(any_hop(res.hops, code_mask(len(res.devices), [ix[dev]])))
    hops = [(c, w) for c, w in spaces.of(dev) if c.outcome is Outcome.FORWARD and c.gateway]
    if len(hops) < 2:
        return ""
    hop = max(hops, key=lambda cw: cw[1])[0]
    change = WhatIf(WhatIfKind.FAIL_NEXTHOP, dev, hop.gateway)
    flows = paths.flows.take(rows)
    slim = _with_device(snap, _slim(snap.devices[dev], prefix_address(paths.prefix)))
    got = []
    for mapping in ("actual", "resilient"):
        before = with_mapping(slim, mapping, only={dev})
        try:
            after = apply(before, change)
        except WhatIfError:
            return ""
        got.append(impact(before, after, flows, dev, change=change).counts)
    name = spaces.owners.get(hop.gateway or "", hop.gateway)
    a, r = got
    return (f"if {dev} loses {name}: of the {len(rows):,} sample flows reaching {dev} {a['moved']:,} move "
            f"({a['tcp_reset']:,} TCP reset, {a['collateral']:,} that did not use {name}) with hash-threshold; "
            f"{r['moved']:,} ({r['tcp_reset']:,} TCP reset, {r['collateral']:,}) with resilient groups, estimated")


# --------------------------------------------------------------------------- FRR


def _addrs(values: Iterable[str | None]) -> frozenset[str]:
    """Canonical addresses of ``values`` (None and what is not an address left out)."""
    out = set()
    for v in values:
        try:
            out.add(str(ipaddress.ip_address(v or "")))
        except ValueError:
            continue
    return frozenset(out)


def resilient_not_in_effect(snap: FabricSnapshot, configs: Mapping[str, tuple[ConfiguredGroup, ...]]
                            ) -> list[Finding]:
    """FRR configured for a resilient nexthop group (its running configuration: ``configs``, device → groups)
    while the kernel forwards over the same next hops with a plain group or a plain multipath route (FRR#16489:
    the options silently ignored).  The kernel's counterpart is found by its next hops' gateways: a group
    whose members are exactly the configured addresses, or a multipath route over exactly them; a group FRR
    has not installed (no counterpart) is not judged."""
    out = []
    for name in sorted(configs):
        st = snap.devices.get(name)
        if st is None or st.collected_at_ms is None:
            continue
        gw = {o.id: o.gateway for o in st.nexthops.objects}
        # gateways -> (anycast prefix's route first, what, resilient) per kernel counterpart
        by_set: dict[frozenset[str], list[tuple[bool, str, bool]]] = {}
        for g in st.nexthops.groups:
            by_set.setdefault(_addrs(gw.get(m.id) for m in g.members), []).append(
                (True, f"nexthop group {g.id} (type {g.type})", g.type == "resilient"))
        for r in st.routes:
            if r.nhid is None and r.multipath:
                by_set.setdefault(_addrs(n.gateway for n in r.nexthops), []).append(
                    (r.dst not in snap.anycast_prefixes, f"route {r.dst} (plain multipath)", False))
        for cfg in configs[name]:
            want = _addrs(a for a, _ in cfg.nexthops)
            if not cfg.resilient or len(want) < 2:
                continue
            kernel = [(what, res) for _, what, res in sorted(by_set.get(want, []))]
            if not kernel or any(res for _, res in kernel):
                continue
            out.append(Finding(
                "resilient-not-in-effect", Severity.WARNING, f"{name} {cfg.name}",
                f"{name}: FRR's nexthop-group {cfg.name} is configured resilient (buckets {cfg.buckets}) but the "
                f"kernel forwards over its next hops with {kernel[0][0]}: a next-hop failure moves unrelated flows",
                f"check that {name}'s FRR and kernel support resilient groups (FRR ≥ 8.5, zebra nexthop objects "
                f"enabled, Linux ≥ 5.13) and reinstall the group; 'ip nexthop show' must say type resilient",
                (f"FRR: nexthop-group {cfg.name}: resilient buckets {cfg.buckets} idle-timer {cfg.idle_timer} "
                 f"unbalanced-timer {cfg.unbalanced_timer}, next hops {_list(sorted(want), 8)}",
                 *(f"kernel: {what}" for what, _ in kernel[:EVIDENCE_MAX]))))
    return out


def rib_fib(snap: FabricSnapshot, prefixes: Collection[str]) -> list[Finding]:
    out = []
    for name, st in snap.devices.items():
        if st.rib_watch is not None:
            found, confirmed = st.rib_watch.raised, True
        elif st.rib is not None:
            found, confirmed = disagreements(st), False
        else:
            continue
        for dst in sorted(found):
            c = found[dst]
            sev = Severity.ERROR if confirmed else Severity.WARNING
            seen = "in two polls running" if confirmed else "in this poll (not confirmed by the next)"
            out.append(Finding(
                "rib-fib-mismatch", sev, f"{name} {dst}",
                f"{name} {dst}: {c.text} — BGP's paths and the kernel's next hops disagree, {seen}"
                + (" (an anycast prefix)" if dst in prefixes else ""),
                f"compare 'show bgp {dst}' with 'ip route show {dst}' on {name}; check zebra's log and the "
                f"kernel's multipath limit",
                (f"BGP paths: {c.bgp}", f"zebra installed: {c.zebra}", f"kernel next hops: {c.kernel}")))
    return out


# --------------------------------------------------------------------------- live connections


def _service_addrs(prefixes: Iterable[str]) -> dict[str, str]:
    return {str(ipaddress.ip_network(p, strict=False).network_address): p for p in prefixes}


def _live(snap: FabricSnapshot, prefixes: Iterable[str]) -> list[tuple[str, Flow, str]]:
    """(server, flow, prefix) of every live flow to an anycast address on an answering device."""
    addrs = _service_addrs(prefixes)
    return [(name, f, addrs[f.dst]) for name, st in sorted(snap.devices.items())
            if st.health.status is HealthStatus.OK for f in st.flows if f.dst in addrs]


def _outbound(f: Flow, th: Thresholds) -> bool:
    """A TCP flow the server opened: its own port (``dport`` as the fabric sees the flow) is ephemeral and the
    remote one is not."""
    lo, hi = th.ephemeral_ports
    return f.proto == 6 and lo <= f.dport <= hi and f.sport < lo


def _session(f: Flow) -> str:
    return f"{f.dst}:{f.dport} → {f.src}:{f.sport}"


def outbound_tcp(snap: FabricSnapshot, prefixes: Iterable[str], th: Thresholds) -> list[Finding]:
    per: dict[str, list[Flow]] = {}
    for server, f, _ in _live(snap, prefixes):
        if _outbound(f, th):
            per.setdefault(server, []).append(f)
    return [Finding("outbound-tcp-anycast", Severity.ERROR, s,
                    f"{s} opened {len(fl)} TCP connection{'s' if len(fl) != 1 else ''} from the anycast address: "
                    f"the replies hash to whichever server the fabric picks, not necessarily {s}",
                    f"make {s} open outbound connections from its own unicast address (bind, or a source "
                    f"route / prefsrc), never the anycast one",
                    tuple(f"tcp {_session(f)}" for f in fl[:EVIDENCE_MAX]))
            for s, fl in sorted(per.items())]


class HealthTracker:
    """What a check needs across polls: when each live TCP connection (server, flow) was first seen alive.

    ``observe`` is called with every evaluated snapshot; a connection an answering server no longer reports
    is forgotten (one it reports again starts anew); a server that did not answer keeps its connections.
    Bounded: at most ``max_connections`` are tracked (new ones beyond are not; the oldest matter)."""

    def __init__(self, max_connections: int = 100_000) -> None:
        self.max_connections = max_connections
        self._first: dict[str, dict[Flow, int]] = {}  # server -> flow -> first seen (ms)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(v) for v in self._first.values())

    def observe(self, snap: FabricSnapshot, prefixes: Iterable[str]) -> None:
        now = snap.taken_at_ms
        addrs = _service_addrs(prefixes)
        with self._lock:
            for name, st in snap.devices.items():
                if st.health.status is not HealthStatus.OK:
                    continue
                old = self._first.get(name, {})
                if not st.flows and not old:
                    continue
                self._first.pop(name, None)
                room = self.max_connections - len(self)
                new = {}
                for f in st.flows:
                    if f.proto == 6 and f.dst in addrs:
                        t = old.get(f)
                        if t is not None:
                            new[f] = t
                        elif room > 0:
                            new[f] = now
                            room -= 1
                if new:
                    self._first[name] = new

    def first_seen_ms(self, server: str, flow: Flow) -> int | None:
        return self._first.get(server, {}).get(flow)

    def older_than(self, now_ms: int, seconds: float) -> list[tuple[str, Flow, float]]:
        """(server, flow, age in seconds) of the tracked connections alive longer than ``seconds``, oldest first."""
        with self._lock:
            got = [(s, f, (now_ms - t) / 1000.0) for s, fl in self._first.items() for f, t in fl.items()
                   if now_ms - t > seconds * 1000]
        return sorted(got, key=lambda x: (-x[2], x[0]))


def _client(f: Flow) -> str:
    return f"{'tcp' if f.proto == 6 else 'udp'} {f.src}:{f.sport} → {f.dst}:{f.dport}"


def _without(snap: FabricSnapshot, entries: set[str], hops_to: dict[str, set[tuple[str, str]]],
             name: str) -> FabricSnapshot | None:
    """``snap`` as flows on the traced paths see it once device ``name`` failed: each device on those paths
    loses its next hops towards ``name`` (``hops_to[name]``: (device, gateway)); an entry device stops taking
    flows.  (``fail_device`` edits every device of the fabric for every address of the failed one: far too
    slow at 500 devices, and only the devices on these paths matter to these flows.)"""
    after = snap
    for d, gw in sorted(hops_to.get(name, ())):
        try:
            after = apply(after, WhatIf(WhatIfKind.FAIL_NEXTHOP, d, gw))
        except WhatIfError:
            return None
    if name in entries:  # flows enter elsewhere
        devices = dict(after.devices)
        devices[name] = replace(devices[name], health=Health(HealthStatus.ERROR, error="what-if: failed"))
        after = replace(after, devices=devices)
    return after


WHATIF_EDITS = 4  # devices the long-lived what-ifs may edit (and so recompile) in one evaluation, at most


def next_failure(snap: FabricSnapshot, flows: list[Flow], limit: int = 4) -> tuple[str, int, bool] | None:
    """The single device failure that resets most of these TCP flows: (device, flows reset, exact), or None
    when they cannot be placed.  Tried: the devices on their paths and every next hop those devices could
    pick for them (a failure off the path moves flows too, under hash-threshold), at most ``limit``, the most
    traversed first.  A failure is replayed as a what-if while the devices it edits fit in ``WHATIF_EDITS``
    (each edited device is compiled anew: ~50 ms for a spine of a 500-device fabric); beyond, its figure is
    the flows whose path goes through the device (``exact`` False: at least that many)."""
    if not flows:
        return None
    arr = FlowArray.from_flows(flows)
    ingress, _ = ingress_of(snap, arr)
    if ingress is None:
        return None
    cache = HashCache(arr)
    tracer = Tracer(snap, arr, cache)
    base = tracer.trace(ingress)
    counts = np.bincount(base.hops[base.hops >= 0], minlength=len(base.devices))
    on_path = [base.devices[int(c)] for c in np.argsort(-counts, kind="stable") if counts[c]]
    # devices that handed these flows to each device (from the trace): at least that many edits to fail it
    feeders: dict[str, set[str]] = {}
    for e in np.unique(base.edges[base.edges >= 0]):
        d, gw, _ = base.edge_labels[int(e)]
        owner = tracer.owners.get(gw or "")
        if owner is not None:
            feeders.setdefault(owner, set()).add(d)
    hops_to: dict[str, set[tuple[str, str]]] = {}
    replay = len(on_path) < limit or any(len(feeders.get(n, ())) <= WHATIF_EDITS for n in on_path[:limit])
    if replay:
        # every next hop the devices on the paths could pick for these flows (fabrics small enough to replay)
        _, first = cache.destinations()
        for d in on_path:
            cd = compiled_for(snap.devices[d])
            for row in first:
                for c, _ in hash_space(cd, arr, int(row)):
                    owner = tracer.owners.get(c.gateway or "")
                    if c.outcome is Outcome.FORWARD and owner is not None:
                        hops_to.setdefault(owner, set()).add((d, c.gateway or ""))
    entries = {base.devices[int(c)] for c in np.unique(base.hops[:, 0]) if c >= 0}
    tcp = np.asarray(arr.proto) == 6
    candidates = list(dict.fromkeys([*on_path, *sorted(hops_to)]))[:limit]
    best: tuple[str, int, bool] | None = None
    budget = WHATIF_EDITS
    for name in candidates:
        edits = max(len({d for d, _ in hops_to.get(name, ())}), len(feeders.get(name, ())))
        n, exact = None, False
        if replay and edits <= budget:
            budget -= edits
            after = _without(snap, entries, hops_to, name)
            ing_after = ingress_of(after, arr)[0] if after is not None else None
            if ing_after is not None:
                n, exact = impact(snap, after, arr, ingress, change=WhatIf(WhatIfKind.FAIL_DEVICE, name),
                                  cache=cache, before_result=base, ingress_after=ing_after).counts["tcp_reset"], True
        if n is None:
            code = base.devices.index(name) if name in base.devices else -1
            n = int((any_hop(base.hops, code_mask(len(base.devices), [code])) & tcp).sum()) if code >= 0 else 0
        if best is None or n > best[1]:
            best = (name, n, exact)
    return best


def long_lived(snap: FabricSnapshot, tracker: HealthTracker, prefixes: Iterable[str], th: Thresholds) -> list[Finding]:
    addrs = _service_addrs(prefixes)
    old = [(s, f, age) for s, f, age in tracker.older_than(snap.taken_at_ms, th.long_lived_s)
           if f.dst in addrs and s in snap.devices and not _outbound(f, th)]
    per: dict[str, list[tuple[str, Flow, float]]] = {}
    for s, f, age in old:
        per.setdefault(addrs[f.dst], []).append((s, f, age))
    out = []
    for prefix, conns in sorted(per.items()):
        n = len(conns)
        worst = next_failure(snap, [f for _, f, _ in conns])
        reset = (f"; a failure of {worst[0]} would reset {'' if worst[2] else 'at least '}{worst[1]:,} of them "
                 f"(the worst single device failure, estimated)") if worst is not None and worst[1] else ""
        out.append(Finding(
            "long-lived-tcp", Severity.WARNING, prefix,
            f"{n} TCP connection{'s' if n != 1 else ''} to {prefix} alive over {th.long_lived_s:g} s (the oldest "
            f"{conns[0][2]:,.0f} s){reset}",
            "keep TCP on anycast short-lived (seconds), or move long sessions to a unicast address",
            tuple(f"{s}: {_client(f)} alive {age:,.0f} s" for s, f, age in conns[:EVIDENCE_MAX])))
    return out


def multi_connection(snap: FabricSnapshot, prefixes: Iterable[str], th: Thresholds) -> list[Finding]:
    live = [(s, f, p) for s, f, p in _live(snap, prefixes) if not _outbound(f, th)]
    per: dict[str, list[tuple[str, Flow]]] = {}
    for s, f, p in live:
        if f.dport in MULTI_CONNECTION_PORTS:
            per.setdefault(p, []).append((s, f))
    out = []
    for prefix, conns in sorted(per.items()):
        protos = sorted({MULTI_CONNECTION_PORTS[f.dport] for _, f in conns})
        clients = {f.src for _, f in conns}
        where: dict[str, set[str]] = {}
        for s, f, p in live:
            if p == prefix and f.src in clients:
                where.setdefault(f.src, set()).add(s)
        split = sorted(c for c, ss in where.items() if len(ss) > 1)
        evidence = tuple(f"{s}: {_client(f)} ({MULTI_CONNECTION_PORTS[f.dport]})" for s, f in conns[:EVIDENCE_MAX])
        evidence += tuple(f"client {c}: connections on {', '.join(sorted(where[c]))}" for c in split[:EVIDENCE_MAX])
        out.append(Finding(
            "multi-connection-protocol", Severity.WARNING, prefix,
            f"{_list(protos)} on {prefix}: each connection is hashed on its own, so a session's connections can "
            f"land on different servers" + (f" ({len(split)} client{'s' if len(split) != 1 else ''} already "
                                             f"split)" if split else ""),
            "serve multi-connection protocols from a unicast address, or share session state between servers",
            evidence))
    return out

