"""Server shares on sampled traffic, on simulated fabrics, against truth the topology gives (the real kernels'
answer is in tests/lab/test_health_sampled.py): flows sampled entering at a leaf can only reach that leaf's
servers; too few sampled flows leave the shares on hash space and say why; a live session's HealthWatch
measures on the session's sampled traffic."""

from __future__ import annotations

import numpy as np

from anycast_tui.healthwatch import HealthWatch
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.health import Thresholds, evaluate
from anycast_tui.model.sampled import SampledWindow
from anycast_tui.model.samples import ExportKind, FlowSample
from anycast_tui.model.types import Role
from anycast_tui.session import SimSession

ANY = "192.0.2.53/32"
ANY6 = "2001:db8:53::53/128"
NOW = 1_764_000_000.0


def _window(entries: dict[str, tuple[int, int]], *, family: int = 4, seed: int = 3) -> SampledWindow:
    """Per entry device, (flows, sampled packets each) at 1 in 10; random 5-tuples to the anycast address."""
    rng = np.random.default_rng(seed)
    w = SampledWindow([ANY, ANY6], window_s=100.0)
    for device, (n, pkts) in entries.items():
        flows = FlowArray.random(n, rng=rng, family=family, protos=(6, 17))
        width = 4 if family == 4 else 16
        w.add(device, Role.LEAF if device.startswith("leaf") else Role.SPINE, [
            FlowSample("198.18.0.1", ExportKind.SFLOW, 1, 10, None, None, family, int(flows.proto[i]),
                       bytes(flows.src[i, :width]), bytes(flows.dst[i, :width]), int(flows.sport[i]),
                       int(flows.dport[i]), packets=pkts, octets=pkts * 1000, received=NOW) for i in range(n)])
    return w


def test_traffic_sampled_at_the_leaves_is_shared_as_they_carry_it_and_the_finding_says_so():
    # leaf01 (server01 only) samples 300 flows of 4 packets, leaf02..04 100 flows of 1 packet each: server01
    # answers 1200 of 1500 sampled packets (80 %), whatever the hashing; the hash space stays a quarter each
    w = _window({"leaf01": (300, 4), "leaf02": (100, 1), "leaf03": (100, 1), "leaf04": (100, 1)})
    rep = evaluate(SimFabric(SimConfig()).snapshot(1_000), traffic_of=lambda p: w.flow_set(p, now=NOW))
    shares = {s.server: s for s in rep.shares if s.prefix == ANY}
    assert {n: round(s.share, 9) for n, s in shares.items()} == {"server01": 0.8, "server02": round(1 / 15, 9),
                                                                  "server03": round(1 / 15, 9),
                                                                  "server04": round(1 / 15, 9)}
    assert shares["server01"].flows == 300 and shares["server01"].pps == 1200 * 10 / 100.0
    assert all(abs(s.hash_share - 0.25) < 0.02 for s in shares.values())
    assert shares["server01"].basis == "sampled traffic (measured on 600 sampled flows, ≈ 150 pkt/s at 1:10)"
    (imb,) = [f for f in rep.findings if f.rule == "imbalance"]
    assert imb.subject == ANY
    assert imb.summary.startswith(f"{ANY}: server01 gets 80 % of the sampled traffic against a fair 25 % (3.20× fair; "
                                  "measured on 600 sampled flows, ≈ 150 pkt/s); by traffic: the hash space is fair")
    assert imb.evidence[0].startswith("server01: 80 % of the sampled traffic (≈ 120 pkt/s, 300 flows; hash space ")
    # no IPv6 traffic sampled: its shares stay hash space
    assert all(not s.sampled and s.basis.startswith("hash space") for s in rep.shares if s.prefix == ANY6)
    assert any("sampled traffic: measured on 600 sampled flows" in n for n in rep.notes)


