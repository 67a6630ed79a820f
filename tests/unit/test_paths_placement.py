"""One device's placement rules: LPM, metrics, dead/linkdown, weights, nhid objects and groups, drops, local."""

from __future__ import annotations

import numpy as np
import pytest

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import linux_multipath_hash
from anycast_tui.model.mapping import hash_threshold
from anycast_tui.model.placement import Outcome, PlacementError, place
from anycast_tui.model.types import (Address, Bucket, Device, DeviceState, Flow, GroupMember, HashSettings, Interface,
                                     Nexthop, NexthopGroup, NexthopObject, NexthopTable, Route)

HS = HashSettings(policy=1, seed=4242)
GW = [f"198.18.0.{2 * i + 1}" for i in range(4)]


def flows(n: int = 2000, dst: str = "192.0.2.53") -> FlowArray:
    rng = np.random.default_rng(11)
    return FlowArray.random(n, rng=rng, dst=dst)


def dev(*routes: Route, hs: HashSettings = HS, nexthops: NexthopTable = NexthopTable(),
        interfaces: tuple[Interface, ...] = ()) -> DeviceState:
    return DeviceState(Device("r1"), routes=routes, nexthops=nexthops, interfaces=interfaces, hash=hs)


def mp(dst: str = "192.0.2.53/32", weights=(1, 1, 1, 1), flags=((),) * 4, **kw) -> Route:
    return Route(dst, 4, nexthops=tuple(Nexthop(GW[i], f"eth{i}", w, f) for i, (w, f) in
                                        enumerate(zip(weights, flags))), **kw)


def expected(f: FlowArray, weights, usable=None) -> np.ndarray:
    h = linux_multipath_hash(f, policy=HS.policy, seed=HS.seed)
    return np.array(GW, dtype=object)[hash_threshold(h, weights, usable)]


def test_plain_multipath_is_hash_threshold_in_route_order_with_weights():
    f = flows()
    p = place(dev(mp(weights=(1, 2, 3, 4))), f)
    assert list(p.gateway()) == list(expected(f, [1, 2, 3, 4]))
    counts = {g: int((p.gateway() == g).sum()) for g in GW}
    assert counts[GW[0]] < counts[GW[1]] < counts[GW[2]] < counts[GW[3]]
    assert {x.value for x in p.placements()} == {"exact"}


def test_dead_is_never_used_linkdown_only_with_ignore_routes_with_linkdown():
    f = flows()
    flags = ((), ("dead",), ("linkdown",), ())
    p = place(dev(mp(flags=flags)), f)
    assert list(p.gateway()) == list(expected(f, [1] * 4, [True, False, True, True]))
    assert GW[1] not in set(p.gateway()) and GW[2] in set(p.gateway())
    hs2 = HashSettings(policy=1, seed=HS.seed, ignore_routes_with_linkdown=True)
    p2 = place(dev(mp(flags=flags), hs=hs2), f)
    assert set(p2.gateway()) == {GW[0], GW[3]}


def test_longest_prefix_then_lowest_metric_and_dead_routes_skipped():
    f = FlowArray.from_flows([Flow(6, "203.0.113.1", 1000, d, 80) for d in
                              ("192.0.2.53", "192.0.2.54", "192.0.2.200", "198.51.100.1")])
    routes = (
        Route("0.0.0.0/0", 4, nexthops=(Nexthop(GW[3], "eth3"),)),
        Route("192.0.2.0/24", 4, metric=20, nexthops=(Nexthop(GW[2], "eth2"),)),
        Route("192.0.2.0/24", 4, metric=10, nexthops=(Nexthop(GW[1], "eth1"),)),
        Route("192.0.2.52/31", 4, nexthops=(Nexthop(GW[0], "eth0"),)),
        Route("192.0.2.54/32", 4, nexthops=(Nexthop(GW[0], "eth0", flags=("dead",)),)),
    )
    p = place(dev(*routes), f)
    assert list(p.gateway()) == [GW[0], GW[1], GW[1], GW[3]]  # .54: dead /32 skipped, /24 metric 10
    assert p.choices[p.choice[0]].route == "192.0.2.52/31"


