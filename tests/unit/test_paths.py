"""Multi-hop paths through a hand-built 2-spine × 4-leaf fabric: servers reached, loops and black holes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from anycast_tui.model.flows import flows_to_array, synthetic_flows
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import linux_multipath_hash_one
from anycast_tui.model.mapping import hash_threshold_one
from anycast_tui.model.paths import PathOutcome, trace
from anycast_tui.model.types import (Address, Device, DeviceState, FabricSnapshot, Flow, HashSettings, Interface,
                                     Nexthop, Role, Route)

SERVICE = "192.0.2.53"
HS = HashSettings(policy=1, seed=1234)


def _itf(name: str, *addrs: str) -> Interface:
    return Interface(name, flags=("UP", "LOWER_UP"), operstate="UP",
                     addresses=tuple(Address(4, a.split("/")[0], int(a.split("/")[1])) for a in addrs))


def clos(spines: int = 2, leaves: int = 4, servers_per_leaf: int = 1, hs: HashSettings = HS) -> FabricSnapshot:
    """spineI —(198.18.I.2J/31)— leafJ —(198.19.J.2K/31)— srvJK; every server holds 192.0.2.53 on lo."""
    devices: dict[str, DeviceState] = {}
    for i in range(1, spines + 1):
        itfs = [_itf("lo", f"198.18.200.{i}/32")]
        nhs = []
        for j in range(1, leaves + 1):
            itfs.append(_itf(f"swp{j}", f"198.18.{i}.{2 * j}/31"))
            nhs.append(Nexthop(gateway=f"198.18.{i}.{2 * j + 1}", dev=f"swp{j}"))
        routes = (Route(f"{SERVICE}/32", 4, protocol="bgp", metric=20, nexthops=tuple(nhs)),
                  Route("203.0.113.0/24", 4, type="blackhole"))
        name = f"spine{i:02d}"
        devices[name] = DeviceState(Device(name, Role.SPINE), routes=routes, interfaces=tuple(itfs), hash=hs)
    for j in range(1, leaves + 1):
        itfs = [_itf(f"up{i}", f"198.18.{i}.{2 * j + 1}/31") for i in range(1, spines + 1)]
        nhs = []
        for k in range(1, servers_per_leaf + 1):
            itfs.append(_itf(f"srv{k}", f"198.19.{j}.{2 * k}/31"))
            nhs.append(Nexthop(gateway=f"198.19.{j}.{2 * k + 1}", dev=f"srv{k}"))
            sname = f"server{j}{k}"
            devices[sname] = DeviceState(Device(sname, Role.SERVER), routes=(),
                                         interfaces=(_itf("lo", f"{SERVICE}/32"), _itf("eth0", f"198.19.{j}.{2 * k + 1}/31")),
                                         hash=hs)
        name = f"leaf{j:02d}"
        devices[name] = DeviceState(Device(name, Role.LEAF),
                                    routes=(Route(f"{SERVICE}/32", 4, protocol="bgp", nexthops=tuple(nhs)),),
                                    interfaces=tuple(itfs), hash=hs)
    return FabricSnapshot(0, devices, (f"{SERVICE}/32",))


def _expected_leaf(flow: Flow, leaves: int = 4) -> str:
    h = linux_multipath_hash_one(flow, policy=HS.policy, seed=HS.seed)
    return f"leaf{hash_threshold_one(h, [1] * leaves) + 1:02d}"


def test_flows_reach_the_server_behind_the_leaf_the_spine_hashed_to():
    flows = synthetic_flows(50, 400, seed=7)
    res = trace(clos(), flows, "spine01")
    assert (res.outcome == PathOutcome.DELIVERED).all()
    finals = res.final_device()
    for i in range(0, 400, 13):
        leaf = _expected_leaf(flows.flow(i))
        assert res.path(i) == ["spine01", leaf, f"server{leaf[-1]}1"]
        assert finals[i] == f"server{leaf[-1]}1"
    # every leaf gets some flows: the spread is real
    assert len(set(finals)) == 4


def test_per_flow_ingress_and_second_stage_multipath():
    snap = clos(servers_per_leaf=2)
    flows = synthetic_flows(20, 300, seed=3)
    ingress = np.where(np.arange(300) % 2 == 0, "spine01", "spine02").astype(object)
    res = trace(snap, flows, ingress)
    assert (res.outcome == PathOutcome.DELIVERED).all()
    assert {res.path(i)[0] for i in range(300)} == {"spine01", "spine02"}
    # same hash and seed on spines and leaves: the leaf only sees hashes of its own
    # quarter of the range, so it always picks the same server (hash polarisation)
    assert len(set(res.final_device())) == 4
    devices = {n: (replace(s, hash=HashSettings(policy=1, seed=99)) if n.startswith("leaf") else s)
               for n, s in snap.devices.items()}
    res2 = trace(replace(snap, devices=devices), flows, ingress)
    assert len(set(res2.final_device())) == 8


def test_unknown_ingress_is_an_outcome():
    res = trace(clos(), synthetic_flows(5, 10, seed=1), "nosuch")
    assert (res.outcome == PathOutcome.NO_DEVICE).all()


def test_black_hole_and_no_route_are_reported():
    snap = clos()
    leaf = snap.devices["leaf02"]
    devices = dict(snap.devices)
    devices["leaf02"] = replace(leaf, routes=(Route(f"{SERVICE}/32", 4, type="blackhole"),))
    flows = synthetic_flows(50, 400, seed=7)
    res = trace(replace(snap, devices=devices), flows, "spine01")
    via2 = np.array([p[1] == "leaf02" for p in (res.path(i) for i in range(400))])
    assert via2.any()
    assert (res.outcome[via2] == PathOutcome.DROPPED).all()
    assert set(res.final_labels()[via2]) == {"leaf02: blackhole"}
    assert (res.outcome[~via2] == PathOutcome.DELIVERED).all()
    # a destination nobody routes
    other = flows_to_array([Flow(6, "203.0.113.9", 1000, "198.51.100.1", 80)])[0]
    res2 = trace(snap, other, "spine01")
    assert res2.outcome[0] == PathOutcome.NO_ROUTE and res2.final_labels()[0] == "spine01: no route"


def test_loop_between_leaf_and_spine_is_cut_at_the_hop_limit():
    snap = clos()
    devices = dict(snap.devices)
    # leaf03 sends the service back up to spine01, which hashes some flows to leaf03 again
    devices["leaf03"] = replace(snap.devices["leaf03"],
                                routes=(Route(f"{SERVICE}/32", 4, nexthops=(Nexthop("198.18.1.6", "up1"),)),))
    flows = synthetic_flows(50, 400, seed=7)
    res = trace(replace(snap, devices=devices), flows, "spine01")
    via3 = np.array([res.path(i)[1] == "leaf03" for i in range(400)])
    assert via3.any()
    assert (res.outcome[via3] == PathOutcome.LOOP).all()
    assert (res.outcome[~via3] == PathOutcome.DELIVERED).all()


def test_gateway_outside_the_fabric_exits():
    snap = clos()
    devices = dict(snap.devices)
    devices["spine01"] = replace(snap.devices["spine01"], routes=(
        Route("0.0.0.0/0", 4, nexthops=(Nexthop("198.18.99.1", "wan0"),)),))
    flows = synthetic_flows(5, 10, seed=1)
    res = trace(replace(snap, devices=devices), flows, "spine01")
    assert (res.outcome == PathOutcome.EXITED).all()
    assert set(res.final_labels()) == {"spine01 via 198.18.99.1 dev wan0"}


def test_seed_zero_anywhere_on_the_path_makes_the_path_unknown():
    snap = clos()
    devices = dict(snap.devices)
    devices["spine02"] = replace(snap.devices["spine02"], hash=HashSettings(policy=1, seed=0))
    flows = synthetic_flows(5, 20, seed=1)
    r1 = trace(replace(snap, devices=devices), flows, "spine01")
    r2 = trace(replace(snap, devices=devices), flows, "spine02")
    assert {p.value for p in (r1.placement_of(i) for i in range(20))} == {"exact"}
    assert {p.value for p in (r2.placement_of(i) for i in range(20))} == {"unknown"}
    assert "hash seed is 0" in r2.reasons[int(r2.reason[0])]


def test_ipv6_flows_follow_ipv6_routes():
    snap = clos()
    devices = dict(snap.devices)
    sp = snap.devices["spine01"]
    devices["spine01"] = replace(sp, routes=sp.routes + (
        Route("2001:db8:53::/64", 6, nexthops=(Nexthop("198.18.1.3", "swp1"), Nexthop("198.18.1.5", "swp2"))),))
    for name in ("leaf01", "leaf02"):
        lf = snap.devices[name]
        devices[name] = replace(lf, routes=lf.routes + (Route("2001:db8:53::/64", 6, type="unreachable"),))
    # policy6 is 0 (L3): one src/dst pair takes one path whatever the ports ...
    same = FlowArray.from_flows([Flow(6, "2001:db8:cafe::1", 1000 + i, "2001:db8:53::53", 443) for i in range(50)])
    assert len(set(trace(replace(snap, devices=devices), same, "spine01").final_labels())) == 1
    # ... many sources spread over both next hops
    flows = FlowArray.from_flows([Flow(6, f"2001:db8:cafe::{i + 1:x}", 1000, "2001:db8:53::53", 443) for i in range(50)])
    res = trace(replace(snap, devices=devices), flows, "spine01")
    assert set(res.final_labels()) == {"leaf01: unreachable", "leaf02: unreachable"}
