"""Health checks, shares and polarization, on simulated snapshots, against truth derived from the topology and
the hash-threshold arithmetic (not from the code under test)."""

from __future__ import annotations

import numpy as np

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.health import Finding, HealthReport, Severity, evaluate
from anycast_tui.model.placement import Outcome, compile_device, hash_space
from anycast_tui.model.shares import health_sample
from anycast_tui.model.types import Flow

ANY = "192.0.2.53/32"
ANY6 = "2001:db8:53::53/128"


def _report(cfg: SimConfig, **kw) -> HealthReport:
    return evaluate(SimFabric(cfg).snapshot(1_000), **kw)


def _rules(rep: HealthReport) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in rep.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_a_clean_fabric_has_no_findings():
    for cfg, servers in ((SimConfig(), 4), (SimConfig(resilient=True), 4),
                         (SimConfig(spines=3, leaves=3, servers_per_leaf=2), 6)):
        rep = _report(cfg)
        assert rep.findings == (), [f.summary for f in rep.findings]
        assert rep.worst() is None
        assert {s.server for s in rep.shares} == {f"server{i:02d}" for i in range(1, servers + 1)}


def test_uneven_leaves_give_a_quarter_and_an_eighth_and_say_why():
    # 2 spines spread over 4 leaves equally: each leaf answers 1/4; leaf03 has two servers (server03, server04),
    # splitting its quarter equally: 1/8 each.  Five servers: the fair share is 1/5.
    rep = _report(SimConfig(leaf_servers=(1, 1, 2, 1)))
    shares = {s.server: s for s in rep.shares if s.prefix == ANY}
    assert set(shares) == {"server01", "server02", "server03", "server04", "server05"}
    for s in shares.values():
        assert s.fair == 0.2
        want = 0.125 if s.server in ("server03", "server04") else 0.25
        assert abs(s.share - want) < 0.02, (s.server, s.share)  # 10,000 sample flows: within sampling noise
    assert abs(rep.imbalance(ANY) - max(s.share for s in shares.values()) / 0.2) < 1e-12
    (imb,) = [f for f in _rules(rep)["imbalance"] if f.subject == ANY]
    assert imb.severity is Severity.WARNING
    assert imb.summary.startswith(f"{ANY}: server05 gets ") and " of the hash space against a fair 20 % (" in imb.summary
    assert "by topology" in imb.summary
    assert "server03 and server04 12.5 % each" in imb.summary
    assert "leaf01 has one server, leaf03 two" in imb.summary
    assert any(line.startswith("server03: ") and "topology 12.5 %" in line for line in imb.evidence)
    assert any(line.startswith("server01: ") and "topology 25 %" in line for line in imb.evidence)


def test_ipv6_anycast_prefix_gets_its_shares_and_imbalance_too():
    # the same uneven fabric, its IPv6 anycast prefix (2001:db8:53::53/128) routed alike: IPv6 flows (there is
    # no IPv4 client in them) share 1/4, 1/4, 1/8, 1/8, 1/4 the same way, and the imbalance says so
    rep = _report(SimConfig(leaf_servers=(1, 1, 2, 1)))
    shares = {s.server: s for s in rep.shares if s.prefix == ANY6}
    assert set(shares) == {"server01", "server02", "server03", "server04", "server05"}
    for s in shares.values():
        want = 0.125 if s.server in ("server03", "server04") else 0.25
        assert s.fair == 0.2 and abs(s.share - want) < 0.02, (s.server, s.share)
        assert s.basis == "hash space (10,000 synthetic flows)"
    assert rep.imbalance(ANY6) > 1.2
    (imb,) = [f for f in _rules(rep)["imbalance"] if f.subject == ANY6]
    assert "by topology" in imb.summary and "leaf01 has one server, leaf03 two" in imb.summary
    assert any(n.startswith(f"{ANY6}: ") and "10,000 synthetic flows" in n for n in rep.notes)
    # the flows placed are IPv6 ones, to the prefix's address
    sample = health_sample("2001:db8:53::53")
    assert set(sample.family.tolist()) == {6} and sample.flow(0).dst == "2001:db8:53::53"
    assert len({sample.flow(i).src for i in range(len(sample))}) > 100  # many clients
    # a clean fabric: no IPv6 finding either
    assert evaluate(SimFabric(SimConfig()).snapshot(1_000)).findings == ()


def test_weights_matching_the_topology_make_it_fair():
    # server03 and server04 weighted half: fair shares 1/4, 1/4, 1/8, 1/8, 1/4 — what the topology gives
    weights = {"server01": 1.0, "server02": 1.0, "server03": 0.5, "server04": 0.5, "server05": 1.0}
    rep = _report(SimConfig(leaf_servers=(1, 1, 2, 1)), weights=weights)
    assert {s.server: s.fair for s in rep.shares} == {"server01": 0.25, "server02": 0.25, "server03": 0.125,
                                                      "server04": 0.125, "server05": 0.25}
    assert "imbalance" not in _rules(rep)


