"""Where one device sends each flow: route lookup, then the next hop the route's mapping picks.

Per device: the local table first (the device's own addresses, ``local`` and
``broadcast`` routes), then the main table; longest prefix wins, lowest metric
among equals, and a route whose next hops are all unusable is skipped (as the
kernel's FIB lookup does).  The chosen route then gives a next hop:

* plain multipath route → hash-threshold over its next hops in route order
  (``dead`` always unusable, ``linkdown`` unusable with ignore_routes_with_linkdown);
* ``nhid`` → the nexthop object, or its group: ``mpath`` → hash-threshold,
  ``resilient`` → the device's bucket table (hash % buckets), simulated from the
  weights when no table was collected; ``modulo-n`` / ``maglev`` are what-if
  group types made by :func:`anycast_tui.model.whatif.with_mapping`;
* single next hop → that next hop; blackhole/unreachable/prohibit/throw → dropped;
  local → delivered here.

Vectorised: flows are grouped by the route they hit and each group is mapped with numpy.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import Placement, linux_multipath_hash
from anycast_tui.model.mapping import (PlacementError, WeightError, check_weights,
                                       hash_threshold_bounds as threshold_bounds, maglev_table)
from anycast_tui.model.resilient import ResilientGroup
from anycast_tui.model.types import (DeviceState, HashSettings, NexthopGroup, NexthopObject, Route, RouteKey,
                                     RouteTable, route_keys)

EXACT, APPROXIMATE, UNKNOWN = 0, 1, 2  # placement codes, ordered by doubt (combine with max)
PLACEMENTS: tuple[Placement, ...] = (Placement.EXACT, Placement.APPROXIMATE, Placement.UNKNOWN)

SEED_REASON = "hash seed is 0 (random per boot): set net.ipv4.fib_multipath_hash_seed or ask the device"
SIMULATED_REASON = "resilient group without a bucket table: buckets simulated from the weights"
ASIC_REASON = "hardware forwarding on {platform}: the ASIC hash differs from the kernel's"
NEIGH_REASON = "fib_multipath_use_neigh=1: next hops with failed neighbours are skipped (neighbours not collected)"
POLICY_REASON = "hash policy {policy} is not modelled (0, 1 and 3 are)"
MODELLED_POLICIES = (0, 1, 3)
HARDWARE_PLATFORMS = frozenset({"cumulus", "sonic"})
WHATIF_GROUP_TYPES = ("modulo-n", "maglev")  # group types only what-if snapshots carry
MAGLEV_SIZE = 4093  # lookup table size for maglev what-ifs (prime, ≫ members)


class Outcome(enum.IntEnum):
    FORWARD = 0  # sent to a next hop
    LOCAL = 1  # delivered here (local address / local route)
    DROP = 2  # blackhole, unreachable, prohibit, throw
    NO_ROUTE = 3  # no route matched


@dataclass(frozen=True, slots=True)
class Choice:
    """One possible answer of a device for a flow."""

    outcome: Outcome
    gateway: str | None = None
    dev: str | None = None
    route: str | None = None  # the matched prefix
    nhid: int | None = None  # the nexthop object chosen, when the route uses one
    detail: str = ""  # route type for drops, "local address" ...

    @property
    def label(self) -> str:
        if self.outcome is Outcome.FORWARD:
            parts = [f"via {self.gateway}"] if self.gateway else []
            if self.dev:
                parts.append(f"dev {self.dev}")
            return " ".join(parts) or "forward"
        if self.outcome is Outcome.LOCAL:
            return "local"
        if self.outcome is Outcome.DROP:
            return self.detail or "dropped"
        return "no route"


@dataclass(frozen=True, slots=True)
class Placed:
    """A device's answer per flow: ``choice`` indexes ``choices``, ``reason`` indexes ``reasons``."""

    choice: np.ndarray  # int32
    choices: tuple[Choice, ...]
    placement: np.ndarray  # uint8: EXACT / APPROXIMATE / UNKNOWN
    reason: np.ndarray  # int16, 0 = no doubt
    reasons: tuple[str, ...]
    decision: np.ndarray | None = None  # int32 per flow: the route decision hit (−1: none)
    members: tuple[tuple[int, ...], ...] = ()  # per decision: the choices it picks among

    def candidates(self, i: int) -> tuple[Choice, ...]:
        """Every next hop flow ``i``'s route could pick (what an UNKNOWN placement narrows down to)."""
        if self.decision is None or self.decision[i] < 0:
            return (self.choices[int(self.choice[i])],)
        return tuple(self.choices[c] for c in self.members[int(self.decision[i])])

    def outcome(self) -> np.ndarray:
        table = np.array([c.outcome for c in self.choices] or [0], dtype=np.uint8)
        return table[self.choice]

    def gateway(self) -> np.ndarray:
        return np.array([c.gateway for c in self.choices] + [None], dtype=object)[self.choice]

    def dev(self) -> np.ndarray:
        return np.array([c.dev for c in self.choices] + [None], dtype=object)[self.choice]

    def placements(self) -> list[Placement]:
        return [PLACEMENTS[p] for p in self.placement]


