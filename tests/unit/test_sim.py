"""SimFabric: topology, BGP-like convergence after failures, weights, resilient groups."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from anycast_tui.lab.sim import SimConfig, SimError, SimFabric
from anycast_tui.lab.simfabric import GROUP4_ID
from anycast_tui.model.types import Role, Route

ANY4 = "192.0.2.53/32"
ANY6 = "2001:db8:53::53/128"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def route(sim: SimFabric, dev: str, dst: str) -> Route | None:
    for r in sim.routes(dev, table="main"):
        if r.dst == dst:
            return r
    return None


def nh_devs(sim: SimFabric, dev: str, dst: str = ANY4) -> list[str]:
    r = route(sim, dev, dst)
    return [] if r is None else [nh.dev for nh in r.nexthops]  # type: ignore[misc]


def peer_of(sim: SimFabric, dev: str, port: str) -> str:
    peer = sim.peer(dev, port)
    assert peer is not None, f"{dev} {port} faces the client segment"
    return peer


def test_default_topology_counts():
    sim = SimFabric()
    roles = Counter(sim.roles().values())
    assert len(sim.devices) == 10
    assert roles == {Role.SPINE: 2, Role.LEAF: 4, Role.SERVER: 4}
    assert sim.announcing() == ("server01", "server02", "server03", "server04")


def test_configurable_size():
    sim = SimFabric(SimConfig(spines=3, leaves=6, servers_per_leaf=2))
    assert len(sim.devices) == 3 + 6 + 12
    assert len(nh_devs(sim, "spine03")) == 6
    assert len(nh_devs(sim, "leaf06")) == 2


def test_addresses_are_documentation_ranges_and_unique():
    sim = SimFabric()
    seen = set()
    docs = [ipaddress.ip_network(n) for n in ("198.18.0.0/15", "192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32")]
    for dev in sim.devices:
        for i in sim.interfaces(dev):
            for a in i.addresses:
                ip = ipaddress.ip_address(a.local)
                if ip.is_loopback or ip.is_link_local:
                    continue
                assert any(ip in n for n in docs), (dev, a.local)
                if a.local not in (ANY4.split("/")[0], ANY6.split("/")[0]):
                    assert a.local not in seen
                    seen.add(a.local)


def test_seeds_nonzero_and_distinct():
    sim = SimFabric()
    seeds = [sim.hash_settings(d).seed for d in sim.devices]
    assert all(seeds) and len(set(seeds)) == len(seeds)
    assert all(sim.hash_settings(d).policy == 1 for d in sim.devices)


@pytest.mark.parametrize("spine", ["spine01", "spine02"])
def test_spines_have_four_way_ecmp_to_anycast(spine):
    sim = SimFabric()
    for dst in (ANY4, ANY6):
        r = route(sim, spine, dst)
        assert r is not None and r.protocol == "bgp" and r.metric == 20
        assert len(r.nexthops) == 4
        assert sorted(peer_of(sim, spine, nh.dev) for nh in r.nexthops) == ["leaf01", "leaf02", "leaf03", "leaf04"]
        assert all(nh.weight == 1 for nh in r.nexthops)


def test_leaf_routes_anycast_to_its_server():
    sim = SimFabric()
    devs = nh_devs(sim, "leaf03")
    assert len(devs) == 1 and peer_of(sim, "leaf03", devs[0]) == "server03"
    nh = route(sim, "leaf03", ANY4).nexthops[0]  # type: ignore[union-attr]
    server_addr = [a.local for i in sim.interfaces("server03") if i.name == "eth0" for a in i.addresses
                   if a.family == 4][0]
    assert nh.gateway == server_addr


def test_fail_leaf03_then_restore():
    sim = SimFabric()
    g0 = sim.generation
    desc = sim.fail_device("leaf03")
    assert "leaf03" in desc and sim.generation == g0 + 1
    for spine in ("spine01", "spine02"):
        peers = sorted(peer_of(sim, spine, d) for d in nh_devs(sim, spine))
        assert peers == ["leaf01", "leaf02", "leaf04"]
        port = [i for i in sim.interfaces(spine) if i.name == "swp3"][0]
        assert "NO-CARRIER" in port.flags and port.operstate == "DOWN" and not port.carrier
        (a4,) = [a for a in port.addresses if a.family == 4]
        connected = route(sim, spine, str(ipaddress.ip_interface(f"{a4.local}/{a4.prefixlen}").network))
        assert connected is not None and connected.nexthops[0].flags == ("linkdown",)
        # leaf03's loopback is gone everywhere
        assert route(sim, spine, "198.18.0.5/32") is None
    assert not sim.is_up("leaf03")
    sim.restore_device("leaf03")
    for spine in ("spine01", "spine02"):
        assert len(nh_devs(sim, spine)) == 4
        assert route(sim, spine, "198.18.0.5/32") is not None
    assert sim.generation == g0 + 2


def test_withdraw_server02():
    sim = SimFabric()
    sim.withdraw("server02")
    assert route(sim, "leaf02", ANY4) is None and route(sim, "leaf02", ANY6) is None
    for spine in ("spine01", "spine02"):
        assert sorted(peer_of(sim, spine, d) for d in nh_devs(sim, spine)) == ["leaf01", "leaf03", "leaf04"]
    # server02 itself is still reachable (its loopback), only the anycast went away
    assert route(sim, "spine01", "198.18.0.8/32") is not None
    sim.announce("server02")
    assert len(nh_devs(sim, "spine01")) == 4 and route(sim, "leaf02", ANY4) is not None


def test_leaf_can_take_anycast_back_from_spines_when_configured():
    sim = SimFabric(SimConfig(leaf_anycast_via_spines=True))
    sim.withdraw("server02")
    assert len(nh_devs(sim, "leaf02")) == 2  # via both spines
    assert len(nh_devs(sim, "spine01")) == 3  # spines still do not use leaf02


def test_fail_link_only_affects_that_link():
    sim = SimFabric()
    sim.fail_link("spine01", "leaf02")
    assert sorted(peer_of(sim, "spine01", d) for d in nh_devs(sim, "spine01")) == ["leaf01", "leaf03", "leaf04"]
    assert len(nh_devs(sim, "spine02")) == 4
    assert len(nh_devs(sim, "leaf02", "203.0.113.0/24")) == 1  # clients now only via spine02
    sim.restore_link("leaf02", "spine01")
    assert len(nh_devs(sim, "spine01")) == 4


def test_all_servers_withdrawn_removes_the_route():
    sim = SimFabric()
    for s in ("server01", "server02", "server03", "server04"):
        sim.withdraw(s)
    assert route(sim, "spine01", ANY4) is None


def test_set_weight():
    sim = SimFabric()
    sim.set_weight("spine01", ANY4, "swp2", 3)
    r = route(sim, "spine01", ANY4)
    assert [nh.weight for nh in r.nexthops] == [1, 3, 1, 1]  # type: ignore[union-attr]
    assert [nh.weight for nh in route(sim, "spine02", ANY4).nexthops] == [1, 1, 1, 1]  # type: ignore[union-attr]
    assert [nh.weight for nh in route(sim, "spine01", ANY6).nexthops] == [1, 1, 1, 1]  # type: ignore[union-attr]


def test_bad_names_raise():
    sim = SimFabric()
    with pytest.raises(SimError):
        sim.fail_device("leaf99")
    with pytest.raises(SimError):
        sim.withdraw("leaf01")
    with pytest.raises(SimError):
        sim.fail_link("leaf01", "leaf02")
    with pytest.raises(SimError):
        sim.set_weight("spine01", ANY4, "swp9", 2)
    with pytest.raises(SimError):
        sim.apply("reboot", "leaf01")


def test_snapshot_and_device_state():
    sim = SimFabric()
    sim.fail_device("leaf03")
    snap = sim.snapshot(taken_at_ms=123)
    assert snap.taken_at_ms == 123 and set(snap.devices) == set(sim.devices)
    assert snap.devices["leaf03"].health.status.value == "error" and snap.devices["leaf03"].routes == ()
    spine = snap.devices["spine01"]
    assert spine.health.status.value == "ok" and spine.collected_at_ms == 123
    assert spine.routes == tuple(sim.routes("spine01")) and spine.hash == sim.hash_settings("spine01")
    assert snap.anycast_prefixes == (ANY4, ANY6)


def test_snapshots_diff_into_the_events_of_a_failure():
    from anycast_tui.model.events import diff
    from anycast_tui.model.types import EventKind

    sim = SimFabric(SimConfig(resilient=True), clock=Clock())
    before = sim.snapshot(1)
    sim.fail_device("leaf03")
    events = {(e.device, e.kind, e.subject) for e in diff(before, sim.snapshot(2))}
    assert ("leaf03", EventKind.DEVICE_UNREACHABLE, "leaf03") in events
    assert ("spine01", EventKind.LINK_DOWN, "swp3") in events
    assert ("spine02", EventKind.NEXTHOP_REMOVED, ANY4) in events
    assert ("spine01", EventKind.BUCKETS_CHANGED, f"group {GROUP4_ID}") in events


# --------------------------------------------------------------------------- resilient groups


def counts(sim: SimFabric, spine: str) -> Counter:
    return Counter(b.nhid for b in sim.buckets(spine) if b.group_id == GROUP4_ID)


def test_resilient_spines_use_nexthop_objects_and_32_buckets():
    sim = SimFabric(SimConfig(resilient=True), clock=Clock())
    r = route(sim, "spine01", ANY4)
    assert r is not None and r.nhid == GROUP4_ID and len(r.nexthops) == 4
    table = sim.nexthops("spine01")
    (g4,) = [g for g in table.groups if g.id == GROUP4_ID]
    assert g4.type == "resilient" and g4.buckets == 32 and [m.id for m in g4.members] == [1, 2, 3, 4]
    assert counts(sim, "spine01") == {1: 8, 2: 8, 3: 8, 4: 8}
    assert sim.nexthops("leaf01").groups == ()  # leaves stay plain
    assert len(route(sim, "leaf01", ANY4).nexthops) == 1  # type: ignore[union-attr]


def test_resilient_removal_moves_only_the_removed_members_buckets():
    clock = Clock()
    sim = SimFabric(SimConfig(resilient=True), clock=clock)
    before = [b.nhid for b in sim.buckets("spine01") if b.group_id == GROUP4_ID]
    clock.t += 5
    sim.fail_device("leaf03")
    after = [b.nhid for b in sim.buckets("spine01") if b.group_id == GROUP4_ID]
    for old, new in zip(before, after):
        if old != 3:
            assert new == old  # untouched
        else:
            assert new in (1, 2, 4)
    c = counts(sim, "spine01")
    assert 3 not in c and sorted(c.values()) == [10, 11, 11]


def test_resilient_addition_waits_for_idle_buckets():
    clock = Clock()
    sim = SimFabric(SimConfig(resilient=True, idle_timer=120), clock=clock)
    clock.t += 5
    sim.fail_device("leaf03")
    moved = [b.nhid for b in sim.buckets("spine01") if b.group_id == GROUP4_ID]
    clock.t += 15
    sim.restore_device("leaf03")  # 15 s later: the buckets moved at +5 s were busy... but never used since:
    c = counts(sim, "spine01")
    # a bucket never used since its last migration is idle at once (kernel rule), so leaf03 gets 8 back
    assert c == {1: 8, 2: 8, 3: 8, 4: 8}
    assert moved  # sanity


def test_resilient_addition_leaves_busy_buckets_alone():
    clock = Clock()
    sim = SimFabric(SimConfig(resilient=True, idle_timer=120), clock=clock)
    clock.t += 5
    sim.fail_device("leaf03")
    clock.t += 1
    # traffic: ip route get for many flows marks (almost) every bucket busy
    for sport in range(2000, 2400):
        sim.route_get("spine01", "192.0.2.53", src="203.0.113.7", iif="swp5", proto=6, sport=sport, dport=53)
    clock.t += 10
    sim.restore_device("leaf03")
    c = counts(sim, "spine01")
    assert c.get(3, 0) < 8  # busy buckets stay where they are until idle
    clock.t += 121
    c = counts(sim, "spine01")
    assert c == {1: 8, 2: 8, 3: 8, 4: 8}  # after the idle timer, the group is balanced again


def test_resilient_withdraw_and_weight():
    clock = Clock()
    sim = SimFabric(SimConfig(resilient=True), clock=clock)
    sim.withdraw("server04")
    assert 4 not in counts(sim, "spine01")
    sim.set_weight("spine01", ANY4, "swp1", 2)
    (g4,) = [g for g in sim.nexthops("spine01").groups if g.id == GROUP4_ID]
    assert [(m.id, m.weight) for m in g4.members] == [(1, 2), (2, 1), (3, 1)]


def test_a_spine_with_more_ports_than_a_mac_byte_still_has_unique_valid_macs():
    """Port MACs put the ifindex in one byte; a spine facing over 253 leaves has ifindex 256 and up."""
    sim = SimFabric(SimConfig(spines=1, leaves=260, servers_per_leaf=1))
    macs = [i.mac for i in sim.device_state("spine01").interfaces]
    assert len(macs) == 262 and len(set(macs)) == len(macs)
    assert all(len(m.split(":")) == 6 and all(len(b) == 2 for b in m.split(":")) for m in macs)