def test_blackhole_unreachable_local_and_no_route():
    f = FlowArray.from_flows([Flow(17, "203.0.113.1", 1000, d, 53) for d in
                              ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "198.51.100.9")])
    routes = (Route("192.0.2.1/32", 4, type="blackhole"), Route("192.0.2.2/32", 4, type="unreachable"),
              Route("192.0.2.3/32", 4, type="local", table="local"))
    itf = Interface("lo", addresses=(Address(4, "192.0.2.4", 32),))
    p = place(dev(*routes, interfaces=(itf,)), f)
    assert list(p.outcome()) == [Outcome.DROP, Outcome.DROP, Outcome.LOCAL, Outcome.LOCAL, Outcome.NO_ROUTE]
    assert [p.choices[c].label for c in p.choice] == ["blackhole", "unreachable", "local", "local", "no route"]


def test_local_table_wins_over_a_more_specific_main_route():
    f = FlowArray.from_flows([Flow(6, "203.0.113.1", 1, "192.0.2.53", 80)])
    itf = Interface("lo", addresses=(Address(4, "192.0.2.53", 32),))
    p = place(dev(mp(), interfaces=(itf,)), f)
    assert p.outcome()[0] == Outcome.LOCAL


def _objects() -> tuple[NexthopObject, ...]:
    return tuple(NexthopObject(i + 1, GW[i], f"eth{i}") for i in range(4))


def test_nhid_object_mpath_group_and_blackhole_object():
    groups = (NexthopGroup(10, tuple(GroupMember(i + 1, w) for i, w in enumerate((1, 1, 2, 1)))),)
    objs = _objects() + (NexthopObject(99, blackhole=True),)
    table = NexthopTable(objs, groups)
    f = flows()
    p = place(dev(Route("192.0.2.53/32", 4, nhid=10), nexthops=table), f)
    assert list(p.gateway()) == list(expected(f, [1, 1, 2, 1]))
    assert {p.choices[c].nhid for c in np.unique(p.choice)} == {1, 2, 3, 4}
    p1 = place(dev(Route("192.0.2.53/32", 4, nhid=3), nexthops=table), f)
    assert set(p1.gateway()) == {GW[2]} and {x.value for x in p1.placements()} == {"exact"}
    p2 = place(dev(Route("192.0.2.53/32", 4, nhid=99), nexthops=table), f)
    assert set(p2.outcome()) == {Outcome.DROP}


def test_resilient_group_uses_the_devices_bucket_table():
    nb = 8
    assign = [4, 4, 1, 2, 3, 1, 2, 3]  # deliberately not the fresh fill
    g = NexthopGroup(10, tuple(GroupMember(i + 1) for i in range(4)), type="resilient", buckets=nb,
                     bucket_table=tuple(Bucket(10, i, nh) for i, nh in enumerate(assign)))
    f = flows()
    p = place(dev(Route("192.0.2.53/32", 4, nhid=10), nexthops=NexthopTable(_objects(), (g,))), f)
    h = linux_multipath_hash(f, policy=HS.policy, seed=HS.seed)
    want = np.array([GW[assign[b] - 1] for b in h % nb], dtype=object)
    assert list(p.gateway()) == list(want)
    assert {x.value for x in p.placements()} == {"exact"}
    # no bucket table collected: simulated, and said so
    g2 = NexthopGroup(10, g.members, type="resilient", buckets=nb)
    p2 = place(dev(Route("192.0.2.53/32", 4, nhid=10), nexthops=NexthopTable(_objects(), (g2,))), f)
    assert {x.value for x in p2.placements()} == {"approximate"}
    assert "simulated" in p2.reasons[int(p2.reason[0])]
    assert len(set(p2.gateway())) == 4


def test_missing_group_is_an_error():
    with pytest.raises(PlacementError, match="nhid 10"):
        place(dev(Route("192.0.2.53/32", 4, nhid=10)), flows(5))


def test_seed_zero_is_unknown_but_single_paths_stay_exact():
    f = flows(50)
    p = place(dev(mp(), Route("198.51.100.0/24", 4, nexthops=(Nexthop(GW[0], "eth0"),)),
                  hs=HashSettings(policy=1, seed=0)), f)
    assert {x.value for x in p.placements()} == {"unknown"}
    assert "hash seed is 0 (random per boot)" in p.reasons[int(p.reason[0])]
    p2 = place(dev(Route("192.0.2.0/24", 4, nexthops=(Nexthop(GW[0], "eth0"),)), hs=HashSettings(seed=0)), f)
    assert {x.value for x in p2.placements()} == {"exact"}
