"""Blast radius: which flows an event moves to another server, and what-if events.

A flow *moves* when the end of its path (the server that answers it, or
where it is dropped / leaves the fabric) differs between ``before`` and
``after``.  Of the moved flows, TCP ones that reached an endpoint before
(delivered, or handed to a gateway outside the snapshot) are reset (the new
server has no socket); UDP ones just continue.  *Collateral* flows
are moved flows whose before-path did not traverse the changed element: the
changed next hop (device + gateway/dev) for next-hop events, the device for
device events; for a plain snapshot diff (no WhatIf), any device whose state
differs.  A *split* is a set of related flows (same ``group`` label, else the
same client address) that ended on one server before and on several after
(computed on demand: :meth:`Impact.splits`).

What-if mutations build ``after`` from ``before`` (pure; snapshots are frozen):
a :class:`WhatIf` edit (its :class:`WhatIfKind`) is applied by :func:`apply` through a table of
:func:`fail_nexthop`, :func:`restore_nexthop`, :func:`fail_device`,
:func:`set_weight`, :func:`settle_resilient`; :func:`each_single_failure`
lists every candidate; :func:`compare_mappings` reruns one event under each
mapping (modulo-N, hash-threshold, resilient, maglev) side by side.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, replace
from typing import Callable, Collection, Iterable, Sequence

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.paths import Ingress, PathOutcome, PathResult, Tracer, address_map, any_hop, code_mask
from anycast_tui.model.placement import HashCache, usable
from anycast_tui.model.resilient import ResilientGroup
from anycast_tui.model.types import (Bucket, DeviceState, FabricSnapshot, GroupMember, NexthopGroup,
                                     NexthopObject, NexthopTable, Route)

MAPPINGS = ("actual", "hash-threshold", "modulo-n", "resilient", "maglev")
DEFAULT_BUCKETS = 128  # the kernel's default for resilient groups
SETTLE_AFTER = 1e9  # seconds: "long after" for settle_resilient


class WhatIfError(ValueError):
    """A what-if event that does not apply to the snapshot (unknown device, no such next hop)."""


class WhatIfKind(enum.Enum):
    """What a what-if edit does; the values are the names JSON and the CLI print."""

    FAIL_NEXTHOP = "fail_nexthop"
    RESTORE_NEXTHOP = "restore_nexthop"
    FAIL_DEVICE = "fail_device"
    SET_WEIGHT = "set_weight"
    SETTLE = "settle"


NEXTHOP_KINDS = frozenset({WhatIfKind.FAIL_NEXTHOP, WhatIfKind.RESTORE_NEXTHOP, WhatIfKind.SET_WEIGHT})
_VERBS = {WhatIfKind.FAIL_NEXTHOP: "fail", WhatIfKind.RESTORE_NEXTHOP: "restore", WhatIfKind.SET_WEIGHT: "weight"}


@dataclass(frozen=True, slots=True)
class WhatIf:
    """One what-if edit of a snapshot (not ``model.timeline.Change``, what a timeline update did)."""

    kind: WhatIfKind
    device: str | None = None
    target: str | None = None  # gateway address or dev name
    weight: int | None = None

    @property
    def label(self) -> str:
        if self.kind is WhatIfKind.FAIL_DEVICE:
            return f"fail {self.device}"
        if self.kind is WhatIfKind.SETTLE:
            return f"settle resilient groups{' on ' + self.device if self.device else ''}"
        extra = f" = {self.weight}" if self.kind is WhatIfKind.SET_WEIGHT else ""
        return f"{self.device}: {_VERBS[self.kind]} {self.target}{extra}"


# --------------------------------------------------------------------------- mutations


def _matches(target: str, gateway: str | None, dev: str | None) -> bool:
    return target == gateway or target == dev


def _device(snapshot: FabricSnapshot, name: str) -> DeviceState:
    try:
        return snapshot.devices[name]
    except KeyError:
        raise WhatIfError(f"no device {name!r} in the snapshot") from None


def _with_device(snapshot: FabricSnapshot, state: DeviceState) -> FabricSnapshot:
    devices = dict(snapshot.devices)
    devices[state.device.name] = state
    return replace(snapshot, devices=devices)


def _resilient_update(group: NexthopGroup, live_before: list[GroupMember], live_after: list[GroupMember],
                      members: list[GroupMember]) -> NexthopGroup:
    """The group with ``members`` after its usable members went from ``live_before`` to ``live_after``:
    buckets moved as the kernel moves them (removed members' buckets at once, new members wait for idle ones)."""
    if not live_after:
        return replace(group, members=tuple(members), bucket_table=())
    nb = group.buckets or len(group.bucket_table) or DEFAULT_BUCKETS
    start = live_before or live_after
    if live_before and group.bucket_table and len(group.bucket_table) == nb:
        sim = ResilientGroup.from_group(replace(group, members=tuple(live_before), buckets=nb))
    else:
        sim = ResilientGroup.create([m.id for m in start], [m.weight for m in start], num_buckets=nb,
                                    idle_timer=group.idle_timer if group.idle_timer is not None else 120,
                                    unbalanced_timer=group.unbalanced_timer or 0)
    if live_before:
        sim.replace([m.id for m in live_after], [m.weight for m in live_after], now=0.0)
    return _group_from_sim(replace(group, members=tuple(members)), sim)


def _group_from_sim(group: NexthopGroup, sim: ResilientGroup) -> NexthopGroup:
    table = tuple(Bucket(group.id, i, int(nh)) for i, nh in enumerate(sim.table) if nh >= 0)
    return replace(group, buckets=sim.num_buckets, bucket_table=table)


def _edit_device(state: DeviceState, target: str, *, drop: bool = False, weight: int | None = None,
                 clear: tuple[str, ...] = ()) -> tuple[DeviceState, int]:
    """Drop / reweight / clear flags of the next hops matching ``target``; returns (state, number touched)."""
    touched = 0

    def edit_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f for f in flags if f not in clear)

    # nexthop objects
    objects = []
    gone: set[int] = set()
    reweight: set[int] = set()
    for o in state.nexthops.objects:
        if _matches(target, o.gateway, o.dev):
            if drop:
                gone.add(o.id)
                touched += 1
                continue
            if weight is not None:
                reweight.add(o.id)
                touched += 1
            if clear and any(f in clear for f in o.flags):
                o = replace(o, flags=edit_flags(o.flags))
                touched += 1
        objects.append(o)
    groups = []
    obj_before = {o.id: o for o in state.nexthops.objects}
    obj_after = {o.id: o for o in objects}

    def live(ms: Iterable[GroupMember], objs: dict[int, NexthopObject]) -> list[GroupMember]:
        return [m for m in ms if m.id in objs and usable(objs[m.id].flags, state.hash)]

    for g in state.nexthops.groups:
        members = [m for m in g.members if m.id not in gone]
        members = [replace(m, weight=weight) if m.id in reweight else m for m in members]
        if not members:
            gone.add(g.id)
            continue
        if g.type == "resilient" and live(g.members, obj_before) != live(members, obj_after):
            g = _resilient_update(g, live(g.members, obj_before), live(members, obj_after), members)
        elif members != list(g.members):
            g = replace(g, members=tuple(members))
        groups.append(g)
    routes = []
    for r in state.routes:
        if r.nhid is not None:
            if r.nhid in gone:
                continue
            routes.append(r)
            continue
        nhs = []
        for nh in r.nexthops:
            if _matches(target, nh.gateway, nh.dev):
                if drop:
                    touched += 1
                    continue
                if weight is not None:
                    nh = replace(nh, weight=weight)
                    touched += 1
                if clear and any(f in clear for f in nh.flags):
                    nh = replace(nh, flags=edit_flags(nh.flags))
                    touched += 1
            nhs.append(nh)
        if r.nexthops and not nhs:
            continue  # the route's last next hop left: the route is withdrawn
        routes.append(replace(r, nexthops=tuple(nhs)) if len(nhs) != len(r.nexthops) or nhs != list(r.nexthops)
                      else r)
    if not touched:  # the very same object: compiled tables and identity checks stay valid
        return state, 0
    new = replace(state, routes=tuple(routes), nexthops=NexthopTable(tuple(objects), tuple(groups)))
    return new, touched


