"""FRR RIB next to the kernel FIB: parsing (flags kept), agreement, events, codec, recordings; configured flows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model import events
from anycast_tui.model.flows import FlowMeta, flows_to_array
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import impact
from anycast_tui.model.rib import RibFib, disagreements, rib_fib, watch
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import (BgpMultipath, Device, DeviceState, EventKind, Flow, Health,
                                     HealthStatus, Nexthop, Rib, RibNexthop, RibRoute, Role, Route)
from anycast_tui.parse.frr_rib import parse_rib_json, rib_from_outputs
from anycast_tui.record.codec import decode, encode
from anycast_tui.record.reader import Recording
from anycast_tui.record.writer import Recorder
from anycast_tui.impacttracker import ImpactTracker
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


def _frr_rib(paths: int, installed: int, prefix: str = ANY) -> Rib:
    """FRR's ``show ip route json`` for ``prefix`` (BGP, ``paths`` next hops, ``installed`` of them in the FIB)."""
    hops = [{"fib": True, "ip": f"198.18.{i}.2", "interfaceName": f"swp{i}", "active": True, "weight": 1}
            if i < installed else {"ip": f"198.18.{i}.2", "interfaceName": f"swp{i}", "active": True, "weight": 1}
            for i in range(paths)]
    return Rib(tuple(parse_rib_json(json.dumps({prefix: [{"prefix": prefix, "protocol": "bgp", "selected": True,
                                                          "installed": True, "table": 254, "nexthops": hops}]}))))


def _polls(*states: DeviceState) -> list[list]:
    """Each state as the collector hands it on (``rib.watch`` from the one before), and the RIB events of each poll."""
    out, prev = [], None
    for i, st in enumerate(states):
        st = watch(prev, dataclasses.replace(st, collected_at_ms=i + 1))
        evs = events.diff_device(prev, st, i + 1) if prev is not None else []
        out.append([e for e in evs if e.kind.value.startswith("rib_")])
        prev = st
    return out


def test_restore_blip_seen_in_one_poll_is_no_event():
    two = (_kernel(ANY, "198.18.0.2", "198.18.1.2"),)
    three = (_kernel(ANY, "198.18.0.2", "198.18.1.2", "198.18.2.2"),)
    ok2, ok3 = _state(_frr_rib(2, 2), two), _state(_frr_rib(3, 3), three)
    blip = _state(_frr_rib(3, 3), two)  # zebra installed the third path, the kernel's route is not updated yet
    assert rib_fib(blip, ANY).text == "BGP: 3 paths, FIB: 2"  # type: ignore[union-attr]
    assert _polls(ok2, blip, ok3, ok3) == [[], [], [], []]
    # a withdrawal's blip the other way, and one the device's other records change around: still nothing
    other = _kernel("198.51.100.0/24", "198.18.0.2")
    assert _polls(ok3, _state(_frr_rib(2, 2), three + (other,)), ok2) == [[], [], []]


def test_mismatch_in_two_consecutive_polls_is_one_event_and_its_end_another():
    two = (_kernel(ANY, "198.18.0.2", "198.18.1.2"),)
    ok, bad = _state(_frr_rib(2, 2), two), _state(_frr_rib(3, 2), two)  # BGP 3 paths, zebra could install 2
    other = _kernel("198.51.100.0/24", "198.18.0.2")
    moved = dataclasses.replace(bad, routes=two + (other,))  # the same disagreement, another route changed
    polls = _polls(ok, bad, bad, bad, moved, ok, ok)
    assert [len(p) for p in polls] == [0, 0, 1, 0, 0, 1, 0]
    ev, back = polls[2][0], polls[5][0]
    assert (ev.kind, ev.device, ev.prefix, ev.before, ev.after) == (
        EventKind.RIB_FIB_MISMATCH, "leaf01", ANY, "agree", "BGP: 3 paths, FIB: 2")
    assert (back.kind, back.before, back.after) == (EventKind.RIB_FIB_AGREE, "BGP: 3 paths, FIB: 2",
                                                    "BGP: 2 paths, FIB: 2")
    # the collector hands back the very same records when the device said the same: reported all the same
    same = watch(None, bad)
    again = watch(same, dataclasses.replace(same, collected_at_ms=2))
    (ev2,) = events.diff_device(same, again, 2)
    assert ev2.kind is EventKind.RIB_FIB_MISMATCH and again.rib is same.rib
    third = watch(again, dataclasses.replace(again, collected_at_ms=3))
    assert third.rib_watch is again.rib_watch and events.diff_device(again, third, 3) == []


def test_reported_mismatch_changes_only_when_the_change_holds_and_survives_a_poll_without_frr():
    two = (_kernel(ANY, "198.18.0.2", "198.18.1.2"),)
    ok, bad3, bad4 = (_state(_frr_rib(n, 2), two) for n in (2, 3, 4))
    no_frr = dataclasses.replace(bad3, rib=None)  # vtysh failed this poll: says nothing about agreement
    polls = _polls(ok, bad3, bad3, bad4, bad4, no_frr, bad4, ok)
    assert [[(e.kind, e.before, e.after) for e in p] for p in polls] == [
        [], [], [(EventKind.RIB_FIB_MISMATCH, "agree", "BGP: 3 paths, FIB: 2")],
        [], [(EventKind.RIB_FIB_MISMATCH, "BGP: 3 paths, FIB: 2", "BGP: 4 paths, FIB: 2")],
        [], [], [(EventKind.RIB_FIB_AGREE, "BGP: 4 paths, FIB: 2", "BGP: 2 paths, FIB: 2")]]
    # a change seen in one poll, then agreement: the reported disagreement still ends with an event
    polls = _polls(ok, bad3, bad3, bad4, ok)
    assert [[e.kind for e in p] for p in polls] == [[], [], [EventKind.RIB_FIB_MISMATCH], [],
                                                    [EventKind.RIB_FIB_AGREE]]
    # no agreement event without a reported disagreement, and none for states no collector watched
    assert events.diff_device(bad3, dataclasses.replace(ok, collected_at_ms=3), 3) == []


def test_mismatch_events_are_capped():
    def rib_of(widths: dict[str, int]) -> Rib:
        return Rib(tuple(RibRoute(p, 4, "bgp", "main", True, True, 20, 0, "unicast",
                                  tuple(RibNexthop(f"198.18.{i}.2", f"swp{i}", 1, True, True) for i in range(n)))
                         for p, n in widths.items()))

    kernel = tuple(_kernel(f"192.0.2.{i}/32", "198.18.0.2", "198.18.1.2") for i in range(40))
    ok = _state(rib_of({f"192.0.2.{i}/32": 2 for i in range(40)}), kernel)
    all_bad = dataclasses.replace(ok, rib=rib_of({f"192.0.2.{i}/32": 3 for i in range(40)}))
    polls = _polls(ok, all_bad, all_bad)
    assert polls[1] == []
    evs = polls[2]
    assert len(evs) == events.RIB_EVENTS_MAX
    assert evs[-1].prefix is None and evs[-1].detail.startswith("leaf01: 25 more prefixes")


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
