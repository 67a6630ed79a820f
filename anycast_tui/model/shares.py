"""Server shares: per anycast prefix, each server's share of the flows end to end, against its fair share.

Two figures per server, from one end-to-end placement (``trace_prefix``: the flow sample entering where
``model.ingress`` says, traced hop by hop by ``model.paths``, the same functions incident impact uses):

* the **share**: of the sample flows delivered to a server, the part this server answers (hash space as
  the sample covers it; what ``ServerShare.share`` holds);
* the **topology share**: what the routes alone give under uniform input — each device splits what reaches
  it by its group's hash space (``placement.hash_space``: weights, buckets), from equal parts per entry
  device.  A leaf with one server beside a leaf with two gives 1/4 against 1/8: the imbalance is the
  topology's, and ``topology_text`` says so; shares far from a fair topology share are the hashing's
  (``model/polarization.py`` finds the device).

Where the fabric's own sampled traffic reaches the prefix (``model.sampled.SampledFlowSet``: sFlow / IPFIX), the
**share** is each server's part of the *sampled traffic* instead — estimated packets, the sampled flows placed
end to end by the same functions, each entering where it was sampled (``incident_impact.observed_ingress``) —
and the hash-space share stays beside it (``ServerShare.hash_share``); fewer than ``min_flows`` sampled flows
placed on servers are too thin to judge: the share stays the hash space's, and its basis says why.

Fair share: equal over the servers the prefix reaches, or by the configured weights.  Pure.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from anycast_tui.model.findings import ServerShare
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.incident_impact import SAMPLE_CLIENTS, SAMPLE_FLOWS, default_sample, observed_ingress
from anycast_tui.model.incident_impact import rate_text  # pkt/s as incident texts print it
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.paths import PathOutcome, PathResult, Tracer, address_map
from anycast_tui.model.placement import UNKNOWN, Choice, HashCache, Outcome, compiled_for, decision_space, lookup
from anycast_tui.model.sampled import SampledFlowSet
from anycast_tui.model.types import FabricSnapshot, Role, Route

SampleOf = Callable[[str], FlowArray | None]
TrafficOf = Callable[[str], SampledFlowSet | None]  # prefix -> the sampled flows to it now (None: none)
SAMPLED_MIN_FLOWS = 100  # sampled flows placed on servers needed before shares are measured on them


@functools.lru_cache(maxsize=16)
def health_sample(dst: str) -> FlowArray | None:
    """The flows the checks place to ``dst``: incident impact's synthetic sample for IPv4; for IPv6 as many
    flows from ``SAMPLE_CLIENTS`` clients in ``2001:db8:cafe::/64`` (half TCP, half UDP, random source ports,
    to ports 53 and 443; a fixed seed: the same flows every time).  Both measure hash space: only the routes
    and hash settings decide where they go."""
    addr = ipaddress.ip_address(dst)
    if addr.version == 4:
        return default_sample(dst)
    rng = np.random.default_rng(1)
    n = SAMPLE_FLOWS
    src = np.tile(np.frombuffer(ipaddress.ip_address("2001:db8:cafe::").packed, np.uint8), (n, 1))
    host = 1 + rng.integers(0, SAMPLE_CLIENTS, size=n)
    src[:, 14], src[:, 15] = host >> 8, host & 0xFF
    dst_col = np.tile(np.frombuffer(addr.packed, np.uint8), (n, 1))
    return FlowArray.from_columns(np.full(n, 6), np.where(rng.random(n) < 0.5, 6, 17), src, dst_col,
                                  rng.integers(1024, 65536, size=n), np.asarray((53, 443))[rng.integers(0, 2, size=n)])


@dataclass(frozen=True, slots=True)
class PrefixPaths:
    """The sample flows to one prefix placed end to end in one snapshot."""

    prefix: str
    flows: FlowArray
    ingress: tuple[tuple[str, ...], np.ndarray]  # (entry devices, entry code per flow)
    result: PathResult
    note: str  # how flows entered ("ingress assumed: upstream ECMP over spine01, spine02")
    assumed: bool
    cache: HashCache


def prefix_address(prefix: str) -> str:
    return str(ipaddress.ip_network(prefix, strict=False).network_address)


def trace_prefix(snap: FabricSnapshot, prefix: str, sample_of: SampleOf) -> PrefixPaths | None:
    """The sample to ``prefix``'s address traced from where it enters; None without a sample or an entry."""
    flows = sample_of(prefix_address(prefix))
    if flows is None or not len(flows):
        return None
    ingress, model = ingress_of(snap, flows)
    if ingress is None:
        return None
    cache = HashCache(flows)
    result = Tracer(snap, flows, cache).trace(ingress)
    return PrefixPaths(prefix, flows, ingress, result, model.note, model.assumed, cache)