def fail_nexthop(snapshot: FabricSnapshot, device: str, target: str) -> FabricSnapshot:
    """``device`` loses every next hop via ``target`` (gateway address or dev name), as on removal."""
    new, n = _edit_device(_device(snapshot, device), target, drop=True)
    if not n:
        raise WhatIfError(f"{device} has no next hop via {target}")
    return _with_device(snapshot, new)


def restore_nexthop(snapshot: FabricSnapshot, device: str, target: str,
                    reference: FabricSnapshot | None = None) -> FabricSnapshot:
    """Next hops via ``target`` come back: ``dead``/``linkdown`` flags cleared, or (with ``reference``,
    a snapshot where they were present) the device's routes and groups holding them restored."""
    state = _device(snapshot, device)
    new, n = _edit_device(state, target, clear=("dead", "linkdown"))
    if reference is not None and device in reference.devices:
        ref = reference.devices[device]
        new, m = _restore_from(new, ref, target)
        n += m
    if not n:
        raise WhatIfError(f"{device} has no dead or linkdown next hop via {target}")
    return _with_device(snapshot, new)


def _restore_from(state: DeviceState, ref: DeviceState, target: str) -> tuple[DeviceState, int]:
    touched = 0
    routes = {r.key: r for r in state.routes}
    for r in ref.routes:
        if any(_matches(target, nh.gateway, nh.dev) for nh in r.nexthops) and routes.get(r.key) != r:
            routes[r.key] = r
            touched += 1
    objects = {o.id: o for o in state.nexthops.objects}
    for o in ref.nexthops.objects:
        if _matches(target, o.gateway, o.dev) and o.id not in objects:
            objects[o.id] = o
            touched += 1
    groups = {g.id: g for g in state.nexthops.groups}
    for g in ref.nexthops.groups:
        cur = groups.get(g.id)
        if cur is None:
            groups[g.id] = g
        elif [m.id for m in cur.members] != [m.id for m in g.members]:
            groups[g.id] = _resilient_update(cur, list(cur.members), list(g.members), list(g.members)) \
                if g.type == "resilient" else replace(cur, members=g.members)
        else:
            continue
        touched += 1
    for r in ref.routes:
        if r.nhid is not None and r.key not in routes:
            routes[r.key] = r
    return replace(state, routes=tuple(routes.values()),
                   nexthops=NexthopTable(tuple(objects.values()), tuple(groups.values()))), touched


