"""Events: the typed difference between two snapshots of the fabric.

``diff`` is pure.  It reports, per device: health transitions (unreachable /
back), links going down or up, routes withdrawn or announced, next hops
removed / added / re-weighted / re-flagged within a route, nexthop groups
changed and resilient bucket tables re-assigned; and, where FRR's RIB was read,
BGP prefixes whose paths and kernel FIB next hops start or stop disagreeing
for more than one poll (``model.rib.watch``; at most ``RIB_EVENTS_MAX`` a device and poll, then one summary
event).  A device whose data is stale
contributes only its health transition: its routes are the last good ones and
say nothing new.  One stale because nobody asked it (``Health.unobserved``: its
collector silent) contributes nothing, not even that: it did not fail.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from anycast_tui.model.rib import rib_fib
from anycast_tui.model.types import (
    DeviceState,
    Event,
    EventKind,
    FabricSnapshot,
    HealthStatus,
    Interface,
    Nexthop,
    NexthopGroup,
    Route,
)

# Tables and prefixes whose churn is noise for an anycast monitor.
_SKIP_TABLES = frozenset({"local"})
_SKIP_NETS = (ipaddress.ip_network("fe80::/10"), ipaddress.ip_network("ff00::/8"))


def nexthop_label(nh: Nexthop) -> str:
    if nh.gateway and nh.dev:
        return f"via {nh.gateway} dev {nh.dev}"
    if nh.gateway:
        return f"via {nh.gateway}"
    return f"dev {nh.dev}" if nh.dev else "(none)"


def _interesting(route: Route) -> bool:
    if route.table in _SKIP_TABLES:
        return False
    try:
        net = ipaddress.ip_network(route.dst, strict=False)
    except ValueError:
        return True
    return not any(net.version == s.version and net.subnet_of(s) for s in _SKIP_NETS)  # type: ignore[arg-type]


def link_up(i: Interface) -> bool:
    """Administratively up with carrier, and not reported down by its operstate."""
    return i.admin_up and i.carrier and i.operstate not in ("DOWN", "LOWERLAYERDOWN", "NOTPRESENT")


def _ok(state: DeviceState | None) -> bool:
    return state is not None and state.health.status is HealthStatus.OK


def _unobserved(state: DeviceState | None) -> bool:
    return state is not None and state.health.status is HealthStatus.STALE and state.health.unobserved


def _time(state: DeviceState, fallback: int) -> int:
    if state.health.status is not HealthStatus.OK and state.health.since_ms is not None:
        return state.health.since_ms
    return state.collected_at_ms if state.collected_at_ms is not None else fallback


def diff_device(prev: DeviceState | None, cur: DeviceState, now_ms: int) -> list[Event]:
    name = cur.device.name
    t = _time(cur, now_ms)
    events: list[Event] = []

    # Unobserved (its collector silent, the bus down): nobody asked the device, which says nothing about it:
    # no event now, and the next state is compared with the last one seen (was OK, still OK: no "back").
    if _unobserved(cur):
        return events
    was_ok, is_ok = _ok(prev) or _unobserved(prev), _ok(cur)
    if prev is not None and was_ok and not is_ok:
        events.append(Event(t, name, EventKind.DEVICE_UNREACHABLE, name, f"{name} unreachable: {cur.health.error or 'no answer'}"))
    elif prev is not None and not is_ok and cur.health.error != prev.health.error and prev.health.status is not HealthStatus.UNKNOWN:
        pass  # still failing, for another reason: health shows it; not a fabric event
    elif prev is not None and not was_ok and is_ok and prev.health.status is not HealthStatus.UNKNOWN:
        events.append(Event(t, name, EventKind.DEVICE_BACK, name, f"{name} reachable again"))

    # Data of a stale device is its last good data; and a device seen for the
    # first time has no "before": neither says anything about the fabric changing.
    if not is_ok or prev is None or prev.collected_at_ms is None:
        return events

    # Identity first: a collector that saw the same outputs hands back the same records.
    if prev.interfaces is not cur.interfaces:
        events += _diff_links(name, t, prev.interfaces, cur.interfaces)
    if prev.routes is not cur.routes and prev.routes != cur.routes:  # a keyframe's table equal to the last one's
        events += _diff_routes(name, t, prev.routes, cur.routes)
    if prev.nexthops is not cur.nexthops:
        events += _diff_groups(name, t, prev.nexthops.groups, cur.nexthops.groups)
    if cur.rib_watch is not None and (prev.rib_watch is None or prev.rib_watch.raised is not cur.rib_watch.raised):
        events += _diff_rib_fib(name, t, prev, cur)
    return events


def diff(prev: FabricSnapshot | None, cur: FabricSnapshot) -> list[Event]:
    """Events that turn ``prev`` into ``cur``, in device order then kind order."""
    out: list[Event] = []
    before = prev.devices if prev is not None else {}
    for name, state in cur.devices.items():
        out += diff_device(before.get(name), state, cur.taken_at_ms)
    return out


# --------------------------------------------------------------------------- parts


def _diff_links(dev: str, t: int, a: Iterable[Interface], b: Iterable[Interface]) -> list[Event]:
    old = {i.name: i for i in a}
    out = []
    for i in b:
        o = old.get(i.name)
        if o is None:
            continue
        up_before, up_now = link_up(o), link_up(i)
        if up_before and not up_now:
            why = "admin down" if not i.admin_up else ("no carrier" if not i.carrier else i.operstate.lower())
            out.append(Event(t, dev, EventKind.LINK_DOWN, i.name, f"{dev} {i.name} down ({why})",
                             before="up", after=why))
        elif up_now and not up_before:
            out.append(Event(t, dev, EventKind.LINK_UP, i.name, f"{dev} {i.name} up", before="down", after="up"))
    return out


def _hops(n: int) -> str:
    return f"{n} next hop{'' if n == 1 else 's'}"


def _route_map(routes: Iterable[Route]) -> dict[tuple, Route]:
    return {r.key: r for r in routes if _interesting(r)}


def _diff_routes(dev: str, t: int, a: Iterable[Route], b: Iterable[Route]) -> list[Event]:
    old, new = _route_map(a), _route_map(b)
    out: list[Event] = []
    for key, r in old.items():
        if key not in new:
            out.append(Event(t, dev, EventKind.ROUTE_WITHDRAWN, r.dst, f"{dev} withdrew {r.dst}"
                             + (f" (table {r.table})" if r.table != "main" else ""), table=r.table, prefix=r.dst,
                             before=_hops(len(r.nexthops)), after="none"))
    for key, r in new.items():
        o = old.get(key)
        if o is None:
            out.append(Event(t, dev, EventKind.ROUTE_ANNOUNCED, r.dst, f"{dev} learned {r.dst}"
                             + (f" (table {r.table})" if r.table != "main" else "")
                             + f" via {_hops(len(r.nexthops))}",
                             table=r.table, prefix=r.dst, before="none", after=_hops(len(r.nexthops))))
            continue
        if o.nexthops == r.nexthops:
            continue
        out += _diff_nexthops(dev, t, r, o.nexthops, r.nexthops)
    return out


def _diff_nexthops(dev: str, t: int, r: Route, a: tuple[Nexthop, ...], b: tuple[Nexthop, ...]) -> list[Event]:
    def key(nh: Nexthop) -> tuple:
        return (nh.gateway, nh.dev)

    old = {key(n): n for n in a}
    new = {key(n): n for n in b}
    # Each event is one step, removals first then additions, its width that step's:
    # 4 next hops, one replaced, read "removed (4→3-way)" then "added (3→4-way)".
    width = len(old)
    out: list[Event] = []
    common = dict(table=r.table, prefix=r.dst)
    for k, nh in old.items():
        if k not in new:
            width -= 1
            out.append(Event(t, dev, EventKind.NEXTHOP_REMOVED, r.dst,
                             f"{dev} {r.dst}: next hop {nexthop_label(nh)} removed ({width + 1}→{width}-way)",
                             nexthop=nh, before=str(width + 1), after=str(width), **common))
    for k, nh in new.items():
        o = old.get(k)
        if o is None:
            width += 1
            out.append(Event(t, dev, EventKind.NEXTHOP_ADDED, r.dst,
                             f"{dev} {r.dst}: next hop {nexthop_label(nh)} added ({width - 1}→{width}-way)",
                             nexthop=nh, before=str(width - 1), after=str(width), **common))
            continue
        if o.weight != nh.weight:
            out.append(Event(t, dev, EventKind.WEIGHT_CHANGED, r.dst,
                             f"{dev} {r.dst}: {nexthop_label(nh)} weight {o.weight}→{nh.weight}",
                             nexthop=nh, before=str(o.weight), after=str(nh.weight), **common))
        if set(o.flags) != set(nh.flags):
            gained = sorted(set(nh.flags) - set(o.flags))
            lost = sorted(set(o.flags) - set(nh.flags))
            what = ", ".join([f"+{f}" for f in gained] + [f"-{f}" for f in lost])
            out.append(Event(t, dev, EventKind.NEXTHOP_FLAGS_CHANGED, r.dst,
                             f"{dev} {r.dst}: {nexthop_label(nh)} {what}",
                             nexthop=nh, before=" ".join(o.flags) or "-", after=" ".join(nh.flags) or "-", **common))
    return out


def _diff_groups(dev: str, t: int, a: Iterable[NexthopGroup], b: Iterable[NexthopGroup]) -> list[Event]:
    old = {g.id: g for g in a}
    out: list[Event] = []
    for g in b:
        o = old.get(g.id)
        if o is None:
            continue
        if o.members != g.members:
            fmt = lambda grp: "/".join(f"{m.id}" + (f",{m.weight}" if m.weight != 1 else "") for m in grp.members)
            out.append(Event(t, dev, EventKind.GROUP_CHANGED, f"group {g.id}",
                             f"{dev} nexthop group {g.id}: members {fmt(o)} → {fmt(g)}", before=fmt(o), after=fmt(g)))
        if o.bucket_table and g.bucket_table:
            before = {bk.index: bk.nhid for bk in o.bucket_table}
            moved = [bk.index for bk in g.bucket_table if before.get(bk.index, bk.nhid) != bk.nhid]
            if moved:
                out.append(Event(t, dev, EventKind.BUCKETS_CHANGED, f"group {g.id}",
                                 f"{dev} group {g.id}: {len(moved)} of {len(g.bucket_table)} buckets moved",
                                 before=str(len(g.bucket_table)), after=",".join(map(str, moved))))
    return out


RIB_EVENTS_MAX = 16


def _diff_rib_fib(dev: str, t: int, prev: DeviceState, cur: DeviceState) -> list[Event]:
    """What the two states *report* (``model.rib.watch``: seen in two consecutive polls), not what they see:
    the ~100 ms disagreement of every restore, seen in one poll, is no event, nor is its end."""
    old = prev.rib_watch.raised if prev.rib_watch is not None else {}
    new = cur.rib_watch.raised if cur.rib_watch is not None else {}
    out: list[Event] = []
    for dst, c in new.items():
        o = old.get(dst)
        if o is not None and o == c:
            continue
        out.append(Event(t, dev, EventKind.RIB_FIB_MISMATCH, dst, f"{dev} {dst}: RIB/FIB mismatch: {c.text}",
                         table="main", prefix=dst, before=o.text if o is not None else "agree", after=c.text))
    for dst, o in old.items():
        if dst not in new:
            c = rib_fib(cur, dst)
            now = c.text if c is not None else "no BGP route"
            out.append(Event(t, dev, EventKind.RIB_FIB_AGREE, dst, f"{dev} {dst}: RIB and FIB agree again: {now}",
                             table="main", prefix=dst, before=o.text, after=now))
    if len(out) > RIB_EVENTS_MAX:
        rest = out[RIB_EVENTS_MAX - 1:]
        n_bad = sum(1 for e in rest if e.kind is EventKind.RIB_FIB_MISMATCH)
        out = out[:RIB_EVENTS_MAX - 1]
        out.append(Event(t, dev, EventKind.RIB_FIB_MISMATCH, f"{len(rest)} prefixes",
                         f"{dev}: {len(rest)} more prefixes changed RIB/FIB agreement ({n_bad} now disagree, "
                         f"{len(new)} in all)", before=str(len(old)), after=str(len(new))))
    return out
