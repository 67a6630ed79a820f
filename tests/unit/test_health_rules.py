"""Health rules over built snapshots: live connections (outbound, long-lived with the tracker, multi-connection),
hash-threshold in front of TCP with its what-if, RIB/FIB disagreement, devices that did not answer."""

from __future__ import annotations

from dataclasses import replace

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.health import HealthTracker, Severity, Thresholds, evaluate
from anycast_tui.model.rib import watch
from anycast_tui.model.types import (BgpMultipath, FabricSnapshot, Flow, Rib, RibNexthop, RibRoute)

ANY = "192.0.2.53/32"
T0 = 1_764_000_000_000
CLIENT = Flow(6, "203.0.113.9", 40000, "192.0.2.53", 443)  # client -> anycast service
OUTBOUND = Flow(6, "198.51.100.7", 443, "192.0.2.53", 45678)  # the server dialled 198.51.100.7:443 from the anycast address


def _with_flows(snap: FabricSnapshot, **flows: tuple[Flow, ...]) -> FabricSnapshot:
    devices = dict(snap.devices)
    for name, fl in flows.items():
        devices[name] = replace(devices[name], flows=fl)
    return replace(snap, devices=devices)


def _by_rule(rep, rule):  # noqa: ANN001, ANN202
    return [f for f in rep.findings if f.rule == rule]


def test_outbound_tcp_from_the_anycast_address_lists_the_session():
    snap = _with_flows(SimFabric().snapshot(T0), server02=(CLIENT, OUTBOUND))
    (f,) = _by_rule(evaluate(snap), "outbound-tcp-anycast")
    assert f.severity is Severity.ERROR and f.subject == "server02"
    assert f.evidence == ("tcp 192.0.2.53:45678 → 198.51.100.7:443",)
    # an inbound connection to a service on a high port is not outbound: the remote port is ephemeral too
    high = Flow(6, "203.0.113.9", 50000, "192.0.2.53", 40000)
    assert not _by_rule(evaluate(_with_flows(SimFabric().snapshot(T0), server02=(high,))), "outbound-tcp-anycast")


def test_long_lived_tcp_needs_the_threshold_across_polls_and_resets_when_gone():
    sim = SimFabric()
    tracker = HealthTracker()
    base = _with_flows(sim.snapshot(T0), server01=(CLIENT,))
    assert not _by_rule(evaluate(base, tracker=tracker), "long-lived-tcp")
    assert tracker.first_seen_ms("server01", CLIENT) == T0
    at_299 = replace(base, taken_at_ms=T0 + 299_000)
    assert not _by_rule(evaluate(at_299, tracker=tracker), "long-lived-tcp")
    at_301 = replace(base, taken_at_ms=T0 + 301_000)
    (f,) = _by_rule(evaluate(at_301, tracker=tracker), "long-lived-tcp")
    assert f.subject == ANY and f.summary.startswith(f"1 TCP connection to {ANY} alive over 300 s (the oldest 301 s)")
    assert "would reset" in f.summary  # the worst single device failure on its way resets it
    assert f.evidence == ("server01: tcp 203.0.113.9:40000 → 192.0.2.53:443 alive 301 s",)
    # no findings without a tracker: age is unknown from one snapshot
    assert not _by_rule(evaluate(at_301), "long-lived-tcp")
    # gone in one poll: forgotten; back: counted from then
    evaluate(_with_flows(replace(base, taken_at_ms=T0 + 302_000), server01=()), tracker=tracker)
    assert tracker.first_seen_ms("server01", CLIENT) is None
    evaluate(replace(base, taken_at_ms=T0 + 303_000), tracker=tracker)
    assert tracker.first_seen_ms("server01", CLIENT) == T0 + 303_000
    # a lower threshold applies
    (f,) = _by_rule(evaluate(replace(base, taken_at_ms=T0 + 313_000), tracker=tracker,
                             thresholds=Thresholds(long_lived_s=5)), "long-lived-tcp")
    assert "alive over 5 s" in f.summary


def test_tracker_keeps_a_silent_servers_connections_and_is_bounded():
    sim = SimFabric()
    tracker = HealthTracker(max_connections=2)
    many = tuple(Flow(6, "203.0.113.9", 40000 + i, "192.0.2.53", 443) for i in range(5))
    evaluate(_with_flows(sim.snapshot(T0), server01=many), tracker=tracker)
    assert len(tracker) == 2
    sim.fail_device("server01")
    evaluate(sim.snapshot(T0 + 1000), tracker=tracker)  # server01 did not answer: its connections stay
    assert len(tracker) == 2


def test_ftp_on_anycast_and_a_client_split_across_servers():
    control = Flow(6, "203.0.113.9", 40001, "192.0.2.53", 21)
    data = Flow(6, "203.0.113.9", 40002, "192.0.2.53", 20)
    snap = _with_flows(SimFabric().snapshot(T0), server01=(control,), server02=(data,))
    (f,) = _by_rule(evaluate(snap), "multi-connection-protocol")
    assert f.subject == ANY and f.summary.startswith("FTP, FTP data on 192.0.2.53/32")
    assert "(1 client already split)" in f.summary
    assert "client 203.0.113.9: connections on server01, server02" in f.evidence