def test_ipv6_sampled_traffic_is_placed_too():
    w = _window({"leaf02": (150, 2), "spine01": (150, 1)}, family=6)
    rep = evaluate(SimFabric(SimConfig()).snapshot(1_000), traffic_of=lambda p: w.flow_set(p, now=NOW))
    shares = {s.server: s for s in rep.shares if s.prefix == ANY6}
    assert all(s.sampled for s in shares.values()) and sum(s.flows for s in shares.values()) == 300
    # leaf02's 150 flows (300 packets) all reach server02; spine01's 150 (150 packets) spread over the four
    assert shares["server02"].flows >= 150
    assert abs(sum(s.share for s in shares.values()) - 1.0) < 1e-9
    assert shares["server02"].share >= 300 / 450


def test_too_few_sampled_flows_leave_the_shares_on_hash_space():
    w = _window({"leaf01": (20, 50)})
    snap = SimFabric(SimConfig()).snapshot(1_000)
    rep = evaluate(snap, traffic_of=lambda p: w.flow_set(p, now=NOW))
    s = next(s for s in rep.shares if s.prefix == ANY and s.server == "server01")
    assert not s.sampled and abs(s.share - 0.25) < 0.02
    assert s.basis.endswith("; sampled traffic too thin to judge (20 sampled flows placed on servers, 100 needed)")
    assert rep.findings == ()
    rep = evaluate(snap, traffic_of=lambda p: w.flow_set(p, now=NOW), thresholds=Thresholds(sampled_min_flows=10))
    assert {s.server: s.share for s in rep.shares if s.prefix == ANY}["server01"] == 1.0


class Traffic:
    """What HealthWatch reads of sampledtraffic.SampledTraffic."""

    def __init__(self, window: SampledWindow) -> None:
        self.window = window
        self.asked: list[float] = []

    def flow_set(self, prefix: str, now: float):  # noqa: ANN201
        self.asked.append(now)
        return self.window.flow_set(prefix, now=now)


def test_a_live_session_measures_on_its_sampled_traffic():
    session = SimSession(SimFabric(), clock=lambda: NOW)
    traffic = Traffic(_window({"leaf03": (200, 1)}))
    watch = HealthWatch(session.timeline, min_interval_s=0, settle_s=0, traffic=traffic, wall=lambda: NOW + 5)
    try:
        session.poll()
        assert watch.wait(60)
        shares = {s.server: s.share for s in watch.report.shares if s.prefix == ANY}
        assert shares["server03"] == 1.0 and traffic.asked and set(traffic.asked) == {NOW + 5}
        runs = watch.evaluations
        session.poll()  # nothing changed in the fabric, but sampled traffic keeps coming: evaluated again
        assert watch.wait(60) and watch.evaluations > runs
    finally:
        watch.close()


def test_polarization_needs_more_than_noise_on_few_flows():
    # 18 of 32 flows on a next hop whose uniform share is 1/4: 4.1 σ by the normal approximation, but the exact
    # binomial chance is 1.6e-4 — noise, on a fabric testing a thousand next hops; 0 of 40 where 1/2 is due
    # (chance 2^-40) and 0 of 2,390 are not
    from anycast_tui.model.findings import DeviceSpread
    from anycast_tui.model.polarization import binomial_tail, worst_hop

    uni = (("a", 0.25), ("b", 0.25), ("c", 0.25), ("d", 0.25))
    noisy = DeviceSpread("spine225", ANY6, (("a", 18 / 32), ("b", 3 / 32), ("c", 3 / 32), ("d", 8 / 32)), uni, 32)
    assert worst_hop(noisy, 0.5, 2.0) is None
    assert abs(binomial_tail(18, 32, 0.25) - 1.6024e-4) < 1e-7
    assert abs(binomial_tail(0, 40, 0.5) - 0.5 ** 40) < 1e-20
    starved = DeviceSpread("leaf01", ANY, (("x", 1.0), ("y", 0.0)), (("x", 0.5), ("y", 0.5)), 40)
    assert worst_hop(starved, 0.5, 2.0) == ("y", 0.0, 0.5)
