"""FRR RIB next to the kernel FIB: parsing (flags kept), agreement, events, codec, recordings; configured flows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model import events
from anycast_tui.model.flows import FlowMeta, flows_to_array
from anycast_tui.model.hashing import FlowArray
from anycast_tui.model.impact import impact
from anycast_tui.model.rib import RibFib, disagreements, rib_fib
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import (BgpMultipath, Device, DeviceState, EventKind, Flow, Health,
                                     HealthStatus, Nexthop, Rib, RibNexthop, RibRoute, Role, Route)
from anycast_tui.parse.frr_rib import parse_rib_json, rib_from_outputs
from anycast_tui.record.codec import decode, encode
from anycast_tui.record.store import Recorder, Recording
from anycast_tui.session import ImpactTracker
from anycast_tui.ui.view import impact_text

ANY = "192.0.2.53/32"
RIB_JSON = {
    ANY: [
        {"prefix": ANY, "protocol": "bgp", "selected": True, "installed": True, "distance": 20, "metric": 0,
         "table": 254, "nexthops": [
             {"fib": True, "ip": "198.18.1.2", "interfaceName": "swp1", "active": True, "weight": 1},
             {"fib": True, "ip": "198.18.2.2", "interfaceName": "swp2", "active": True, "weight": 1},
             {"ip": "198.18.3.2", "interfaceName": "swp3", "weight": 1}]},
        {"prefix": ANY, "protocol": "ospf", "distance": 110, "metric": 20, "table": 254,
         "nexthops": [{"ip": "198.18.9.2", "interfaceName": "swp9", "active": True}]},
    ],
    "192.0.2.54/32": [
        {"protocol": "bgp", "selected": True, "installed": True, "metric": 0, "nexthops": [
            {"ip": "198.51.100.1", "active": True, "recursive": True},
            {"fib": True, "ip": "198.18.1.2", "interfaceName": "swp1", "resolver": True, "onLink": True},
            {"fib": True, "ip": "198.18.2.2", "interfaceName": "swp2", "resolver": True}]},
    ],
    "192.0.2.60/32": [{"protocol": "static", "selected": True, "installed": True, "nexthops": [
        {"fib": True, "unreachable": True, "reject": True}]}],
}


def _state(rib: Rib, routes: tuple[Route, ...]) -> DeviceState:
    return DeviceState(Device("leaf01", Role.LEAF, "frr"), routes=routes, collected_at_ms=1,
                       health=Health(HealthStatus.OK), rib=rib)


def _kernel(dst: str, *gws: str) -> Route:
    return Route(dst, 4, protocol="bgp", metric=20,
                 nexthops=tuple(Nexthop(gw, f"swp{i + 1}") for i, gw in enumerate(gws)))


def test_rib_keeps_every_entry_and_zebra_flags():
    routes = parse_rib_json(json.dumps(RIB_JSON))
    assert [(r.dst, r.protocol, r.selected, r.installed, r.distance) for r in routes] == [
        (ANY, "bgp", True, True, 20), (ANY, "ospf", False, False, 110), ("192.0.2.54/32", "bgp", True, True, None),
        ("192.0.2.60/32", "static", True, True, None)]
    bgp = routes[0]
    assert [(nh.gateway, nh.fib, nh.active) for nh in bgp.nexthops] == [
        ("198.18.1.2", True, True), ("198.18.2.2", True, True), ("198.18.3.2", False, False)]
    assert (bgp.paths, bgp.fib_nexthops) == (3, 2)
    rec = routes[2]
    assert [(nh.gateway, nh.recursive, nh.resolves, nh.fib, nh.flags) for nh in rec.nexthops] == [
        ("198.51.100.1", True, None, False, ()), ("198.18.1.2", False, "198.51.100.1", True, ("onlink",)),
        ("198.18.2.2", False, "198.51.100.1", True, ())]
    assert (rec.paths, rec.fib_nexthops) == (1, 2)
    assert (routes[3].type, routes[3].nexthops) == ("unreachable", ())


def test_outputs_without_frr_give_no_rib_and_bad_ones_one_line():
    assert rib_from_outputs({"routes4": "[]"}) == (None, {})
    rib, errors = rib_from_outputs({"frr_routes4": "{}", "frr_bgp4": "{}"})
    assert rib == Rib() and errors == {}
    rib, errors = rib_from_outputs({"frr_routes4": json.dumps(RIB_JSON), "frr_routes6": "[1, 2]",
                                    "frr_bgp4": "not json"})
    assert rib is not None and len(rib.routes) == 4
    assert set(errors) == {"frr_routes6", "frr_bgp4"} and all("\n" not in e for e in errors.values())
    assert errors["frr_bgp4"].startswith("line 1: invalid JSON")


def test_agreement_recursion_and_bgp_multipath_count():
    rib = Rib(tuple(parse_rib_json(json.dumps(RIB_JSON))))
    st = _state(rib, (_kernel(ANY, "198.18.1.2", "198.18.2.2"), _kernel("192.0.2.54/32", "198.18.1.2", "198.18.2.2")))
    # BGP gave 3 paths, zebra installed 2, the kernel has 2: disagree (BGP vs FIB)
    assert rib_fib(st, ANY) == RibFib(ANY, 3, 2, 2, False)
    assert rib_fib(st, ANY).text == "BGP: 3 paths, FIB: 2"  # type: ignore[union-attr]
    # one recursive BGP path resolving to 2 next hops: agree
    rec = rib_fib(st, "192.0.2.54/32")
    assert rec is not None and rec.agree and rec.text == "BGP: 1 path, FIB: 2"
    assert set(disagreements(st)) == {ANY}
    # show bgp's multipath list counts instead of the RIB entry's next hops
    st2 = dataclasses.replace(st, rib=dataclasses.replace(rib, bgp=(
        BgpMultipath(ANY, 4, paths=3, valid=3, bestpath="198.18.1.2", multipath=("198.18.1.2", "198.18.2.2")),)))
    assert rib_fib(st2, ANY) == RibFib(ANY, 2, 2, 2, False) and not disagreements(st2)
    # the kernel lost one: zebra's count disagrees
    st3 = dataclasses.replace(st2, routes=(_kernel(ANY, "198.18.1.2"), st.routes[1]))
    assert rib_fib(st3, ANY).text == "BGP: 2 paths, FIB: 1"  # type: ignore[union-attr]
    assert rib_fib(dataclasses.replace(st, rib=None), ANY) is None
    assert rib_fib(st, "192.0.2.60/32") is None  # static, not BGP


def test_mismatch_events_appear_change_clear_and_are_capped():
    def rib_of(widths: dict[str, int]) -> Rib:
        return Rib(tuple(RibRoute(p, 4, "bgp", "main", True, True, 20, 0, "unicast",
                                  tuple(RibNexthop(f"198.18.{i}.2", f"swp{i}", 1, True, True) for i in range(n)))
                         for p, n in widths.items()))

    kernel = tuple(_kernel(f"192.0.2.{i}/32", "198.18.0.2", "198.18.1.2") for i in range(40))
    ok = _state(rib_of({f"192.0.2.{i}/32": 2 for i in range(40)}), kernel)
    bad = dataclasses.replace(ok, rib=rib_of({**{f"192.0.2.{i}/32": 2 for i in range(40)}, "192.0.2.1/32": 3}),
                              collected_at_ms=2)
    (ev,) = events.diff_device(ok, bad, 2)
    assert (ev.kind, ev.prefix, ev.before, ev.after) == (EventKind.RIB_FIB_MISMATCH, "192.0.2.1/32", "agree",
                                                         "BGP: 3 paths, FIB: 2")
    (back,) = events.diff_device(bad, dataclasses.replace(ok, collected_at_ms=3), 3)
    assert back.kind is EventKind.RIB_FIB_AGREE and back.before == "BGP: 3 paths, FIB: 2"
    assert events.diff_device(bad, dataclasses.replace(bad, collected_at_ms=3), 3) == []  # same rib: nothing
    all_bad = dataclasses.replace(ok, rib=rib_of({f"192.0.2.{i}/32": 3 for i in range(40)}), collected_at_ms=4)
    evs = events.diff_device(ok, all_bad, 4)
    assert len(evs) == events.RIB_EVENTS_MAX
    assert evs[-1].prefix is None and evs[-1].detail.startswith("leaf01: 25 more prefixes")
    # a poll without FRR data (vtysh failed) says nothing about agreement
    assert events.diff_device(bad, dataclasses.replace(bad, rib=None, collected_at_ms=5), 5) == []


def test_codec_round_trips_rib_and_flows_and_old_states_encode_as_before():
    rib = Rib(tuple(parse_rib_json(json.dumps(RIB_JSON))),
              (BgpMultipath(ANY, 4, paths=2, valid=2, bestpath="198.18.1.2", multipath=("198.18.1.2",)),))
    st = dataclasses.replace(_state(rib, (_kernel(ANY, "198.18.1.2"),)),
                             flows=(Flow(6, "203.0.113.1", 1000, "192.0.2.53", 443),))
    assert decode(DeviceState, json.loads(json.dumps(encode(st)))) == st
    plain = DeviceState(Device("a"), collected_at_ms=5)
    assert encode(plain) == [["a"], [], [], [], [], 5]  # no trailing flows / rib: as before they existed


def _record(path, states: list[DeviceState]) -> None:
    tl = Timeline(anycast_prefixes=(ANY,))
    rec = Recorder(path, flush_s=None)
    rec.attach(tl)
    for st in states:
        tl.update(st)
        rec.flush()
    rec.close()


def test_recording_keeps_the_rib(tmp_path):
    rib = Rib(tuple(parse_rib_json(json.dumps(RIB_JSON))), (BgpMultipath(ANY, 4, paths=1, multipath=("198.18.1.2",)),))
    a = _state(rib, (_kernel(ANY, "198.18.1.2", "198.18.2.2"),))
    b = dataclasses.replace(a, rib=dataclasses.replace(rib, routes=rib.routes[:1]), collected_at_ms=2)
    _record(tmp_path / "rib.atrec", [a, b])
    with Recording.open(tmp_path / "rib.atrec") as r:
        assert r.schema_version == 3  # schema 2 brought the RIB; every file is 3 since (route chunk templates)
        ticks = r.ticks()
        assert r.state_of_tick(0).devices["leaf01"].rib == a.rib
        assert r.state_of_tick(len(ticks) - 1).devices["leaf01"].rib == b.rib  # a RIB-only change is recorded
    _record(tmp_path / "plain.atrec", [dataclasses.replace(a, rib=None)])
    with Recording.open(tmp_path / "plain.atrec") as r:
        assert r.schema_version == 3 and r.state_of_tick(0).devices["leaf01"].rib is None


def test_configured_flows_counted_apart():
    from anycast_tui.session import SimSession

    clock = lambda: 1.0  # noqa: E731
    session = SimSession(SimFabric(SimConfig(), clock=clock), clock=clock)
    session.poll()
    flows = [Flow(6 if i % 2 else 17, f"203.0.113.{1 + i}", 30000 + i, "192.0.2.53", 443) for i in range(50)]
    arr, _ = flows_to_array(flows)
    ingress = np.array(["spine02"] * 50, dtype=object)
    tracker = ImpactTracker(session.timeline, n_flows=100, configured=(arr, FlowMeta(ingress=ingress)))
    try:
        session.sim.apply("fail_device", "leaf02")
        session.poll()
        assert tracker.wait(60)
        evs = [e for e in session.timeline.events if e.prefix == ANY]
        assert evs
        for ev in evs:
            d, src = tracker.detail(ev), tracker.sources(ev)
            assert d is not None and src is not None and "live" not in src
            assert src["configured"] == impact(d.before, d.after, FlowArray.from_flows(flows), "spine02").counts
            counts = tracker.counts(ev)
            assert counts is not None and counts["configured_flows"] == 50
            assert "live" not in impact_text(counts)
    finally:
        tracker.close()


def test_impact_text_names_live_flows():
    c = {"flows": 10, "moved": 4, "tcp_reset": 2, "udp": 2, "collateral": 0}
    assert impact_text(c) == "4/10 flows moved: 2 TCP reset, 2 UDP continue"
    live = {**c, "live_flows": 20, "live_moved": 15, "live_tcp_reset": 12, "live_udp": 3}
    assert impact_text(live).endswith(" · live: 12 TCP flows moved (reset), 3 UDP")
    assert impact_text(live, short=True) == "4 moved, 2 TCP reset · live 12 reset, 3 UDP"


@pytest.mark.parametrize("n_fib", [0, 1])
def test_no_kernel_route_is_fib_zero(n_fib):
    rib = Rib((RibRoute(ANY, 4, "bgp", "main", True, True, 20, 0, "unicast",
                        (RibNexthop("198.18.1.2", "swp1", 1, bool(n_fib), True),)),))
    c = rib_fib(_state(rib, ()), ANY)
    assert c is not None and c.kernel == 0 and not c.agree and c.text == "BGP: 1 path, FIB: 0"