def set_weight(snapshot: FabricSnapshot, device: str, target: str, weight: int) -> FabricSnapshot:
    """Next hops via ``target`` on ``device`` get ``weight`` (UCMP)."""
    if weight < 1:
        raise WhatIfError("weight must be at least 1")
    new, n = _edit_device(_device(snapshot, device), target, weight=weight)
    if not n:
        raise WhatIfError(f"{device} has no next hop via {target}")
    return _with_device(snapshot, new)


def device_addresses(state: DeviceState) -> set[str]:
    return {a.local for itf in state.interfaces for a in itf.addresses}


def fail_device(snapshot: FabricSnapshot, name: str) -> FabricSnapshot:
    """Device ``name`` disappears: every route via one of its addresses loses that next hop everywhere."""
    addrs = device_addresses(_device(snapshot, name))
    devices = {}
    for dname, state in snapshot.devices.items():
        if dname == name:
            continue
        for a in sorted(addrs):
            state, _ = _edit_device(state, a, drop=True)
        devices[dname] = state
    return replace(snapshot, devices=devices)


def settle_resilient(snapshot: FabricSnapshot, device: str | None = None) -> FabricSnapshot:
    """Resilient groups (of ``device``, or all) after their timers ran out: tables balanced."""
    devices = dict(snapshot.devices)
    for dname in ([device] if device else sorted(devices)):
        state = _device(snapshot, dname)
        groups = []
        for g in state.nexthops.groups:
            if g.type == "resilient" and g.bucket_table:
                sim = ResilientGroup.from_group(g)
                sim.unbalanced_timer = sim.unbalanced_timer or SETTLE_AFTER / 2
                sim.advance(SETTLE_AFTER)
                g = _group_from_sim(g, sim)
            groups.append(g)
        devices[dname] = replace(state, nexthops=replace(state.nexthops, groups=tuple(groups)))
    return replace(snapshot, devices=devices)