class HashSpaces:
    """Per device, what it does with one destination under uniform input (``placement.hash_space``), cached."""

    def __init__(self, snap: FabricSnapshot, flows: FlowArray, prefix: str = "") -> None:
        self.snap = snap
        self.prefix = prefix
        self.one = flows.take(np.array([0]))  # the destination is all that matters
        self.owners = address_map(snap)
        self._of: dict[str, tuple[tuple[Choice, float], ...]] = {}
        self._route: dict[str, Route | None] = {}

    def of(self, name: str) -> tuple[tuple[Choice, float], ...]:
        got = self._of.get(name)
        if got is None:
            state = self.snap.devices[name]
            if state.collected_at_ms is None:
                got, route = (), None
            else:
                cd = compiled_for(state)
                di = int(lookup(cd, self.one, np.array([0]))[0])
                got, route = decision_space(cd, di), (cd.decisions[di].route if di >= 0 else None)
            self._of[name], self._route[name] = got, route
        return got

    def route(self, name: str) -> Route | None:
        """The route the device uses for the destination (None: none, or no data)."""
        self.of(name)
        return self._route[name]

    def next_device(self, choice: Choice) -> str | None:
        return self.owners.get(choice.gateway) if choice.outcome is Outcome.FORWARD and choice.gateway else None

    def multipath(self, name: str) -> bool:
        return sum(1 for c, _ in self.of(name) if c.outcome is Outcome.FORWARD) > 1


def topology(snap: FabricSnapshot, spaces: HashSpaces, entries: tuple[str, ...]
             ) -> tuple[dict[str, float], dict[str, set[str]]]:
    """(server → its share of what reaches servers under uniform input, server → the devices handing it flows)."""
    delivered: dict[str, float] = {}
    parents: dict[str, set[str]] = {}
    current = {e: 1.0 / len(entries) for e in entries} if entries else {}
    for _ in range(16):
        nxt: dict[str, float] = {}
        for dev, f in current.items():
            if dev not in snap.devices:
                continue
            for choice, w in spaces.of(dev):
                if choice.outcome is Outcome.LOCAL:
                    if snap.devices[dev].device.role is Role.SERVER:
                        delivered[dev] = delivered.get(dev, 0.0) + f * w
                    continue
                owner = spaces.next_device(choice)
                if owner is None:
                    continue
                if snap.devices[owner].device.role is Role.SERVER:
                    parents.setdefault(owner, set()).add(dev)
                nxt[owner] = nxt.get(owner, 0.0) + f * w
        current = nxt
        if not current:
            break
    total = sum(delivered.values())
    return ({s: v / total for s, v in delivered.items()} if total > 0 else {}), parents


def measured(snap: FabricSnapshot, paths: PrefixPaths) -> dict[str, int]:
    """Sample flows each server answers, of those placed exactly (a flow hashed with an unknown key on its
    way — seed 0, an ASIC — is left out: where it goes is a guess)."""
    res = paths.result
    ok = (res.outcome == PathOutcome.DELIVERED) & (res.placement < UNKNOWN)
    counts = np.bincount(res.final[ok], minlength=len(res.terminals))
    out = {}
    for code in np.flatnonzero(counts):
        name = res.terminals[int(code)]
        if name in snap.devices and snap.devices[name].device.role is Role.SERVER:
            out[name] = int(counts[code])
    return out


@dataclass(frozen=True, slots=True)
class Traffic:
    """The sampled traffic to one prefix placed end to end: what each server answers."""

    packets: dict[str, float]  # server -> estimated packets over the window (flows placed exactly)
    flows: dict[str, int]  # server -> sampled flows it answers
    total: int  # sampled flows to the prefix
    window_s: float
    rate: str  # the sampling rate(s): "1:400"

    @property
    def placed(self) -> int:
        return sum(self.flows.values())

    @property
    def pps(self) -> float:
        """Estimated packets per second of the flows placed on servers."""
        return sum(self.packets.values()) / self.window_s if self.window_s > 0 else 0.0

    @property
    def text(self) -> str:
        """``measured on 1,204 sampled flows, ≈ 9.6 k pkt/s at 1:400``."""
        return f"measured on {self.placed:,} sampled flows, ≈ {rate_text(self.pps)} pkt/s at {self.rate}"


def sampled_traffic(snap: FabricSnapshot, sset: SampledFlowSet) -> Traffic | None:
    """The sampled flows placed end to end (each entering where it was sampled; ``observed_ingress``), their
    estimated packets summed per answering server; flows hashed with an unknown key on the way are left out.
    None when no flow can enter."""
    ingress = observed_ingress(snap, sset)
    if ingress is None:
        return None
    res = Tracer(snap, sset.flows, HashCache(sset.flows)).trace(ingress)
    ok = (res.outcome == PathOutcome.DELIVERED) & (res.placement < UNKNOWN)
    n = len(res.terminals)
    pkts = np.bincount(res.final[ok], weights=sset.packets[ok], minlength=n)
    counts = np.bincount(res.final[ok], minlength=n)
    packets, flows = {}, {}
    for code in np.flatnonzero(counts):
        name = res.terminals[int(code)]
        if name in snap.devices and snap.devices[name].device.role is Role.SERVER:
            packets[name], flows[name] = float(pkts[code]), int(counts[code])
    return Traffic(packets, flows, len(sset), sset.window_s, sset.rate_text)


