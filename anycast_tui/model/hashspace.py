"""The hash space of one ECMP group as cells, for drawing a bucket bar (pure, no UI).

A *space* splits a device's group for a prefix into cells, each owned by a
next hop label (``gateway`` or ``dev``).  Resilient groups: one cell per
bucket of the kernel's bucket table (idle/busy from the group's idle timer).
Hash-threshold (plain multipath routes and ``mpath`` groups): the hash space
divided among the usable next hops by weight, as the kernel does (each
next hop holds ``weight / total`` of it, in order), sampled at ``cells``
points.  :func:`moved_cells` marks the cells whose owner changed between two
spaces of the same size; :func:`cached_space` is :func:`group_space` memoised per
state (``model.memo``).
"""

from __future__ import annotations

from dataclasses import dataclass

from anycast_tui.model.memo import routes_to, state_memo
from anycast_tui.model.types import DeviceState, Nexthop, Route

DEAD = frozenset({"dead", "linkdown"})


@dataclass(frozen=True, slots=True)
class Share:
    """One next hop's part of the space: ``share`` held now vs ``target`` (its weight's part)."""

    label: str
    weight: int
    usable: bool
    target: float  # 0..1
    share: float  # 0..1


@dataclass(frozen=True, slots=True)
class Space:
    kind: str  # "resilient" | "hash-threshold"
    owners: tuple[str | None, ...]  # per cell: next hop label, None when unowned
    members: tuple[Share, ...]
    busy: tuple[bool, ...] = ()  # resilient only: per cell, used within the idle timer


def label(nh: Nexthop) -> str:
    return nh.gateway or nh.dev or "?"


_SPACES = state_memo(2048)


def _route(state: DeviceState, prefix: str) -> Route | None:
    best: Route | None = None
    for r in routes_to(state, prefix):
        if r.table != "local" and r.type == "unicast":
            if best is None or (r.metric or 0) < (best.metric or 0):
                best = r
    return best


def space_inputs(state: DeviceState, prefix: str) -> tuple | None:
    """What :func:`group_space` of ``state`` for ``prefix`` depends on (route, group, member next hops):
    equal inputs give equal spaces, so a view can skip comparing spaces of unchanged groups."""
    route = _route(state, prefix)
    if route is None:
        return None
    group = state.group(route.nhid) if route.nhid is not None else None
    if group is None:
        return (route, None, ())
    objects = {o.id: o for o in state.nexthops.objects}
    return (route, group, tuple(objects.get(m.id) for m in group.members))


def has_space(state: DeviceState, prefix: str) -> bool:
    """``group_space(state, prefix)`` is not None (cheap: no cells computed)."""
    route = _route(state, prefix)
    if route is None:
        return False
    if route.nhid is not None and state.group(route.nhid) is not None:
        return True
    return len(route.nexthops) > 1


def is_resilient(state: DeviceState, prefix: str) -> bool:
    """The group is resilient with a bucket table (its space has busy/idle cells)."""
    route = _route(state, prefix)
    group = state.group(route.nhid) if route is not None and route.nhid is not None else None
    return group is not None and group.type == "resilient" and bool(group.bucket_table)


def cached_space(state: DeviceState, prefix: str, cells: int = 64) -> Space | None:
    """:func:`group_space`, memoised per state object (a redraw or another event's marks reuse it)."""
    return _SPACES.get(state, (prefix, cells), lambda: group_space(state, prefix, cells))


def _targets(hops: list[tuple[str, int, bool]]) -> dict[str, float]:
    total = sum(w for _, w, ok in hops if ok)
    return {lb: (w / total if ok and total else 0.0) for lb, w, ok in hops}


def group_space(state: DeviceState, prefix: str, cells: int = 64) -> Space | None:
    """The space of ``state``'s route to ``prefix``; None without a route (or a single next hop)."""
    route = _route(state, prefix)
    if route is None:
        return None
    group = state.group(route.nhid) if route.nhid is not None else None
    if group is None:
        hops = [(label(nh), nh.weight, not (set(nh.flags) & DEAD)) for nh in route.nexthops]
        return _threshold(hops, cells) if len(hops) > 1 else None
    objects = {o.id: o for o in state.nexthops.objects}

    def name(nhid: int) -> str:
        o = objects.get(nhid)
        return (o.gateway or o.dev or f"id {nhid}") if o is not None else f"id {nhid}"

    def ok(nhid: int) -> bool:
        o = objects.get(nhid)
        return o is not None and not (set(o.flags) & DEAD)

    hops = [(name(m.id), m.weight, ok(m.id)) for m in group.members]
    if group.type != "resilient" or not group.bucket_table:
        return _threshold(hops, cells)
    table = sorted(group.bucket_table, key=lambda b: b.index)
    owners = tuple(name(b.nhid) for b in table)
    idle = group.idle_timer if group.idle_timer is not None else 120
    busy = tuple(b.idle_time < idle for b in table)
    target = _targets(hops)
    n = len(owners)
    members = tuple(Share(lb, w, u, target[lb], sum(1 for o in owners if o == lb) / n) for lb, w, u in hops)
    return Space("resilient", owners, members, busy)


def _threshold(hops: list[tuple[str, int, bool]], cells: int) -> Space:
    target = _targets(hops)
    live = [(lb, target[lb]) for lb, _, ok in hops if ok]
    owners: list[str | None] = []
    for k in range(cells):
        x = (k + 0.5) / cells
        acc = 0.0
        owner = None
        for lb, t in live:
            acc += t
            if x < acc:
                owner = lb
                break
        if owner is None and live:
            owner = live[-1][0]
        owners.append(owner)
    members = tuple(Share(lb, w, ok, target[lb], target[lb]) for lb, w, ok in hops)
    return Space("hash-threshold", tuple(owners), members)


def moved_cells(before: Space | None, after: Space | None) -> tuple[bool, ...]:
    """Per cell of ``after``: its owner differs from ``before``'s (all False when either is missing
    or their sizes differ)."""
    if after is None:
        return ()
    if before is None or len(before.owners) != len(after.owners):
        return (False,) * len(after.owners)
    return tuple(a != b for a, b in zip(before.owners, after.owners))


def sample(cells: tuple, width: int) -> tuple:
    """``cells`` resized to ``width`` items (nearest cell)."""
    n = len(cells)
    if n == 0 or width <= 0:
        return ()
    return tuple(cells[min(n - 1, (i * n) // width)] for i in range(width))
