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

Fair share: equal over the servers the prefix reaches, or by the configured weights.  Pure.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from anycast_tui.model.findings import ServerShare
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.paths import PathOutcome, PathResult, Tracer, address_map
from anycast_tui.model.placement import UNKNOWN, Choice, HashCache, Outcome, compiled_for, decision_space, lookup
from anycast_tui.model.types import FabricSnapshot, Role, Route

SampleOf = Callable[[str], FlowArray | None]


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


def server_shares(snap: FabricSnapshot, paths: PrefixPaths, spaces: HashSpaces,
                  weights: Mapping[str, float] | None = None) -> tuple[tuple[ServerShare, ...], dict[str, float],
                                                                       dict[str, set[str]]]:
    """(each server's share of ``paths.prefix`` against its fair share, the topology shares, server → parents).

    The servers: those the routes reach (topology) and those answering sample flows."""
    topo, parents = topology(snap, spaces, paths.ingress[0])
    counts = measured(snap, paths)
    servers = sorted(set(topo) | set(counts))
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
    out = tuple(ServerShare(paths.prefix, s, share[s], w[s] / wsum if wsum > 0 else 0.0, basis) for s in servers)
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