_APPLY: dict[WhatIfKind, Callable[[FabricSnapshot, WhatIf], FabricSnapshot]] = {
    WhatIfKind.FAIL_NEXTHOP: lambda s, c: fail_nexthop(s, c.device or "", c.target or ""),
    WhatIfKind.RESTORE_NEXTHOP: lambda s, c: restore_nexthop(s, c.device or "", c.target or ""),
    WhatIfKind.FAIL_DEVICE: lambda s, c: fail_device(s, c.device or ""),
    WhatIfKind.SET_WEIGHT: lambda s, c: set_weight(s, c.device or "", c.target or "", c.weight or 1),
    WhatIfKind.SETTLE: lambda s, c: settle_resilient(s, c.device),
}


def apply(snapshot: FabricSnapshot, change: WhatIf) -> FabricSnapshot:
    """The snapshot after ``change``."""
    try:
        edit = _APPLY[change.kind]
    except (KeyError, TypeError):
        raise WhatIfError(f"unknown change {change.kind!r}") from None
    return edit(snapshot, change)


def each_single_failure(snapshot: FabricSnapshot, *, devices: bool = True) -> list[WhatIf]:
    """Every next hop of a multipath decision (per device), then every device others route through."""
    out: list[WhatIf] = []
    owners = address_map(snapshot)
    via: set[str] = set()
    for name in sorted(snapshot.devices):
        state = snapshot.devices[name]
        seen: list[str] = []
        objects = {o.id: o for o in state.nexthops.objects}
        for r in state.routes:
            cands: list[tuple[str | None, str | None]] = []
            if r.nhid is not None:
                g = state.group(r.nhid)
                if g is not None and len(g.members) > 1:
                    cands = [(objects[m.id].gateway, objects[m.id].dev) for m in g.members if m.id in objects]
            elif len(r.nexthops) > 1:
                cands = [(nh.gateway, nh.dev) for nh in r.nexthops if not nh.dead]
            for gw, dev in cands:
                t = gw or dev
                if t and t not in seen:
                    seen.append(t)
            for nh in r.nexthops:
                if nh.gateway in owners:
                    via.add(owners[nh.gateway])
        for o in state.nexthops.objects:
            if o.gateway in owners:
                via.add(owners[o.gateway])
        out.extend(WhatIf(WhatIfKind.FAIL_NEXTHOP, name, t) for t in seen)
    if devices:
        out.extend(WhatIf(WhatIfKind.FAIL_DEVICE, d) for d in sorted(via))
    return out


# --------------------------------------------------------------------------- mapping what-ifs


def with_mapping(snapshot: FabricSnapshot, mapping: str, *, buckets: int = DEFAULT_BUCKETS,
                 only: Collection[str] | None = None) -> FabricSnapshot:
    """The snapshot with every multipath decision (of the devices in ``only``, default all) using ``mapping``
    (see MAPPINGS; "actual" = unchanged).

    Plain multipath routes become nexthop groups; resilient groups get a
    freshly filled (balanced) bucket table, other types drop theirs.
    """
    if mapping == "actual":
        return snapshot
    gtype = {"hash-threshold": "mpath", "modulo-n": "modulo-n", "resilient": "resilient", "maglev": "maglev"}.get(mapping)
    if gtype is None:
        raise WhatIfError(f"unknown mapping {mapping!r} (one of {', '.join(MAPPINGS)})")
    return replace(snapshot, devices={n: _device_with_mapping(s, gtype, buckets) if only is None or n in only else s
                                      for n, s in snapshot.devices.items()})