def test_same_seed_on_spines_and_leaves_polarizes_every_leaf():
    # Policy 1, seed 7 everywhere; 4 leaves of 2 servers.  A spine's hash-threshold sends leaf k the hashes in
    # [k/4, (k+1)/4) of 2^31; the leaf, hashing alike, splits at 1/2: leaf01 and leaf02 (below 1/2) send every
    # flow to their first server, leaf03 and leaf04 to their second.
    seeds = tuple((n, 7) for n in ("spine01", "spine02", "leaf01", "leaf02", "leaf03", "leaf04"))
    rep = _report(SimConfig(servers_per_leaf=2, hash_seeds=seeds))
    spreads = {s.device: s for s in rep.spreads}
    want = {"leaf01": ("server01", "server02"), "leaf02": ("server03", "server04"),
            "leaf03": ("server06", "server05"), "leaf04": ("server08", "server07")}
    for leaf, (gets, starves) in want.items():
        sp = spreads[leaf]
        assert dict(sp.shares) == {gets: 1.0, starves: 0.0}
        assert dict(sp.uniform) == {gets: 0.5, starves: 0.5}
        assert sp.ratio == float("inf")
    for spine in ("spine01", "spine02"):  # the first tier is fed uniform input: no polarization there
        assert spreads[spine].ratio < 1.2
    by = _rules(rep)
    # IPv6 alike: the spines and leaves hash IPv6 flows with the same function too (the argument above holds
    # for any hash value)
    assert sorted(f.subject for f in by["polarized"]) == sorted(f"{leaf} {p}" for leaf in want for p in (ANY, ANY6))
    for leaf, (gets, starves) in want.items():
        sp6 = next(s for s in rep.spreads if s.device == leaf and s.prefix == ANY6)
        assert dict(sp6.shares) == {gets: 1.0, starves: 0.0}
    f = next(f for f in by["polarized"] if f.subject.startswith("leaf01"))
    assert f.summary.startswith("leaf01 and spine01, spine02 use policy 1 with the same seed: leaf01 sends 0 % "
                                "to server02 (uniform input: 50 %)")
    assert sorted(f.subject for f in by["same-seed-consecutive-tiers"]) == sorted(want)
    shares = {s.server: s.share for s in rep.shares if s.prefix == ANY}
    assert all(shares[s] == 0.0 for _, s in want.values())
    (imb,) = [f for f in by["imbalance"] if f.subject == ANY]
    assert "by hashing: polarized on leaf01" in imb.summary
    rows = {r.device: r for r in rep.hash_table}
    assert [r.tier for r in rep.hash_table][:2] == ["spine", "spine"]
    assert rows["leaf01"].same_as == ("spine01", "spine02") and rows["spine01"].same_as == tuple(sorted(want))
    assert rows["spine01"].multipath and rows["leaf01"].multipath and not rows["server01"].multipath


def test_same_seed_without_a_choice_downstream_is_a_risk_not_polarization():
    # leaves with one server re-hash nothing: the same seed is flagged as a risk, nothing is polarized
    seeds = tuple((n, 7) for n in ("spine01", "spine02", "leaf01", "leaf02", "leaf03", "leaf04"))
    by = _rules(_report(SimConfig(hash_seeds=seeds)))
    assert sorted(by) == ["same-seed-consecutive-tiers"]


def test_seed_zero_is_flagged_and_its_guessed_placement_not_judged():
    rep = _report(SimConfig(hash_seeds=(("spine01", 0),)))
    by = _rules(rep)
    assert sorted(by) == ["seed-zero"]
    (f,) = by["seed-zero"]
    assert f.subject == "spine01" and f.severity is Severity.WARNING
    # the seed sysctl is net.ipv4's, but the kernel hashes IPv6 with it too: both prefixes are unknown
    assert "spine01: policy 1, seed 0" in f.evidence and f"several next hops for {ANY}, {ANY6}" in f.evidence
    assert "spine01" not in {s.device for s in rep.spreads}
    assert "synthetic flows placed exactly; the rest unknown" in rep.shares[0].basis


def test_hash_space_of_weighted_next_hops():
    # weights 1, 1, 2 over hash-threshold: 1/4, 1/4, 1/2 of the hash space
    sim = SimFabric(SimConfig())
    for port, w in (("swp1", 1), ("swp2", 1), ("swp3", 2)):
        sim.set_weight("spine01", ANY, port, w)
    sim.withdraw("server04")
    cd = compile_device(sim.device_state("spine01", 1))
    one = FlowArray.from_flows([Flow(17, "203.0.113.1", 1, "192.0.2.53", 53)])
    got = {c.dev: w for c, w in hash_space(cd, one)}
    assert got == {"swp1": 0.25, "swp2": 0.25, "swp3": 0.5}
    assert all(c.outcome is Outcome.FORWARD for c, _ in hash_space(cd, one))
    assert np.isclose(sum(got.values()), 1.0)