# --------------------------------------------------------------------------- hashes


_NOT_HASHED = np.uint32(0xFFFFFFFF)  # never a hash: multipath hashes have 31 bits


class HashCache:
    """Per-FlowArray work shared by every lookup: multipath hashes per hash setting (computed only for
    the rows asked, once) and the distinct destinations (route lookups run once per destination)."""

    def __init__(self, flows: FlowArray):
        self.flows = flows
        self._h: dict[tuple[int, int, int], np.ndarray] = {}  # _NOT_HASHED where not computed yet
        self._complete: set[tuple[int, int, int]] = set()
        fam = np.asarray(flows.family)
        self._v6 = fam == 6
        self._has4 = bool((~self._v6).any())
        self._has6 = bool(self._v6.any())
        self._dst: tuple[np.ndarray, np.ndarray] | None = None
        self._dst_ints: list[tuple[int, int]] | None = None
        self._factors: tuple[object, list, np.ndarray] | None = None

    def factorize(self, column: object) -> tuple[list, np.ndarray]:
        """(distinct values, int32 code per flow) of a per-flow column, cached.

        ``column``: an object or string array, or already factorized as ``(values, codes)`` (fastest).
        """
        if self._factors is not None and self._factors[0] is column:
            return self._factors[1], self._factors[2]
        if isinstance(column, tuple):
            values, codes = list(column[0]), np.asarray(column[1], dtype=np.int32)
        else:
            arr = np.asarray(column)
            if arr.dtype.kind in "US":
                uniq, inv = np.unique(arr, return_inverse=True)
                values, codes = [str(u) for u in uniq], inv.ravel().astype(np.int32)
            else:
                ix: dict = {}
                codes = np.fromiter((ix.setdefault(v, len(ix)) for v in arr), dtype=np.int32, count=len(arr))
                values = list(ix)
        self._factors = (column, values, codes)
        return values, codes

    def _one(self, policy: int, fields: int, seed: int, rows: np.ndarray) -> np.ndarray:
        key = (policy, fields, seed)
        if seed == 0 or policy not in MODELLED_POLICIES:  # placement says UNKNOWN for these
            return np.zeros(len(rows), dtype=np.uint32)
        h = self._h.get(key)
        if h is None:  # nothing hashed yet under this key: hash the rows, no bookkeeping to consult
            h = self._h[key] = np.full(len(self.flows), _NOT_HASHED, dtype=np.uint32)
            out = linux_multipath_hash(self.flows, policy=policy, seed=seed, fields=fields, rows=rows)
            h[rows] = out
            if len(rows) == len(self.flows) and (h != _NOT_HASHED).all():
                self._complete.add(key)
            return out
        out = h[rows]
        if key in self._complete:
            return out
        miss = out == _NOT_HASHED
        if miss.any():
            need = rows[miss]
            new = linux_multipath_hash(self.flows, policy=policy, seed=seed, fields=fields, rows=need)
            out[miss] = new
            h[need] = new
            if (h != _NOT_HASHED).all():
                self._complete.add(key)
        return out

    def get(self, s: HashSettings, rows: np.ndarray | None = None) -> np.ndarray:
        """uint32 hashes of ``rows`` (all when None) under ``s`` (IPv4 by policy/fields, IPv6 by policy6/fields6)."""
        rows = np.arange(len(self.flows)) if rows is None else np.asarray(rows)
        if not self._has6:
            return self._one(s.policy, s.fields, s.seed, rows)
        if not self._has4 or (s.policy, s.fields) == (s.policy6, s.fields6):
            return self._one(s.policy6, s.fields6, s.seed, rows) if not self._has4 else \
                self._one(s.policy, s.fields, s.seed, rows)
        v6 = self._v6[rows]
        out = np.empty(len(rows), dtype=np.uint32)
        out[v6] = self._one(s.policy6, s.fields6, s.seed, rows[v6])
        out[~v6] = self._one(s.policy, s.fields, s.seed, rows[~v6])
        return out

    def destinations(self) -> tuple[np.ndarray, np.ndarray]:
        """(inverse, first): flow i has the destination of row ``first[inverse[i]]`` (family included)."""
        if self._dst is None:
            d = np.ascontiguousarray(self.flows.dst)
            fam = np.asarray(self.flows.family)
            n = len(fam)
            w = d.view(np.uint64) if d.shape[1:] == (16,) else d  # (n, 2) words: a cheaper comparison
            if n and (w == w[0]).all() and (fam == fam[0]).all():
                self._dst = (np.zeros(n, dtype=np.int32), np.zeros(1, dtype=np.int64))
            else:
                hi = d[:, :8].copy().view(">u8").ravel().astype(np.uint64)
                lo = d[:, 8:].copy().view(">u8").ravel().astype(np.uint64)
                if not self._has6:
                    _, first, inv = np.unique(hi, return_index=True, return_inverse=True)
                else:
                    key = np.stack([hi, lo, fam.astype(np.uint64)], axis=1)
                    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
                self._dst = (inv.ravel().astype(np.int32), first.astype(np.int64))
        return self._dst

    def destination_keys(self) -> list[tuple[int, int]] | None:
        """(family, destination as one 128-bit integer, as ``_dst_words`` lays it out) of each distinct
        destination (``destinations()[1]``), made once per flow set when there are few (a fabric's anycast
        flows go to one or two addresses: every device's lookup then is a dictionary hit); None when many."""
        if self._dst_ints is None:
            first = self.destinations()[1]
            if len(first) > FEW_ROWS:
                return None
            hi, lo = _dst_words(self.flows, first)
            fam = np.asarray(self.flows.family)[first]
            self._dst_ints = [(int(f), int(h) << 64 | int(v)) for f, h, v in zip(fam, hi, lo)]
        return self._dst_ints