def test_hash_threshold_in_front_of_tcp_with_the_cost_of_a_failure_under_both():
    snap = _with_flows(SimFabric().snapshot(T0), server01=(CLIENT,))
    (f,) = _by_rule(evaluate(snap), "hash-threshold-tcp")
    assert f.subject == ANY and "spine01, spine02" in f.fix
    cost = next(line for line in f.evidence if line.startswith("if spine"))
    # a hash-threshold group of 4 losing one next hop moves far more than the quarter that used it; resilient
    # moves only that quarter: no collateral
    assert "with hash-threshold" in cost and ", 0) with resilient groups" in cost
    # resilient groups, or no TCP seen: no finding
    res = _with_flows(SimFabric(SimConfig(resilient=True)).snapshot(T0), server01=(CLIENT,))
    assert not _by_rule(evaluate(res), "hash-threshold-tcp")
    assert not _by_rule(evaluate(SimFabric().snapshot(T0)), "hash-threshold-tcp")
    assert _by_rule(evaluate(SimFabric().snapshot(T0), tcp={ANY}), "hash-threshold-tcp")


def _frr(snap: FabricSnapshot, name: str, bgp_paths: int) -> FabricSnapshot:
    """``name`` with an FRR RIB where BGP selected ``bgp_paths`` paths for the anycast prefix."""
    st = snap.devices[name]
    kernel = next(r for r in st.routes if r.dst == ANY)
    hops = tuple(RibNexthop(nh.gateway, nh.dev, fib=True, active=True) for nh in kernel.nexthops)
    extra = tuple(RibNexthop(f"198.19.9.{i}", "swp9", active=True) for i in range(bgp_paths - len(hops)))
    rib = Rib((RibRoute(ANY, 4, "bgp", selected=True, installed=True, nexthops=hops + extra),),
              (BgpMultipath(ANY, 4, paths=bgp_paths, valid=bgp_paths,
                            multipath=tuple(h.gateway for h in hops + extra)),))
    devices = dict(snap.devices)
    devices[name] = replace(st, rib=rib)
    return replace(snap, devices=devices)


def test_rib_fib_mismatch_needs_two_polls_and_is_unconfirmed_from_one():
    snap = _frr(SimFabric().snapshot(T0), "spine01", 5)  # BGP 5 paths, the kernel forwards over 4
    (f,) = _by_rule(evaluate(snap), "rib-fib-mismatch")  # no watch (a recording's moment): unconfirmed
    assert f.severity is Severity.WARNING and f.subject == f"spine01 {ANY}" and "BGP: 5 paths, FIB: 4" in f.summary
    first = watch(None, snap.devices["spine01"])
    one = replace(snap, devices={**snap.devices, "spine01": first})
    assert not _by_rule(evaluate(one), "rib-fib-mismatch")  # seen once: not reported yet
    second = watch(first, replace(snap.devices["spine01"]))
    two = replace(snap, devices={**snap.devices, "spine01": second})
    (f,) = _by_rule(evaluate(two), "rib-fib-mismatch")
    assert f.severity is Severity.ERROR and "in two polls running" in f.summary
    agree = _frr(SimFabric().snapshot(T0), "spine01", 4)
    assert not _by_rule(evaluate(agree), "rib-fib-mismatch")


def test_a_device_that_did_not_answer_is_a_finding():
    sim = SimFabric()
    sim.fail_device("leaf03")
    rep = evaluate(sim.snapshot(T0))
    (f,) = _by_rule(rep, "device-not-answering")
    assert f.severity is Severity.ERROR and f.subject == "leaf03" and "connection refused" in f.summary
    assert rep.worst() is Severity.ERROR
    assert rep.findings[0] == f  # errors first


def test_tables_that_contradict_themselves_are_a_finding_not_a_crash():
    snap = SimFabric().snapshot(T0)
    st = snap.devices["spine01"]
    routes = tuple(replace(r, nhid=999, nexthops=()) if r.dst == ANY else r for r in st.routes)
    snap = replace(snap, devices={**snap.devices, "spine01": replace(st, routes=routes)})
    rep = evaluate(snap)
    # spine01's route to the IPv4 prefix names a nexthop its table lacks: that prefix's flows cannot be placed;
    # the IPv6 prefix's flows never use that route (the kernel forwards them), so they are placed and shared out
    assert [f.subject for f in _by_rule(rep, "tables-inconsistent")] == [ANY]
    assert rep.imbalance("2001:db8:53::53/128") is not None and rep.imbalance(ANY) is None
    (f,) = [f for f in _by_rule(rep, "tables-inconsistent") if f.subject == ANY]
    assert f.severity is Severity.ERROR and f.subject == ANY and "nhid 999" in f.summary
    assert rep.worst() is Severity.ERROR
