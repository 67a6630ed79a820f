"""FRR's RIB next to the kernel FIB: how many paths BGP selected, how many next hops the kernel forwards with.

For a prefix of the main table whose selected FRR entry is BGP:

* ``bgp``: the paths BGP uses (best + multipath, from ``show bgp``), else the
  selected RIB entry's paths (a recursive next hop counts once, not its resolvers);
* ``zebra``: next hops zebra says it installed (``fib`` flags);
* ``kernel``: next hops of the kernel's route (``ip route``: its nexthop group's
  members, or its multipath next hops; 0 when the kernel has no route).

They *disagree* when the kernel's count differs from zebra's, or when BGP's
differs from the kernel's for a prefix without recursive next hops (with
recursion one BGP path may legitimately resolve to several next hops).  This
is what an on-call engineer asks after a change: "BGP has 4 paths but the
FIB forwards over 3".  Other tables (VRFs) are left out: FRR names them by
VRF, the kernel by table id.

Every restore shows one for ~100 ms (BGP has the path, the kernel not yet), so
a disagreement is *reported* only once it was seen, the same, in two
consecutive polls of the device, and stays reported until RIB and FIB agree:
``watch`` carries that from one poll's state to the next (``DeviceState.rib_watch``,
set by the collector); ``model.events`` diffs what two states report.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from anycast_tui.model.types import (DeviceState, Rib, RibFib, RibRoute, RibWatch,  # RibFib, RibWatch: named here too
                                     Route, select_routes)


def kernel_width(state: DeviceState, route: Route) -> int:
    if route.nhid is not None:
        g = state.group(route.nhid)
        return len(g.members) if g is not None else 1
    return len(route.nexthops)


def _kernel_routes(state: DeviceState) -> dict[str, Route]:
    out: dict[str, Route] = {}
    for r in state.routes:
        if r.table == "main" and r.type == "unicast":
            best = out.get(r.dst)
            if best is None or (r.metric or 0) < (best.metric or 0):
                out[r.dst] = r
    return out


def _selected_bgp(rib: Rib) -> dict[str, RibRoute]:
    return {r.dst: r for r in rib.routes if r.selected and r.protocol == "bgp" and r.table == "main"}


def _bgp_paths(rib: Rib) -> dict[str, int]:
    return {b.prefix: len(b.multipath) for b in rib.bgp if b.vrf == "default" and b.multipath}


def _compare(state: DeviceState, entry: RibRoute, bgp: dict[str, int], kernel: dict[str, Route]) -> RibFib:
    k = kernel.get(entry.dst)
    return RibFib(entry.dst, bgp.get(entry.dst, entry.paths), entry.fib_nexthops,
                  kernel_width(state, k) if k is not None else 0,
                  any(nh.recursive for nh in entry.nexthops))


def rib_fib(state: DeviceState, prefix: str) -> RibFib | None:
    """BGP's paths and the FIB's next hops for ``prefix`` on this device; None without an FRR RIB or BGP route.

    One pass over the device's records for the one prefix (the UI asks it per device and prefix)."""
    if state.rib is None:
        return None
    entry = next((r for r in state.rib.routes if r.dst == prefix and r.selected and r.protocol == "bgp"
                  and r.table == "main"), None)
    if entry is None:
        return None
    kernel: dict[str, Route] = {}
    for r in select_routes(state.routes, (prefix,), lambda k: k[0] == "main"):
        if r.type == "unicast" and \
                (prefix not in kernel or (r.metric or 0) < (kernel[prefix].metric or 0)):
            kernel[prefix] = r
    bgp = {b.prefix: len(b.multipath) for b in state.rib.bgp if b.prefix == prefix and b.vrf == "default"
           and b.multipath}
    return _compare(state, entry, bgp, kernel)


def disagreements(state: DeviceState) -> dict[str, RibFib]:
    """Every BGP prefix of the main table whose RIB and FIB disagree (empty without an FRR RIB)."""
    if state.rib is None:
        return {}
    bgp, kernel = _bgp_paths(state.rib), _kernel_routes(state)
    out = {}
    for dst, entry in _selected_bgp(state.rib).items():
        c = _compare(state, entry, bgp, kernel)
        if not c.agree:
            out[dst] = c
    return out


_NOTHING = RibWatch(MappingProxyType({}), MappingProxyType({}))


def watch(prev: DeviceState | None, cur: DeviceState) -> DeviceState:
    """``cur`` with its ``rib_watch``, from the state of the device's previous poll.

    A disagreement is reported once seen identically in ``prev`` and ``cur`` (a
    changed one is reported anew the same way; until then the reported one
    stands); a reported one goes when the prefix agrees or has no BGP route.  A
    poll without FRR data (vtysh failed) sees nothing and reports what was
    reported.  Unchanged records (the collector hands back the same objects)
    cost no recount."""
    pw = prev.rib_watch if prev is not None and prev.rib_watch is not None else _NOTHING
    if cur.rib is None:
        return dataclasses.replace(cur, rib_watch=RibWatch(MappingProxyType({}), pw.raised)) if pw.raised else cur
    same = prev is not None and prev.rib is cur.rib and prev.routes is cur.routes and prev.nexthops is cur.nexthops
    if same and prev.rib_watch is not None:  # type: ignore[union-attr]
        seen = pw.seen
        if pw.raised == seen:  # settled: nothing to carry forward
            return cur if cur.rib_watch is pw else dataclasses.replace(cur, rib_watch=pw)
    else:
        seen = MappingProxyType(disagreements(cur))
    raised = {}
    for dst, c in seen.items():
        if pw.seen.get(dst) == c:
            raised[dst] = c
        elif dst in pw.raised:
            raised[dst] = pw.raised[dst]
    return dataclasses.replace(cur, rib_watch=RibWatch(seen, MappingProxyType(raised)))