def _retype(g: NexthopGroup, gtype: str, buckets: int, live: list[GroupMember]) -> NexthopGroup:
    if gtype == "resilient":
        nb = g.buckets or buckets
        if not live:
            return replace(g, type="resilient", buckets=nb, bucket_table=())
        sim = ResilientGroup.create([m.id for m in live], [m.weight for m in live], num_buckets=nb)
        return _group_from_sim(replace(g, type="resilient", buckets=nb), sim)
    return replace(g, type=gtype, buckets=None, bucket_table=())


def _device_with_mapping(state: DeviceState, gtype: str, buckets: int) -> DeviceState:
    objects = list(state.nexthops.objects)
    by_id = {o.id: o for o in objects}

    def live(ms: Iterable[GroupMember]) -> list[GroupMember]:
        return [m for m in ms if m.id in by_id and usable(by_id[m.id].flags, state.hash)]

    groups = [(_retype(g, gtype, buckets, live(g.members)) if len(g.members) > 1 else g)
              for g in state.nexthops.groups]
    next_id = max([o.id for o in objects] + [g.id for g in groups] + [0]) + 1
    routes = []
    for r in state.routes:
        if r.nhid is not None or len(r.nexthops) < 2:
            routes.append(r)
            continue
        members = []
        for nh in r.nexthops:
            by_id[next_id] = NexthopObject(next_id, nh.gateway, nh.dev, flags=nh.flags)
            objects.append(by_id[next_id])
            members.append(GroupMember(next_id, nh.weight))
            next_id += 1
        g = _retype(NexthopGroup(next_id, tuple(members)), gtype, buckets, live(members))
        groups.append(g)
        routes.append(replace(r, nhid=next_id, nexthops=()))
        next_id += 1
    return replace(state, routes=tuple(routes), nexthops=NexthopTable(tuple(objects), tuple(groups)))


# --------------------------------------------------------------------------- impact