def server_shares(snap: FabricSnapshot, paths: PrefixPaths, spaces: HashSpaces,
                  weights: Mapping[str, float] | None = None, traffic: Traffic | None = None,
                  min_flows: int = SAMPLED_MIN_FLOWS) -> tuple[tuple[ServerShare, ...], dict[str, float],
                                                               dict[str, set[str]]]:
    """(each server's share of ``paths.prefix`` against its fair share, the topology shares, server → parents).

    The servers: those the routes reach (topology) and those answering sample (or sampled) flows.  With
    ``traffic`` placing at least ``min_flows`` sampled flows on servers with packets counted, the share is of
    its estimated packets, the hash space's beside it."""
    topo, parents = topology(snap, spaces, paths.ingress[0])
    counts = measured(snap, paths)
    servers = sorted(set(topo) | set(counts) | (set(traffic.flows) if traffic is not None else set()))
    total = sum(counts.values())
    if not servers:
        return (), topo, parents
    w = {s: float((weights or {}).get(s, 1.0)) for s in servers}
    wsum = sum(w.values())
    known = int((paths.result.placement < UNKNOWN).sum())
    if total:
        basis = f"hash space ({len(paths.flows):,} synthetic flows)" if known == len(paths.flows) else \
            f"hash space ({known:,} of {len(paths.flows):,} synthetic flows placed exactly; the rest unknown)"
        share = {s: counts.get(s, 0) / total for s in servers}
    else:
        basis = "hash space by the routes alone (no flow placed exactly: unknown hash keys)"
        share = {s: topo.get(s, 0.0) for s in servers}
    fair = {s: w[s] / wsum if wsum > 0 else 0.0 for s in servers}
    if traffic is not None:
        pkts = sum(traffic.packets.values())
        if traffic.placed >= min_flows and pkts > 0:
            out = tuple(ServerShare(paths.prefix, s, traffic.packets.get(s, 0.0) / pkts, fair[s],
                                    f"sampled traffic ({traffic.text})", share[s],
                                    traffic.packets.get(s, 0.0) / traffic.window_s if traffic.window_s > 0 else 0.0,
                                    traffic.flows.get(s, 0))
                        for s in servers)
            return out, topo, parents
        basis += (f"; sampled traffic too thin to judge ({traffic.placed:,} sampled flows placed on servers, "
                  f"{min_flows:,} needed)")
    out = tuple(ServerShare(paths.prefix, s, share[s], fair[s], basis) for s in servers)
    return out, topo, parents


def _pct(x: float) -> str:
    v = round(100 * x, 1)
    return f"{v:g} %"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def topology_text(topo: Mapping[str, float], parents: Mapping[str, set[str]], fair: Mapping[str, float],
                  tolerance: float) -> tuple[str, bool]:
    """Why the routes alone share unevenly (``server01 gets 25 %, server05 and server06 12.5 % each: leaf01
    has one server, leaf03 two``), and whether it is the servers per device (else the groups' next hops and
    weights); ("", False) when the topology shares are fair within ``tolerance`` (a ratio)."""
    if not topo:
        return "", False
    ratio = {s: topo[s] / fair[s] for s in topo if fair.get(s, 0) > 0}
    if not ratio or max(ratio.values()) < tolerance and min(ratio.values()) > 1 / tolerance:
        return "", False
    hi_v, lo_v = max(topo.values()), min(topo.values())
    hi = sorted(s for s, v in topo.items() if abs(v - hi_v) < 1e-9)
    lo = sorted(s for s, v in topo.items() if abs(v - lo_v) < 1e-9)

    def gets(names: list[str], v: float, verb: str) -> str:
        who = _names(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return f"{who}{verb} {_pct(v)}{' each' if len(names) > 1 else ''}"

    text = f"{gets(hi, hi_v, ' gets' if len(hi) == 1 else ' get')}, {gets(lo, lo_v, '')}"
    # how many servers the devices handing flows to them serve
    serves: dict[str, int] = {}
    for s, ps in parents.items():
        for p in ps:
            serves[p] = serves.get(p, 0) + 1
    words = {1: "one", 2: "two", 3: "three", 4: "four"}
    hp = sorted({p for s in hi for p in parents.get(s, ())})[:2]
    lp = sorted({p for s in lo for p in parents.get(s, ())})[:2]
    if hp and lp and {serves[p] for p in hp} != {serves[p] for p in lp}:
        def has(p: str, first: bool) -> str:
            n = serves[p]
            noun = "server" if n == 1 else "servers"
            return f"{p} has {words.get(n, str(n))} {noun}" if first else f"{p} {words.get(n, str(n))}"
        return f"{text}: {has(hp[0], True)}, {has(lp[0], False)}", True
    return f"{text}: the routes' next hops and weights give them unequal hash space", False