# --------------------------------------------------------------------------- mapping primitives


def threshold_pick(hashes: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Index of the first member whose bound ≥ hash (members with bound −1 never win; hashes are 31-bit)."""
    live = np.flatnonzero(bounds >= 0)
    b = bounds[live].astype(hashes.dtype) if hashes.dtype == np.uint32 else bounds[live]
    if len(b) <= 16:  # few members: count the bounds below each hash (= searchsorted left, much faster)
        pos = np.zeros(len(hashes), dtype=np.uint8)
        for bound in b[:-1]:  # the last live bound is 2³¹−1: never below a 31-bit hash
            pos += hashes > bound
        pos = pos.astype(np.intp)
    else:
        pos = np.searchsorted(b, hashes, side="left")  # the last live bound is 2³¹−1: pos < len(live)
    return pos if len(live) == len(bounds) else live[pos]


# --------------------------------------------------------------------------- compiled device


@dataclass(slots=True)
class _Decision:
    route: Route
    kind: str  # "fixed" | "threshold" | "modulo" | "table"
    choices: np.ndarray  # int32 choice index per member (fixed: one)
    bounds: np.ndarray | None = None  # threshold: per member
    table: np.ndarray | None = None  # table: member index per bucket
    placement: int = EXACT
    reason: str = ""

    @property
    def hashed(self) -> bool:
        return self.kind != "fixed"


@functools.lru_cache(maxsize=65536)
def dst_key(dst: str) -> tuple[int, int, int, int, tuple[int, int, int, int]]:
    """A route destination as (version, address, mask, prefix length, the four 64-bit words ``lookup`` compares):
    address and mask as 128-bit integers laid out as ``_dst_words`` lays out a flow's destination.  Cached: the
    devices of a fabric carry the same destinations."""
    net = ipaddress.ip_network(dst, strict=False)
    vh, vl, mh, ml = _net_words(net)
    return net.version, vh << 64 | vl, mh << 64 | ml, net.prefixlen, (vh, vl, mh, ml)


_TABLE_RANK = {"local": 0, "main": 1, "": 1}  # lookup order of the tables placed; other tables are not looked up
BEST_KEPT = 4096  # destinations whose answer a compiled device keeps (beyond: forgotten, looked up again)


@dataclass(slots=True)
class CompiledDevice:
    """A device's tables ready for lookups, resolved **on use**: a route becomes a decision the first time a
    lookup reaches it (``decision_at``), a destination's answer is kept once found, and the table sorted for
    many-destination lookups is made the first time one runs.  A fabric's anycast flows go to a few addresses,
    so a leaf of 4,000 routes looks at one or two of them, not all (resolving all took ~0.2 s a leaf: a
    2,000-device fabric's health checks ran for minutes and held gigabytes).  ``compile_device`` resolves every
    route at once (the CLI: an inconsistent table is an error whatever it is used for).

    Thread-safe: a live session's health checks (a worker thread) and its placements share compiled devices."""

    state: DeviceState
    local: tuple[Route, ...] = ()  # the device's own addresses as local routes, ahead of ``state.routes``
    objects: dict[int, NexthopObject] = field(default_factory=dict)
    groups: dict[int, NexthopGroup] = field(default_factory=dict)
    choices: list[Choice] = field(default_factory=list)
    decisions: list[_Decision] = field(default_factory=list)  # in the order they were made
    made: dict[int, int] = field(default_factory=dict)  # route position -> decision index (−1: route unusable)
    # per family: every route of the local and main tables in lookup order as (words, position) (made on use)
    tables: dict[int, list[tuple[tuple[int, int, int, int], int]]] = field(default_factory=dict)
    best: dict[tuple[int, int], int] = field(default_factory=dict)  # (family, destination) -> decision index
    reasons: list[str] = field(default_factory=lambda: [""])
    _choice_ix: dict[Choice, int] = field(default_factory=dict)
    members: tuple[tuple[int, ...], ...] = ()  # per decision: reachable choices (extended as decisions are made)
    held: int = 0  # table rows, decisions and answers held (what the compile cache bounds)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def choice(self, c: Choice) -> int:
        with self.lock:
            if c not in self._choice_ix:
                self._choice_ix[c] = len(self.choices)
                self.choices.append(c)
            return self._choice_ix[c]

    def reason_code(self, text: str) -> int:
        with self.lock:
            if text not in self.reasons:
                self.reasons.append(text)
            return self.reasons.index(text)

    def route_at(self, pos: int) -> Route:
        """The route at ``pos`` of the local routes then ``state.routes``."""
        n = len(self.local)
        return self.local[pos] if pos < n else self.state.routes[pos - n]

    def routes(self) -> Iterator[tuple[int, Route]]:
        yield from enumerate(self.local)
        yield from enumerate(self.state.routes, len(self.local))

    def keys(self) -> Iterator[tuple[int, RouteKey]]:
        """(position, ``Route.key``) of every route, without building a table received encoded."""
        yield from enumerate(r.key for r in self.local)
        yield from enumerate(route_keys(self.state.routes), len(self.local))

    def decision_at(self, pos: int) -> int:
        """The decision index of the route at ``pos``, made on first use (−1: the route cannot be used)."""
        di = self.made.get(pos)
        if di is not None:
            return di
        with self.lock:
            di = self.made.get(pos)
            if di is not None:
                return di
            route = self.route_at(pos)
            try:
                dec = _route_decision(self, route, self.objects, self.groups)
            except WeightError as exc:
                raise PlacementError(f"route {route.dst}: {exc}") from None
            if dec is None:
                di = -1
            else:
                di = len(self.decisions)
                self.decisions.append(dec)
                self.held += 1
            self.made[pos] = di
            return di


def usable(flags: tuple[str, ...], hs: HashSettings) -> bool:
    """A next hop with these flags takes part in hashing (not dead; not linkdown when that is ignored)."""
    return "dead" not in flags and not ("linkdown" in flags and hs.ignore_routes_with_linkdown)


def hash_doubt(state: DeviceState) -> tuple[int, str]:
    """How exactly ``state``'s own hash can be known: (EXACT / APPROXIMATE / UNKNOWN, reason or "")."""
    if state.device.platform in HARDWARE_PLATFORMS:
        return UNKNOWN, ASIC_REASON.format(platform=state.device.platform)
    if state.hash.seed == 0:
        return UNKNOWN, SEED_REASON
    for p in (state.hash.policy, state.hash.policy6):
        if p not in MODELLED_POLICIES:
            return UNKNOWN, POLICY_REASON.format(policy=p)
    return EXACT, ""


def _object_choice(cd: CompiledDevice, obj: NexthopObject, route: Route) -> Choice:
    if obj.blackhole:
        return Choice(Outcome.DROP, route=route.dst, nhid=obj.id, detail="blackhole")
    return Choice(Outcome.FORWARD, obj.gateway, obj.dev, route.dst, obj.id)


def _group_decision(cd: CompiledDevice, route: Route, group: NexthopGroup,
                    objects: dict[int, NexthopObject]) -> _Decision | None:
    hs = cd.state.hash
    members = []
    for m in group.members:
        obj = objects.get(m.id)
        if obj is None:
            raise PlacementError(f"nexthop group {group.id} names nexthop {m.id}, which is not in the nexthop table")
        members.append((m, obj))
    ok = [usable(o.flags, hs) for _, o in members]
    if not any(ok):
        return None
    ch = np.array([cd.choice(_object_choice(cd, o, route)) for _, o in members], dtype=np.int32)
    try:
        weights = check_weights([m.weight for m, _ in members])
    except WeightError as exc:
        raise PlacementError(f"nexthop group {group.id}: {exc}") from None
    placement, reason = hash_doubt(cd.state)
    if len(members) == 1:
        return _Decision(route, "fixed", ch)
    if group.type == "mpath":
        return _Decision(route, "threshold", ch, bounds=threshold_bounds(weights, ok),
                         placement=placement, reason=reason)
    if group.type == "modulo-n":
        live = np.nonzero(ok)[0]
        return _Decision(route, "modulo", ch[live], placement=placement, reason=reason)
    if group.type == "maglev":
        live = [i for i, u in enumerate(ok) if u]
        table = maglev_table([f"{members[i][1].gateway}|{members[i][1].dev}" for i in live],
                             [weights[i] for i in live], size=MAGLEV_SIZE).astype(np.int32)
        return _Decision(route, "table", ch[live], table=table, placement=placement, reason=reason)
    if group.type == "resilient":
        ids = [m.id for m, _ in members]
        nb = group.buckets or len(group.bucket_table) or 128
        if group.bucket_table and len(group.bucket_table) == nb and {b.nhid for b in group.bucket_table} <= set(ids) \
                and {b.index for b in group.bucket_table} == set(range(nb)):
            table = np.empty(nb, dtype=np.int32)
            pos = {nid: i for i, nid in enumerate(ids)}
            for b in group.bucket_table:
                table[b.index] = pos[b.nhid]
            return _Decision(route, "table", ch, table=table, placement=placement, reason=reason)
        live = [i for i, u in enumerate(ok) if u]
        try:
            sim = ResilientGroup.create(live, [weights[i] for i in live], num_buckets=nb)
        except WeightError as exc:
            raise PlacementError(f"nexthop group {group.id}: {exc}") from None
        table = sim.table.astype(np.int32)
        if placement == EXACT:
            placement, reason = APPROXIMATE, SIMULATED_REASON
        return _Decision(route, "table", ch, table=table, placement=placement, reason=reason)
    return _Decision(route, "threshold", ch, bounds=threshold_bounds(weights, ok), placement=UNKNOWN,
                     reason=f"unknown nexthop group type {group.type!r}: treated as hash-threshold")


_DROP_TYPES = {"blackhole", "unreachable", "prohibit", "throw", "multicast", "nat"}
_LOCAL_TYPES = {"local", "broadcast", "anycast"}


def _route_decision(cd: CompiledDevice, route: Route, objects: dict[int, NexthopObject],
                    groups: dict[int, NexthopGroup]) -> _Decision | None:
    """The decision a route makes, or None when it cannot be used (all next hops unusable, unknown type)."""
    hs = cd.state.hash
    if route.type in _LOCAL_TYPES:
        return _Decision(route, "fixed", np.array([cd.choice(Choice(Outcome.LOCAL, route=route.dst,
                                                                     detail=route.type))], dtype=np.int32))
    if route.type in _DROP_TYPES:
        return _Decision(route, "fixed", np.array([cd.choice(Choice(Outcome.DROP, route=route.dst,
                                                                     detail=route.type))], dtype=np.int32))
    if route.type != "unicast":
        return None
    if route.nhid is not None:
        if route.nhid in groups:
            return _group_decision(cd, route, groups[route.nhid], objects)
        if route.nhid in objects:
            obj = objects[route.nhid]
            if not usable(obj.flags, hs):
                return None
            return _Decision(route, "fixed", np.array([cd.choice(_object_choice(cd, obj, route))], dtype=np.int32))
        raise PlacementError(f"route {route.dst} names nhid {route.nhid}, which is not in the nexthop table "
                             f"(give the device's 'ip -j nexthop show')")
    nhs = route.nexthops
    if not nhs:
        return None
    ok = [usable(nh.flags, hs) for nh in nhs]
    if not any(ok):
        return None
    ch = np.array([cd.choice(Choice(Outcome.FORWARD, nh.gateway, nh.dev, route.dst)) for nh in nhs], dtype=np.int32)
    if len(nhs) == 1:
        return _Decision(route, "fixed", ch)
    placement, reason = hash_doubt(cd.state)
    if placement == EXACT and hs.use_neigh:
        placement, reason = APPROXIMATE, NEIGH_REASON
    return _Decision(route, "threshold", ch, bounds=threshold_bounds([nh.weight for nh in nhs], ok),
                     placement=placement, reason=reason)


def _compiled(state: DeviceState) -> CompiledDevice:
    """``state``'s tables, nothing resolved yet (``CompiledDevice``)."""
    local: list[Route] = []
    for itf in state.interfaces:
        for a in itf.addresses:
            if "tentative" in a.flags or "dadfailed" in a.flags:
                continue
            local.append(Route(dst=f"{a.local}/{32 if a.family == 4 else 128}", family=a.family, type="local",
                               table="local"))
    return CompiledDevice(state, tuple(local), {o.id: o for o in state.nexthops.objects},
                          {g.id: g for g in state.nexthops.groups})


def compile_device(state: DeviceState) -> CompiledDevice:
    """Resolve every usable route of ``state`` to a decision; raises PlacementError on inconsistent tables (any
    route's, used or not) and ValueError on a destination that is no prefix."""
    if isinstance(state.routes, RouteTable):
        state.routes.routes()  # built whole once, not route by route
    cd = _compiled(state)
    for pos, route in cd.routes():
        if (route.table or "main") in _TABLE_RANK:
            cd.decision_at(pos)
            dst_key(route.dst)
    return cd


_COMPILED: "OrderedDict[tuple, tuple[tuple, CompiledDevice, int]]" = OrderedDict()
_COMPILED_LOCK = threading.Lock()
COMPILE_CACHE_DEVICES = 4096  # compiled devices kept for reuse ...
COMPILE_CACHE_ROUTES = 12_000_000  # ... and the routes they keep alive plus the table rows, decisions and answers
# they made, at most (a route kept alive is mostly one the timeline holds anyway; a row or decision ~150 bytes)
_compiled_routes = 0


def compiled_for(state: DeviceState) -> CompiledDevice:
    """The compiled tables of ``state`` (resolved on use: ``CompiledDevice``), shared by every state holding the
    very same route, nexthop and interface records and hash settings: a poller hands back the same records
    while a device does not change, so what an unchanged device resolved is not resolved again on every poll.
    Bounded: LRU by devices, and by routes kept alive plus rows and decisions made (counted as they grow)."""
    global _compiled_routes
    records = (state.routes, state.nexthops, state.interfaces)
    key = (id(state.routes), id(state.nexthops), id(state.interfaces), state.hash, state.device.platform)
    with _COMPILED_LOCK:
        hit = _COMPILED.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], records)):
            _COMPILED.move_to_end(key)
            cd = hit[1]
            weight = len(state.routes) + cd.held
            if weight != hit[2]:  # grown since last counted
                _compiled_routes += weight - hit[2]
                _COMPILED[key] = (records, cd, weight)
                _evict()
            return cd
        cd = _compiled(state)
        old = _COMPILED.pop(key, None)
        if old is not None:
            _compiled_routes -= old[2]
        _COMPILED[key] = (records, cd, len(state.routes))
        _compiled_routes += len(state.routes)
        _evict()
    return cd