@dataclass(frozen=True, slots=True)
class Impact:
    """Per-flow masks (bool arrays) and the summaries of one before → after comparison."""

    change: WhatIf | None
    before: PathResult
    after: PathResult
    labels: tuple[str, ...]  # end labels shared by before_end/after_end
    before_end: np.ndarray  # int32 → labels
    after_end: np.ndarray
    moved: np.ndarray
    tcp_reset: np.ndarray
    udp: np.ndarray
    collateral: np.ndarray
    flows: FlowArray
    group: np.ndarray | None  # related-flow labels (None: flows of one client address are related)

    @property
    def counts(self) -> dict[str, int]:
        return {"flows": int(len(self.moved)), "moved": int(self.moved.sum()), "tcp_reset": int(self.tcp_reset.sum()),
                "udp": int(self.udp.sum()), "collateral": int(self.collateral.sum())}

    def splits(self, limit: int = 20) -> tuple[int, tuple[str, ...]]:
        """(number of related-flow sets split across endpoints, the first ``limit`` of their keys); on demand."""
        delivered = np.isin(self.before.outcome, (PathOutcome.DELIVERED, PathOutcome.EXITED))
        return _splits(self.flows, self.group, self.before_end, self.after_end, delivered, self.moved, limit)

    def matrix(self) -> dict[tuple[str, str], int]:
        """(from, to) → number of moved flows."""
        if not self.moved.any():
            return {}
        n = len(self.labels)
        pairs = self.before_end[self.moved].astype(np.int64) * n + self.after_end[self.moved]
        uniq, cnt = np.unique(pairs, return_counts=True)
        return {(self.labels[int(u) // n], self.labels[int(u) % n]): int(c) for u, c in zip(uniq, cnt)}

    def per_ingress(self, ingress: Ingress) -> dict[str, dict[str, int]]:
        """Counts per ingress device."""
        if isinstance(ingress, str):
            return {ingress: self.counts}
        if isinstance(ingress, tuple):
            values, codes = list(ingress[0]), np.asarray(ingress[1])
        else:
            values, codes = np.unique(np.asarray(ingress).astype(str), return_inverse=True)
            codes = codes.ravel()
        out = {}
        for k, name in enumerate(values):
            sel = codes == k
            if not sel.any():
                continue
            out[str(name)] = {"flows": int(sel.sum()), "moved": int(self.moved[sel].sum()),
                              "tcp_reset": int(self.tcp_reset[sel].sum()), "udp": int(self.udp[sel].sum()),
                              "collateral": int(self.collateral[sel].sum())}
        return out


@dataclass(frozen=True, slots=True)
class EventImpact:
    """What one change (or incident) did to the sample flows, as flow indexes into the sample for ``prefix``.

    ``before``/``after`` are the snapshots the engine compared; ``moved`` etc. are
    flow indexes (int32, ascending); ``from_end``/``to_end`` give, per moved flow,
    its end before and after (indexes into ``labels``); ``split`` holds the flows
    of related-flow sets this change split across servers.
    """

    prefix: str
    before: FabricSnapshot
    after: FabricSnapshot
    counts: dict[str, int]
    moved: np.ndarray
    tcp_reset: np.ndarray
    udp: np.ndarray
    collateral: np.ndarray
    labels: tuple[str, ...]
    from_end: np.ndarray
    to_end: np.ndarray
    split: np.ndarray
    n_splits: int

    @classmethod
    def of(cls, prefix: str, before: FabricSnapshot, after: FabricSnapshot, imp: "Impact",
           split: np.ndarray | None = None, n_splits: int = 0) -> "EventImpact":
        """The per-flow index arrays of one ``Impact`` of ``before`` → ``after`` (its path results are not kept)."""
        moved = np.flatnonzero(imp.moved).astype(np.int32)
        return cls(prefix, before, after, imp.counts, moved,
                   np.flatnonzero(imp.tcp_reset).astype(np.int32), np.flatnonzero(imp.udp).astype(np.int32),
                   np.flatnonzero(imp.collateral).astype(np.int32), imp.labels, imp.before_end[moved],
                   imp.after_end[moved], split if split is not None else np.zeros(0, np.int32), n_splits)



def _shared_labels(a: PathResult, b: PathResult) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    labels: list[str] = list(a.terminals)
    ix = {t: i for i, t in enumerate(labels)}
    for t in b.terminals:
        if t not in ix:
            ix[t] = len(labels)
            labels.append(t)
    bmap = np.array([ix[t] for t in b.terminals] or [0], dtype=np.int32)
    return tuple(labels), a.final.astype(np.int32), bmap[b.final]


def _merge(base: PathResult, part: PathResult, rows: np.ndarray) -> PathResult:
    """``base`` with the flows at ``rows`` replaced by ``part`` (label spaces merged)."""
    def union(x: Sequence, y: Sequence) -> tuple[tuple, np.ndarray]:
        items = list(x)
        ix = {v: i for i, v in enumerate(items)}
        for v in y:
            if v not in ix:
                ix[v] = len(items)
                items.append(v)
        return tuple(items), np.array([ix[v] for v in y] + [-1], dtype=np.int64)

    terminals, tmap = union(base.terminals, part.terminals)
    edge_labels, emap = union(base.edge_labels, part.edge_labels)
    reasons, rmap = union(base.reasons, part.reasons)
    devices = base.devices
    if part.devices != devices:
        devices, dmap = union(base.devices, part.devices)
    else:
        dmap = np.r_[np.arange(len(devices)), -1]
    width = max(base.hops.shape[1], part.hops.shape[1])

    def widen(a: np.ndarray, w: int) -> np.ndarray:
        if a.shape[1] == w:
            return a.copy()
        out = np.full((a.shape[0], w), -1, dtype=a.dtype)
        out[:, :a.shape[1]] = a
        return out

    hops = widen(base.hops, width)
    edges = widen(base.edges, width)
    hops[rows] = widen(dmap[part.hops].astype(np.int16), width)
    edges[rows] = widen(emap[part.edges].astype(np.int32), width)
    final = base.final.copy()
    final[rows] = tmap[part.final]
    outcome = base.outcome.copy()
    outcome[rows] = part.outcome
    placement = base.placement.copy()
    placement[rows] = part.placement
    reason = base.reason.copy()
    reason[rows] = rmap[part.reason]
    return PathResult(devices, final, terminals, outcome, hops, edges, edge_labels, placement, reason, reasons)


def _changed_devices(before: FabricSnapshot, after: FabricSnapshot) -> set[str]:
    names = set(before.devices) | set(after.devices)
    return {n for n in names if before.devices.get(n) is not after.devices.get(n)
            and before.devices.get(n) != after.devices.get(n)}


def _traversed(result: PathResult, change: WhatIf | None, changed: set[str], snapshot: FabricSnapshot) -> np.ndarray:
    """Flows whose path went through the changed element (see module doc)."""
    n = len(result)
    if change is not None and change.kind in NEXTHOP_KINDS:
        codes = [i for i, (d, gw, dev) in enumerate(result.edge_labels)
                 if d == change.device and change.target in (gw, dev)]
        return any_hop(result.edges, code_mask(len(result.edge_labels), codes)) if codes else np.zeros(n, bool)
    if change is not None and change.kind is WhatIfKind.FAIL_DEVICE:
        names = {change.device}
    else:
        names = changed
    codes = [i for i, d in enumerate(result.devices) if d in names]
    return any_hop(result.hops, code_mask(len(result.devices), codes)) if codes else np.zeros(n, bool)


def _splits(flows: FlowArray, group: np.ndarray | None, before_end: np.ndarray, after_end: np.ndarray,
            delivered: np.ndarray, moved: np.ndarray, limit: int = 20) -> tuple[int, tuple[str, ...]]:
    """Related-flow sets (≥2 flows) that all reached one endpoint before and several after."""
    if not moved.any():
        return 0, ()
    if group is not None:
        labels = np.asarray(group, dtype=object)
        has = np.flatnonzero(labels != None)  # noqa: E711 (elementwise)
        if not len(has):
            return 0, ()
        names, codes = np.unique(labels[has].astype(str), return_inverse=True)
        order = has[np.argsort(codes.ravel(), kind="stable")]
        ks = codes.ravel()[np.argsort(codes.ravel(), kind="stable")]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        name_of = lambda s: str(names[ks[s]])  # noqa: E731
    else:
        src = np.ascontiguousarray(flows.src)
        hi = src[:, :8].copy().view(">u8").ravel()
        lo = src[:, 8:].copy().view(">u8").ravel()
        if not lo.any():
            order = np.argsort(hi, kind="stable")
            h = hi[order]
            starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        else:
            order = np.lexsort((lo, hi))
            h, lo_s = hi[order], lo[order]
            starts = np.flatnonzero(np.r_[True, (h[1:] != h[:-1]) | (lo_s[1:] != lo_s[:-1])])
        name_of = lambda s: flows.flow(int(order[s])).src  # noqa: E731
    b, a = before_end[order], after_end[order]
    size = np.diff(np.r_[starts, len(order)])
    gone = np.add.reduceat((~delivered[order]).astype(np.int32), starts) > 0
    split = ((size >= 2) & ~gone & (np.minimum.reduceat(b, starts) == np.maximum.reduceat(b, starts))
             & (np.minimum.reduceat(a, starts) != np.maximum.reduceat(a, starts)))
    idx = np.flatnonzero(split)
    return int(len(idx)), tuple(name_of(starts[i]) for i in idx[:limit])


def _same_ingress(a: Ingress, b: Ingress) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        if tuple(a[0]) == tuple(b[0]):
            return bool(np.array_equal(np.asarray(a[1]), np.asarray(b[1])))
        return False
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def impact(before: FabricSnapshot, after: FabricSnapshot, flows: FlowArray, ingress: Ingress, *,
           change: WhatIf | None = None, group: np.ndarray | None = None, cache: HashCache | None = None,
           before_result: PathResult | None = None, ingress_after: Ingress | None = None) -> Impact:
    """Flows whose end changes between ``before`` and ``after`` (see module doc).

    ``ingress_after``: where flows enter in ``after`` when that differs (an entry device failed);
    default ``ingress``.
    """
    cache = cache or HashCache(flows)
    tb = Tracer(before, flows, cache)
    res_b = before_result if before_result is not None else tb.trace(ingress)
    changed = _changed_devices(before, after)
    ta = Tracer(after, flows, cache, compiled=tb._compiled)
    kept = {a: d for a, d in tb.owners.items() if d in after.devices}
    if ingress_after is not None and not _same_ingress(ingress, ingress_after):
        res_a = ta.trace(ingress_after)
    elif set(after.devices) <= set(before.devices) and kept == ta.owners:
        # only flows that visited a changed (or removed) device can take another path
        codes = [i for i, d in enumerate(res_b.devices) if d in changed]
        rows = np.flatnonzero(any_hop(res_b.hops, code_mask(len(res_b.devices), codes))) if codes \
            else np.zeros(0, np.int64)
        if len(rows) == len(flows):
            res_a = ta.trace(ingress, reuse=res_b, changed=changed)
        else:
            res_a = _merge(res_b, ta.trace(ingress, rows, reuse=res_b, changed=changed), rows) if len(rows) else res_b
    else:
        res_a = ta.trace(ingress)
    labels, b_end, a_end = _shared_labels(res_b, res_a)
    moved = b_end != a_end
    proto = np.asarray(flows.proto)
    delivered = np.isin(res_b.outcome, (PathOutcome.DELIVERED, PathOutcome.EXITED))  # had a live endpoint
    tcp_reset = moved & (proto == 6) & delivered
    udp = moved & (proto == 17)
    collateral = moved & ~_traversed(res_b, change, changed, before)
    return Impact(change, res_b, res_a, labels, b_end, a_end, moved, tcp_reset, udp, collateral, flows, group)


def what_if(snapshot: FabricSnapshot, change: WhatIf, flows: FlowArray, ingress: Ingress, *,
            group: np.ndarray | None = None, cache: HashCache | None = None,
            before_result: PathResult | None = None) -> Impact:
    """impact(snapshot, apply(snapshot, change), ...): the blast radius of one what-if event."""
    return impact(snapshot, apply(snapshot, change), flows, ingress, change=change, group=group, cache=cache,
                  before_result=before_result)


@dataclass(frozen=True, slots=True)
class MappingImpact:
    name: str
    moved: int
    tcp_reset: int
    udp: int
    collateral: int
    impact: Impact | None = dataclasses.field(default=None, repr=False, compare=False)


def compare_mappings(before: FabricSnapshot, change: WhatIf, flows: FlowArray, ingress: Ingress, *,
                     mappings: Iterable[str] = MAPPINGS, group: np.ndarray | None = None,
                     cache: HashCache | None = None, keep: bool = False) -> list[MappingImpact]:
    """The blast radius of ``change`` under each mapping, side by side (``keep`` keeps each Impact)."""
    cache = cache or HashCache(flows)
    out = []
    for name in mappings:
        b = with_mapping(before, name)
        a = apply(b, change)
        imp = impact(b, a, flows, ingress, change=change, group=group, cache=cache)
        c = imp.counts
        out.append(MappingImpact(name, c["moved"], c["tcp_reset"], c["udp"], c["collateral"], imp if keep else None))
    return out


def changed_routes(before: DeviceState, after: DeviceState) -> list[Route]:
    """Routes of ``after`` that differ from ``before`` (for display)."""
    old = {r.key: r for r in before.routes}
    return [r for r in after.routes if old.get(r.key) != r]
