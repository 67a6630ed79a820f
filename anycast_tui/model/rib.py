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
"""

from __future__ import annotations

from dataclasses import dataclass

from anycast_tui.model.types import DeviceState, Rib, RibRoute, Route


@dataclass(frozen=True, slots=True)
class RibFib:
    prefix: str
    bgp: int  # paths BGP uses
    zebra: int  # next hops zebra installed
    kernel: int  # next hops of the kernel's route (0: none)
    recursive: bool = False

    @property
    def agree(self) -> bool:
        return self.kernel == self.zebra and (self.recursive or self.bgp == self.kernel)

    @property
    def text(self) -> str:
        """``BGP: 4 paths, FIB: 3`` (``, zebra: 4`` when zebra's count is neither)."""
        out = f"BGP: {self.bgp} path{'s' if self.bgp != 1 else ''}, FIB: {self.kernel}"
        if self.zebra != self.kernel and self.zebra != self.bgp:
            out += f", zebra: {self.zebra}"
        return out


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
    for r in state.routes:
        if r.dst == prefix and r.table == "main" and r.type == "unicast" and \
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
