"""What-if edits: the snapshot after an event that did not happen (pure; snapshots are frozen).

A :class:`WhatIf` edit (its :class:`WhatIfKind`) is applied by :func:`apply` through a table of
:func:`fail_nexthop`, :func:`restore_nexthop`, :func:`fail_device`, :func:`set_weight`,
:func:`settle_resilient`; :func:`each_single_failure` lists every candidate; :func:`with_mapping` rebuilds a
snapshot's multipath decisions under another mapping (modulo-N, hash-threshold, resilient, maglev).  What an
edit does to flows is ``model.impact`` (``what_if``, ``compare_mappings``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Callable, Collection, Iterable

from anycast_tui.model.memo import IdentityMemo
from anycast_tui.model.paths import address_map
from anycast_tui.model.placement import dst_key, usable
from anycast_tui.model.resilient import ResilientGroup
from anycast_tui.model.types import (Bucket, DeviceState, FabricSnapshot, GroupMember, NexthopGroup,
                                     NexthopObject, NexthopTable, Route, route_nexthops)

Net = tuple[int, int, int]  # (version, address, mask) as placement.dst_key lays them out

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


@dataclass(frozen=True, slots=True)
class WhatIf:
    """One what-if edit of a snapshot (not ``model.timeline.Change``, what a timeline update did)."""

    kind: WhatIfKind
    device: str | None = None
    target: str | None = None  # gateway address or dev name
    weight: int | None = None

    @property
    def label(self) -> str:
        """The edit in one line, as the CLI and the UI print it (one entry of ``_LABEL`` per kind)."""
        return _LABEL[self.kind](self)


_LABEL: dict[WhatIfKind, Callable[[WhatIf], str]] = {
    WhatIfKind.FAIL_NEXTHOP: lambda c: f"{c.device}: fail {c.target}",
    WhatIfKind.RESTORE_NEXTHOP: lambda c: f"{c.device}: restore {c.target}",
    WhatIfKind.FAIL_DEVICE: lambda c: f"fail {c.device}",
    WhatIfKind.SET_WEIGHT: lambda c: f"{c.device}: weight {c.target} = {c.weight}",
    WhatIfKind.SETTLE: lambda c: f"settle resilient groups{' on ' + c.device if c.device else ''}",
}


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


def _used(state: DeviceState, targets: set[str]) -> set[str]:
    """The ``targets`` some next hop of ``state`` (a nexthop object's or a route's) matches (``_matches``): only
    those can ``_edit_device`` change.  A fabric's device has a few neighbours, each with a few addresses, and
    a table received from the bus answers from its templates, unbuilt."""
    hit = {t for o in state.nexthops.objects for t in (o.gateway, o.dev) if t in targets}
    hit.update(t for nh in route_nexthops(state.routes) for t in (nh.gateway, nh.dev) if t in targets)
    return hit


def fail_device(snapshot: FabricSnapshot, name: str) -> FabricSnapshot:
    """Device ``name`` disappears: every route via one of its addresses loses that next hop everywhere."""
    addrs = device_addresses(_device(snapshot, name))
    devices = {}
    for dname, state in snapshot.devices.items():
        if dname == name:
            continue
        # an address no next hop of the device names leaves it as it is: only the others are edited (a spine
        # names one address of a failed leaf, its link's, of the leaf's several), and a device naming none
        # stays the very same object, its table not even read
        for a in sorted(_used(state, addrs)):
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
                 only: Collection[str] | None = None, covering: tuple[str, ...] | None = None) -> FabricSnapshot:
    """The snapshot with every multipath decision (of the devices in ``only``, default all) using ``mapping``
    (see MAPPINGS; "actual" = unchanged).

    Plain multipath routes become nexthop groups; resilient groups get a
    freshly filled (balanced) bucket table, other types drop theirs.  ``covering``: only the routes whose
    destination overlaps one of these prefixes, and their groups, are converted — for a caller that places
    flows to addresses in them alone (no other route can match such a flow), on a leaf of a large fabric a
    handful of routes instead of thousands.  The converted ones are the same either way (same ids).
    """
    if mapping == "actual":
        return snapshot
    gtype = {"hash-threshold": "mpath", "modulo-n": "modulo-n", "resilient": "resilient", "maglev": "maglev"}.get(mapping)
    if gtype is None:
        raise WhatIfError(f"unknown mapping {mapping!r} (one of {', '.join(MAPPINGS)})")
    nets = None if covering is None else tuple(dst_key(p)[:3] for p in covering)
    return replace(snapshot, devices={
        n: _MAPPED.get(s, (gtype, buckets, nets), lambda s=s: _device_with_mapping(s, gtype, buckets, nets))
        if only is None or n in only else s for n, s in snapshot.devices.items()})


# a device state under another mapping, by the state's identity: an incident's "had it been resilient" count
# converts the same before-states on each recompute (a burst grows one incident for many seconds), twice each
_MAPPED = IdentityMemo(256)


def _overlaps(dst: str, nets: tuple[Net, ...]) -> bool:
    """Whether route destination ``dst`` overlaps one of ``nets``: the two agree on the bits both masks keep (an
    unreadable destination: assumed to)."""
    try:
        v, a, m = dst_key(dst)[:3]
    except ValueError:
        return True
    return any(v == nv and a & m & nm == na & m & nm for nv, na, nm in nets)


def _retype(g: NexthopGroup, gtype: str, buckets: int, live: list[GroupMember]) -> NexthopGroup:
    if gtype == "resilient":
        nb = g.buckets or buckets
        if not live:
            return replace(g, type="resilient", buckets=nb, bucket_table=())
        sim = ResilientGroup.create([m.id for m in live], [m.weight for m in live], num_buckets=nb)
        return _group_from_sim(replace(g, type="resilient", buckets=nb), sim)
    return replace(g, type=gtype, buckets=None, bucket_table=())


def _device_with_mapping(state: DeviceState, gtype: str, buckets: int,
                         nets: tuple[Net, ...] | None = None) -> DeviceState:
    objects = list(state.nexthops.objects)
    by_id = {o.id: o for o in objects}

    def live(ms: Iterable[GroupMember]) -> list[GroupMember]:
        return [m for m in ms if m.id in by_id and usable(by_id[m.id].flags, state.hash)]

    def wanted(r: Route) -> bool:
        return nets is None or _overlaps(r.dst, nets)

    used = None if nets is None else {r.nhid for r in state.routes if r.nhid is not None and wanted(r)}
    groups = [(_retype(g, gtype, buckets, live(g.members)) if len(g.members) > 1 and (used is None or g.id in used)
               else g) for g in state.nexthops.groups]
    next_id = max([o.id for o in objects] + [g.id for g in groups] + [0]) + 1
    routes = []
    for r in state.routes:
        if r.nhid is not None or len(r.nexthops) < 2:
            routes.append(r)
            continue
        if not wanted(r):  # left as it is, with the ids it would have taken (the others' ids stay the same)
            routes.append(r)
            next_id += len(r.nexthops) + 1
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