def _evict() -> None:
    global _compiled_routes
    while len(_COMPILED) > 1 and (len(_COMPILED) > COMPILE_CACHE_DEVICES or _compiled_routes > COMPILE_CACHE_ROUTES):
        _, (_, _, n) = _COMPILED.popitem(last=False)
        _compiled_routes -= n


# --------------------------------------------------------------------------- lookup


def _dst_words(flows: FlowArray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Destination addresses of ``rows`` as two uint64 words (big-endian halves; IPv4 in the high word's top 32 bits)."""
    d = np.ascontiguousarray(np.asarray(flows.dst)[rows], dtype=np.uint8)
    hi = d[:, :8].copy().view(">u8").astype(np.uint64).ravel()
    lo = d[:, 8:].copy().view(">u8").astype(np.uint64).ravel()
    return hi, lo


def _net_words(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int, int, int]:
    if net.version == 4:
        v = int(net.network_address) << 32
        m = (int(net.netmask) << 32) if net.prefixlen else 0
        return v, 0, m, 0
    v, m = int(net.network_address), int(net.netmask)
    return v >> 64, v & (2**64 - 1), m >> 64, m & (2**64 - 1)


FEW_ROWS = 16  # up to this many destinations, each is looked up on its own (its candidate routes, in order)


def _candidates(cd: CompiledDevice, version: int
                ) -> Iterator[tuple[int, int, int, int, tuple[int, int, int, int, tuple[int, int, int, int]]]]:
    """Every route of family ``version`` in the local and main tables as (table rank, −prefix length, metric,
    position, ``dst_key``): sorted on the first four, the order the kernel looks them up in."""
    for pos, (table, dst, metric) in cd.keys():
        rank = _TABLE_RANK.get(table or "")
        if rank is not None:
            key = dst_key(dst)
            if key[0] == version:
                yield rank, -key[3], metric or 0, pos, key


def _lookup_one(cd: CompiledDevice, version: int, d: int) -> int:
    """The decision for destination ``d`` (a 128-bit integer as ``_dst_words`` lays it out), −1: no route.  Every
    route of the local and main tables holding ``d`` is a candidate: local before main, longest prefix first,
    lowest metric among equals (then table order), and the first usable one wins."""
    hit = cd.best.get((version, d))
    if hit is not None:
        return hit
    found = sorted(c[:4] for c in _candidates(cd, version) if d & c[4][2] == c[4][1])
    di = -1
    for _, _, _, pos in found:
        di = cd.decision_at(pos)
        if di >= 0:
            break
    with cd.lock:
        if len(cd.best) >= BEST_KEPT:
            cd.held -= len(cd.best)
            cd.best.clear()
        if (version, d) not in cd.best:
            cd.held += 1
        cd.best[(version, d)] = di
    return di


def _table(cd: CompiledDevice, version: int) -> list[tuple[tuple[int, int, int, int], int]]:
    """Every route of the local and main tables of family ``version`` in lookup order, made once."""
    table = cd.tables.get(version)
    if table is not None:
        return table
    with cd.lock:
        table = cd.tables.get(version)
        if table is None:
            rows = sorted(_candidates(cd, version), key=lambda row: row[:4])
            table = cd.tables[version] = [(row[4][4], row[3]) for row in rows]
            cd.held += len(table)
    return table


def lookup(cd: CompiledDevice, flows: FlowArray, rows: np.ndarray) -> np.ndarray:
    """Decision index per row (−1: no route): local table first, then main, longest prefix first, lowest metric
    among equals, skipping a route whose next hops are all unusable."""
    out = np.full(len(rows), -1, dtype=np.int32)
    fam = np.asarray(flows.family)[rows]
    for version in (4, 6):
        sel = np.nonzero(fam == version)[0]
        if not len(sel):
            continue
        hi, lo = _dst_words(flows, rows[sel])
        res = np.full(len(sel), -1, dtype=np.int32)
        if len(sel) <= FEW_ROWS:  # a few destinations (placement looks up each distinct one once)
            for k in range(len(sel)):
                res[k] = _lookup_one(cd, version, int(hi[k]) << 64 | int(lo[k]))
            out[sel] = res
            continue
        for (vh, vl, mh, ml), pos in _table(cd, version):
            open_ = res < 0
            if not open_.any():
                break
            hit = open_ & ((hi & np.uint64(mh)) == np.uint64(vh))
            if ml:
                hit &= (lo & np.uint64(ml)) == np.uint64(vl)
            if not hit.any():
                continue
            di = cd.decision_at(pos)
            if di >= 0:
                res[hit] = di
        out[sel] = res
    return out


def _reachable(dec: _Decision) -> tuple[int, ...]:
    """Choices a decision can actually return (dead members and empty buckets excluded)."""
    if dec.kind == "threshold":
        picks = dec.choices[dec.bounds >= 0]
    elif dec.kind == "table":
        picks = dec.choices[np.unique(dec.table)]
    else:
        picks = dec.choices
    return tuple(dict.fromkeys(int(c) for c in picks))


def _member(dec: _Decision, h: np.ndarray) -> np.ndarray:
    """The member a hashed decision picks for each hash."""
    if dec.kind == "threshold":
        return threshold_pick(h, dec.bounds)
    if dec.kind == "modulo":
        return (h % np.uint32(len(dec.choices))).astype(np.intp)
    return dec.table[(h % np.uint32(len(dec.table))).astype(np.intp)]


def place(state: DeviceState | CompiledDevice, flows: FlowArray, rows: np.ndarray | None = None, *,
          cache: HashCache | None = None) -> Placed:
    """The answer of one device for ``flows`` (or the ``rows`` of it) arriving from outside (forwarding path)."""
    cd = state if isinstance(state, CompiledDevice) else compile_device(state)
    cache = cache or HashCache(flows)
    rows = np.arange(len(flows)) if rows is None else np.asarray(rows)
    n = len(rows)
    inv, first = cache.destinations()
    keys = cache.destination_keys()
    per_dst = lookup(cd, flows, first) if keys is None else \
        np.fromiter((_lookup_one(cd, version, d) for version, d in keys), dtype=np.int32, count=len(keys))
    dec_ix = np.full(n, per_dst[0], dtype=np.int32) if len(first) == 1 else per_dst[inv[rows]]
    no_route = cd.choice(Choice(Outcome.NO_ROUTE))
    if len(first) == 1:
        present = [int(per_dst[0])] if n else []
    else:
        present = np.flatnonzero(np.bincount(dec_ix + 1, minlength=len(cd.decisions) + 1)) - 1 if n else []
    if len(present) == 1 and present[0] >= 0:  # one decision for every row: no per-row bookkeeping
        dec = cd.decisions[present[0]]
        if dec.hashed:
            choice = np.take(dec.choices, _member(dec, cache.get(cd.state.hash, rows))).astype(np.int32, copy=False)
            placement = np.full(n, dec.placement, dtype=np.uint8)
            reason = np.full(n, cd.reason_code(dec.reason) if dec.reason else 0, dtype=np.int16)
        else:
            choice = np.full(n, dec.choices[0], dtype=np.int32)
            placement = np.zeros(n, dtype=np.uint8)
            reason = np.zeros(n, dtype=np.int16)
        present = []
    else:
        choice = np.full(n, no_route, dtype=np.int32)
        placement = np.zeros(n, dtype=np.uint8)
        reason = np.zeros(n, dtype=np.int16)
    for di in present:
        if di < 0:
            continue
        idx = np.flatnonzero(dec_ix == di)  # a lone decision took the fast path above
        dec = cd.decisions[di]
        if dec.hashed:
            choice[idx] = dec.choices[_member(dec, cache.get(cd.state.hash, rows[idx]))]
            placement[idx] = dec.placement
            reason[idx] = cd.reason_code(dec.reason) if dec.reason else 0
        else:
            choice[idx] = dec.choices[0]
    with cd.lock:
        if len(cd.members) != len(cd.decisions):  # decisions made since: theirs too
            cd.members += tuple(_reachable(d) for d in cd.decisions[len(cd.members):])
        return Placed(choice, tuple(cd.choices), placement, reason, tuple(cd.reasons), dec_ix, cd.members)


def hash_space(cd: CompiledDevice, flows: FlowArray, row: int = 0) -> tuple[tuple[Choice, float], ...]:
    """What the device does with the destination of flow ``row`` under uniform input: each choice its route
    can return with its share of hash space (hash-threshold: the width of its range; a table: its buckets;
    modulo-N: one in N), in member order, a choice held by several members summed; one choice with 1.0
    for a single next hop, a local delivery or a drop; ``no route`` with 1.0 when no route matches."""
    return decision_space(cd, int(lookup(cd, flows, np.array([row]))[0]))


def decision_space(cd: CompiledDevice, di: int) -> tuple[tuple[Choice, float], ...]:
    """``hash_space`` of decision ``di`` (as ``lookup`` returns it; −1: no route)."""
    if di < 0:
        return ((Choice(Outcome.NO_ROUTE), 1.0),)
    dec = cd.decisions[di]
    out: dict[int, float] = {}
    if dec.kind == "threshold":
        prev = -1
        for c, b in zip(dec.choices, dec.bounds):
            if b >= 0:
                out[int(c)] = out.get(int(c), 0.0) + (int(b) - prev) / 2.0 ** 31
                prev = int(b)
    elif dec.kind == "table":
        counts = np.bincount(dec.table, minlength=len(dec.choices))
        for c, k in zip(dec.choices, counts):
            if k:
                out[int(c)] = out.get(int(c), 0.0) + int(k) / len(dec.table)
    elif dec.kind == "modulo":
        for c in dec.choices:
            out[int(c)] = out.get(int(c), 0.0) + 1.0 / len(dec.choices)
    else:
        out[int(dec.choices[0])] = 1.0
    return tuple((cd.choices[c], w) for c, w in out.items())
