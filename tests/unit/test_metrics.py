"""The Prometheus exporter's collector: what a scrape says of a built fabric, parsed back from the exposition
text (prometheus_client's parser), names and labels per the conventions, values derived by hand."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from anycast_tui.commands.argtypes import listen
from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.metrics import FabricCollector, serve
from anycast_tui.model.health import DeviceSpread, Finding, HealthReport, ServerShare, Severity
from anycast_tui.model.incident_impact import ImpactCounts, IncidentImpact, LiveCounts, PhaseImpact
from anycast_tui.model.incidents import Incident, IncidentKind
from anycast_tui.model.timeline import Timeline
from anycast_tui.parse.frr_rib import parse_rib_json
from anycast_tui.model.types import Rib
from anycast_tui.session import SimSession

ANY4, ANY6 = "192.0.2.53/32", "2001:db8:53::53/128"
T0 = 1_764_000_000.0


def scrape(collector: FabricCollector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}, from the exposition text as Prometheus reads it."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    text = generate_latest(reg).decode()
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def families(collector: FabricCollector):  # noqa: ANN201
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return list(text_string_to_metric_families(generate_latest(reg).decode()))


def one(metrics: dict, name: str, **labels: str) -> float:
    return metrics[name][tuple(sorted(labels.items()))]


@pytest.fixture
def demo():  # noqa: ANN201
    clock = [T0]
    sim = SimFabric(clock=lambda: clock[0])
    session = SimSession(sim, clock=lambda: clock[0])
    session.poll()

    def poll() -> None:
        clock[0] += 1
        session.poll()

    return sim, session, poll, clock


def test_names_types_and_labels_follow_the_conventions(demo):
    sim, session, poll, clock = demo
    sim.fail_device("leaf03")
    poll()
    tracker = IncidentTracker(session.timeline)
    try:
        poll()
        report = HealthReport(int(T0 * 1000), (ServerShare(ANY4, "server01", 0.25, 0.25, "hash space"),),
                              (DeviceSpread("leaf01", ANY4, (("a", 1.0),), (("a", 1.0),), 10),),
                              (Finding("seed-zero", Severity.ERROR, "leaf01", "s", "f"),))
        fams = families(FabricCollector(session.timeline, incidents=tracker, health=lambda: report,
                                        clock=lambda: clock[0]))
    finally:
        tracker.close()
    names = {f.name for f in fams}
    assert len(names) >= 25
    allowed = {"device", "prefix", "server", "nexthop", "status", "role", "platform", "family", "quality",
               "rule", "severity", "kind", "source"}
    for f in fams:
        assert f.name.startswith("anycast_"), f.name
        assert f.documentation, f.name
        assert "_ms" not in f.name and "millisecond" not in f.name
        for s in f.samples:
            assert set(s.labels) <= allowed, (f.name, s.labels)
            if f.type == "counter":
                assert s.name == f.name + "_total", s.name
            else:
                assert not s.name.endswith("_total"), s.name
            if "device" in s.labels:
                assert s.labels["device"] in sim.devices
            if "prefix" in s.labels:
                assert s.labels["prefix"] == ANY4  # the configured anycast prefix, nothing else
    for f in fams:  # times are seconds, ratios are ratios
        if "age" in f.name or "duration" in f.name or "timestamp" in f.name:
            assert f.name.endswith("_seconds"), f.name


def test_devices_next_hops_and_health_of_the_demo_fabric(demo):
    sim, session, poll, clock = demo
    m = scrape(FabricCollector(session.timeline, clock=lambda: clock[0]))
    for d in sim.devices:
        assert one(m, "anycast_device_up", device=d) == 1
        assert one(m, "anycast_device_status", device=d, status="ok") == 1
        assert one(m, "anycast_poll_age_seconds", device=d) == 0  # polled at the clock's now
    assert len(m["anycast_device_status"]) == len(sim.devices)  # one series per device: its current status
    assert one(m, "anycast_device_info", device="spine01", role="spine", platform="sim") == 1
    # the seed's fabric: each spine hashes over its 4 leaves, each leaf forwards to its one server
    for s in ("spine01", "spine02"):
        assert one(m, "anycast_nexthops", device=s, prefix=ANY4) == 4
        assert one(m, "anycast_nexthops_configured", device=s, prefix=ANY4) == 4
        assert one(m, "anycast_group_resilient", device=s, prefix=ANY4) == 0
    for leaf in ("leaf01", "leaf02", "leaf03", "leaf04"):
        assert one(m, "anycast_nexthops", device=leaf, prefix=ANY4) == 1
    assert not any(k for k in m["anycast_nexthops"] if ("device", "server01") in k)  # a server holds the address
    assert "anycast_nexthops_expected" not in m and "anycast_rib_fib_mismatch" not in m  # no FRR RIB read here
    assert one(m, "anycast_hash_seed", device="spine01") == session.timeline.snapshot.devices["spine01"].hash.seed
    assert one(m, "anycast_placement_quality", device="spine01", quality="exact") == 1

    sim.fail_device("leaf03")
    clock[0] += 4
    poll()
    clock[0] += 2.5  # a scrape 2.5 s after the poll
    m = scrape(FabricCollector(session.timeline, clock=lambda: clock[0]))
    assert one(m, "anycast_device_up", device="leaf03") == 0
    assert one(m, "anycast_device_status", device="leaf03", status="stale") == 1
    assert one(m, "anycast_poll_age_seconds", device="leaf03") == pytest.approx(7.5)  # its last good poll: T0+1
    assert one(m, "anycast_poll_age_seconds", device="leaf01") == pytest.approx(2.5)
    assert one(m, "anycast_device_last_ok_timestamp_seconds", device="leaf03") == pytest.approx(T0 + 1)
    for s in ("spine01", "spine02"):
        assert one(m, "anycast_nexthops", device=s, prefix=ANY4) == 3  # leaf03 is gone from both


def test_a_withdrawn_route_is_zero_next_hops_not_a_missing_series(demo):
    sim, session, poll, clock = demo
    sim.withdraw("server02")
    poll()
    m = scrape(FabricCollector(session.timeline))
    assert one(m, "anycast_nexthops", device="leaf02", prefix=ANY4) == 0
    assert one(m, "anycast_nexthops", device="spine01", prefix=ANY4) == 3


def test_resilient_buckets_per_neighbour_name():
    sim = SimFabric(SimConfig(resilient=True, buckets=32))
    tl = Timeline(anycast_prefixes=(ANY4, ANY6))
    tl.apply(sim.snapshot(int(T0 * 1000)))
    m = scrape(FabricCollector(tl))
    for s in ("spine01", "spine02"):
        for p in (ANY4, ANY6):
            assert one(m, "anycast_group_resilient", device=s, prefix=p) == 1
            # 32 buckets over 4 equal leaves: 8 each, named by the inventory, never by address
            got = {dict(k)["nexthop"]: v for k, v in m["anycast_group_buckets"].items()
                   if dict(k)["device"] == s and dict(k)["prefix"] == p}
            assert got == {"leaf01": 8, "leaf02": 8, "leaf03": 8, "leaf04": 8}
    sim.fail_device("leaf03")
    tl.apply(sim.snapshot(int(T0 * 1000) + 1000))
    m = scrape(FabricCollector(tl))
    got = {dict(k)["nexthop"]: v for k, v in m["anycast_group_buckets"].items()
           if dict(k)["device"] == "spine01" and dict(k)["prefix"] == ANY4}
    assert sum(got.values()) == 32 and "leaf03" not in got and min(got.values()) >= 10  # 32 over 3: 10/11/11


def _frr_rib(paths: int, installed: int) -> Rib:
    hops = [{"fib": i < installed, "ip": f"198.18.{i}.2", "interfaceName": f"swp{i}", "active": True, "weight": 1}
            for i in range(paths)]
    return Rib(tuple(parse_rib_json(json.dumps({ANY4: [{"prefix": ANY4, "protocol": "bgp", "selected": True,
                                                        "installed": True, "table": 254, "nexthops": hops}]}))))


def test_bgp_paths_are_the_expected_next_hops_and_a_mismatch_is_one(demo):
    sim, session, poll, clock = demo
    spine = session.timeline.snapshot.devices["spine01"]
    session.timeline.update(dataclasses.replace(spine, rib=_frr_rib(4, 4)))
    m = scrape(FabricCollector(session.timeline))
    assert one(m, "anycast_nexthops_expected", device="spine01", prefix=ANY4) == 4
    assert one(m, "anycast_rib_fib_mismatch", device="spine01", prefix=ANY4) == 0
    assert ("device", "spine02") not in {kv for k in m["anycast_nexthops_expected"] for kv in k}  # no RIB read
    sim.fail_device("leaf03")  # the kernel forwards over 3, BGP (and zebra) still say 4
    spine = sim.device_state("spine01", int(T0 * 1000) + 5000)
    session.timeline.update(dataclasses.replace(spine, rib=_frr_rib(4, 4)))
    m = scrape(FabricCollector(session.timeline))
    assert one(m, "anycast_nexthops", device="spine01", prefix=ANY4) == 3
    assert one(m, "anycast_nexthops_expected", device="spine01", prefix=ANY4) == 4
    assert one(m, "anycast_rib_fib_mismatch", device="spine01", prefix=ANY4) == 1


def test_health_report_values_and_only_bounded_labels(demo):
    sim, session, poll, clock = demo
    shares = (ServerShare(ANY4, "server01", 0.25, 0.25, "hash space"),
              ServerShare(ANY4, "server02", 0.125, 0.25, "hash space"),
              ServerShare(ANY4, "server03", 0.375, 0.25, "hash space"),
              ServerShare(ANY4, "server04", 0.25, 0.25, "hash space"),
              ServerShare(ANY4, "203.0.113.9", 0.5, 0.25, "hash space"),  # not an inventory name: left out
              ServerShare("198.51.100.1/32", "server01", 1.0, 1.0, "hash space"))  # not a configured prefix
    spreads = (DeviceSpread("leaf01", ANY4, (("spine01", 0.9), ("spine02", 0.1)), (("spine01", 0.5), ("spine02", 0.5)),
                            1000),
               DeviceSpread("spine01", ANY4, (("leaf01", 0.25), ("leaf02", 0.25), ("leaf03", 0.25), ("leaf04", 0.25)),
                            (("leaf01", 0.25), ("leaf02", 0.25), ("leaf03", 0.25), ("leaf04", 0.25)), 4000),
               DeviceSpread("client-7", ANY4, (("x", 1.0),), (("x", 0.5),), 5))  # not in the inventory
    findings = (Finding("seed-zero", Severity.ERROR, "spine01", "seed 0", "set a seed"),
                Finding("seed-zero", Severity.ERROR, "spine02", "seed 0", "set a seed"),
                Finding("polarized", Severity.WARNING, "leaf01 192.0.2.53/32", "90 % to spine01", "seeds"),
                Finding("imbalance", Severity.WARNING, ANY4, "server03 gets 37.5 %", "weights"))
    report = HealthReport(int(T0 * 1000) + 500, shares, spreads, findings)
    m = scrape(FabricCollector(session.timeline, health=lambda: report))
    assert {dict(k)["server"]: v for k, v in m["anycast_server_share"].items()} == {
        "server01": 0.25, "server02": 0.125, "server03": 0.375, "server04": 0.25}
    assert set(m["anycast_server_fair_share"].values()) == {0.25}
    # max(share / fair) over every server the report knows: 0.5 / 0.25 of the one whose name is no label (its
    # series is left out, not its part in the prefix's ratio); server03 alone would give 1.5
    assert m["anycast_imbalance_ratio"] == {(("prefix", ANY4),): pytest.approx(2.0)}
    # leaf01 sends spine02 0.1 where uniform input gives 0.5: a fifth of its share, ratio 5
    assert one(m, "anycast_polarization_ratio", device="leaf01", prefix=ANY4) == pytest.approx(0.5 / 0.1)
    assert one(m, "anycast_polarization_ratio", device="spine01", prefix=ANY4) == pytest.approx(1.0)
    assert len(m["anycast_polarization_ratio"]) == 2
    assert one(m, "anycast_findings", rule="seed-zero", severity="error") == 2
    assert one(m, "anycast_findings", rule="polarized", severity="warning") == 1
    assert one(m, "anycast_findings", rule="imbalance", severity="warning") == 1
    assert one(m, "anycast_health_report_timestamp_seconds") == pytest.approx(T0 + 0.5)
    empty = scrape(FabricCollector(session.timeline, health=lambda: None))
    assert "anycast_server_share" not in empty and "anycast_findings" not in empty


def test_incidents_and_their_impact_from_the_real_tracker(demo):
    sim, session, poll, clock = demo
    poll()
    tracker = IncidentTracker(session.timeline)
    collector = FabricCollector(session.timeline, incidents=tracker)
    try:
        m = scrape(collector)
        assert one(m, "anycast_incidents_total", kind="failure") == 0
        assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 0
        sim.fail_device("leaf03")
        poll()
        assert tracker.wait(120)
        m = scrape(collector)
        inc, = tracker.incidents()
        onset = tracker.impact(inc.id).onset
        assert one(m, "anycast_incidents_total", kind="failure") == 1
        assert one(m, "anycast_incidents_open") == 1
        # the demo's leaf03 failure on the fixed 10,000-flow sample: what `demo --headless` prints
        assert one(m, "anycast_incident_flows_moved_total", source="estimated") == onset.estimated.moved == 3308
        assert one(m, "anycast_incident_tcp_resets_total", source="estimated") == onset.estimated.tcp_reset == 1645
        assert one(m, "anycast_incident_udp_flows_moved_total", source="estimated") == onset.estimated.udp_moved
        assert one(m, "anycast_incident_flows_considered_total", source="estimated") == 10_000
        assert one(m, "anycast_incident_tcp_resets_total", source="live") == 0  # no live flow source here
        sim.restore_device("leaf03")
        poll()
        poll()
        assert tracker.wait(120)
        m = scrape(collector)
        restore = tracker.impact(inc.id).restore
        assert one(m, "anycast_incidents_total", kind="failure") == 1  # the same incident, closed
        assert one(m, "anycast_incidents_open") == 0
        assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 3308 + restore.estimated.moved
        assert one(m, "anycast_incident_flows_considered_total", source="estimated") == 20_000
    finally:
        tracker.close()


class _Book:
    """The IncidentTracker's read side (``metrics.Incidents``), driven by hand: revisions and merges that
    the real book makes only under particular poll orders."""

    def __init__(self) -> None:
        self.incs: dict[int, Incident] = {}
        self.imps: dict[int, IncidentImpact] = {}
        self.merges: dict[int, int] = {}

    def add(self, iid: int, moved: int, live_tcp: int | None = None, kind: IncidentKind = IncidentKind.FAILURE,
            open_: bool = True) -> None:
        self.incs[iid] = Incident(iid, kind, 0, None if open_ else 1, "c", (), (ANY4,), ())
        live = LiveCounts(10, live_tcp, None) if live_tcp is not None else None
        phase = PhaseImpact(ImpactCounts(100, moved, moved // 2, moved - moved // 2, 0), live, (), (), (), (), "",
                            True, "100 synthetic flows")
        self.imps[iid] = IncidentImpact(iid, phase, None)

    def incidents(self) -> list[Incident]:
        return list(self.incs.values())

    def impact(self, iid: int) -> IncidentImpact | None:
        return self.imps.get(iid)

    def merged(self) -> dict[int, int]:
        return dict(self.merges)


def test_incident_counters_never_go_down_and_merges_count_once():
    book = _Book()
    c = FabricCollector(Timeline(anycast_prefixes=(ANY4,)), incidents=book)
    book.add(1, 40, live_tcp=3)
    m = scrape(c)
    assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 40
    assert one(m, "anycast_incident_tcp_resets_total", source="live") == 3
    assert one(m, "anycast_incident_flows_moved_total", source="live") == 3  # UDP unknown: TCP only
    book.add(1, 30, live_tcp=3)  # revised down: the counter stays
    assert one(scrape(c), "anycast_incident_flows_moved_total", source="estimated") == 40
    book.add(1, 50, live_tcp=4)  # revised up past what was counted: the difference
    m = scrape(c)
    assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 50
    assert one(m, "anycast_incident_tcp_resets_total", source="live") == 4
    book.add(2, 20, kind=IncidentKind.ADDITION)
    m = scrape(c)
    assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 70
    assert one(m, "anycast_incidents_total", kind="addition") == 1
    assert one(m, "anycast_incidents_open") == 2
    # 2 merges into 1: the survivor now holds both (50 + 20 + 5 new): only the 5 are new
    del book.incs[2], book.imps[2]
    book.merges[2] = 1
    book.add(1, 75, live_tcp=4)
    m = scrape(c)
    assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 75
    assert one(m, "anycast_incidents_total", kind="failure") == 1 and one(m, "anycast_incidents_total",
                                                                          kind="addition") == 1
    del book.incs[1], book.imps[1]  # dropped from the bounded book: stays counted
    m = scrape(c)
    assert one(m, "anycast_incident_flows_moved_total", source="estimated") == 75
    assert one(m, "anycast_incidents_open") == 0


def test_unchanged_records_are_not_derived_again(demo):
    sim, session, poll, clock = demo
    c = FabricCollector(session.timeline)
    scrape(c)
    n = c.derived_groups
    assert n == 6  # 2 spines + 4 leaves, one prefix
    scrape(c)
    assert c.derived_groups == n
    sim.fail_device("leaf03")
    poll()  # the simulator builds every state anew: only equal records would be shared (as the SSH poller does)
    scrape(c)
    assert c.derived_groups > n


def test_listen_argument():
    assert listen("9464") == ("127.0.0.1", 9464)
    assert listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert listen("[::1]:9464") == ("::1", 9464)
    assert listen("localhost:0") == ("localhost", 0)
    for bad in ("", "x", "70000", "::1:9464", "[::1]9464", ":9464", "1.2.3.4:"):
        with pytest.raises(argparse.ArgumentTypeError):
            listen(bad)


def test_serve_and_a_port_in_use(demo):
    import urllib.request

    from anycast_tui.errors import CliError

    sim, session, poll, clock = demo
    server = serve(("127.0.0.1", 0), FabricCollector(session.timeline))
    try:
        ask = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"}
        with urllib.request.urlopen(urllib.request.Request(server.url, headers=ask), timeout=30) as r:
            text = r.read().decode()
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")  # not OpenMetrics
        names = {f.name for f in text_string_to_metric_families(text)}
        assert "anycast_device_up" in names and "process_cpu_seconds" in names
        with pytest.raises(CliError, match=r"cannot listen on 127\.0\.0\.1:\d+: "):
            serve(("127.0.0.1", server.port), FabricCollector(session.timeline))
    finally:
        server.close()


def test_real_checks_uneven_leaves_and_seed_zero():
    """model.health.evaluate through the session's HealthWatch, scraped: leaf03 with two servers beside leaves with one.
    By hand: the spines split flows evenly over 4 leaves (1/4 each), leaf03 halves its quarter (1/8 per server);
    five servers, fair 1/5 each; imbalance = (1/4) / (1/5) = 1.25 — on a 10,000-flow sample, so within noise."""
    from anycast_tui.healthwatch import HealthWatch

    clock = [T0]
    sim = SimFabric(SimConfig(leaf_servers=(1, 1, 2, 1)), clock=lambda: clock[0])
    session = SimSession(sim, clock=lambda: clock[0])
    runner = HealthWatch(session.timeline, min_interval_s=0, settle_s=0)
    session.poll()  # the watch evaluates after a change
    try:
        assert runner.wait(300)
        c = FabricCollector(session.timeline, health=lambda: runner.report, clock=lambda: clock[0])
        m = scrape(c)
        share = {dict(k)["server"]: v for k, v in m["anycast_server_share"].items()}
        assert len(share) == 5 and sum(share.values()) == pytest.approx(1.0, abs=1e-6)
        assert set(share) == {n for n in sim.devices if sim.role(n).value == "server"}  # inventory names
        halves = sorted(share.values())[:2]  # the two behind leaf03
        assert all(v == pytest.approx(0.125, abs=0.02) for v in halves)
        assert all(v == pytest.approx(0.25, abs=0.02) for v in sorted(share.values())[2:])
        assert all(v == pytest.approx(0.2) for v in m["anycast_server_fair_share"].values())
        assert one(m, "anycast_imbalance_ratio", prefix=ANY4) == pytest.approx(1.25, abs=0.1)
        assert one(m, "anycast_findings", rule="imbalance", severity="warning") == 1
        assert ("rule", "seed-zero") not in {kv for k in m.get("anycast_findings", {}) for kv in k}
        sim.set_hash("spine01", seed=0)
        clock[0] += 1
        session.poll()
        assert runner.wait(300)
        m = scrape(c)
        assert one(m, "anycast_hash_seed", device="spine01") == 0
        assert one(m, "anycast_placement_quality", device="spine01", quality="unknown") == 1
        assert sum(v for k, v in m["anycast_findings"].items() if ("rule", "seed-zero") in k) == 1
    finally:
        runner.close()
