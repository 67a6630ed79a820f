"""The simulated fabric at 2,000 leaves: it builds, routes as BGP multipath converges, and a device answers
what the same device of a small fabric answers where the fabric's size does not enter."""

from __future__ import annotations

import ipaddress

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import Role
from anycast_tui.parse.sysctl import HASH_SYSCTLS

LEAVES = 2000
ANY4 = "192.0.2.53/32"


def lo4(sim: SimFabric, name: str) -> str:
    """The device's IPv4 loopback /32, read from its own ``ip addr`` model (not from the numbering rule)."""
    lo = sim.interfaces(name)[0]
    return next(f"{a.local}/32" for a in lo.addresses if a.family == 4 and a.local != "127.0.0.1")


def main_route(sim: SimFabric, dev: str, dst: str):  # noqa: ANN201
    return next((r for r in sim.routes(dev, 4, table="main") if r.dst == dst), None)


def test_a_2000_leaf_fabric_builds_and_routes_every_loopback_over_every_spine():
    sim = SimFabric(SimConfig(spines=4, leaves=LEAVES))
    assert len(sim.devices) == 4 + 2 * LEAVES
    roles = sim.roles()
    # leaf0001 reaches every other device's loopback by BGP: the spines and leaves over all 4 spines
    # (each next hop the spine's address on the link to leaf0001), its own server directly
    far = f"leaf{LEAVES}"
    bgp = {r.dst: r for r in sim.routes("leaf01", 4, table="main") if r.protocol == "bgp"}
    assert len(bgp) == len(sim.devices) - 1 + 1 + 1  # every other loopback, the client net, the anycast /32
    r = bgp[lo4(sim, far)]
    spine_side = {}
    for port in sim.ports("leaf01"):
        peer = sim.peer("leaf01", port)
        if peer is not None and roles[peer] is Role.SPINE:
            spine_side[port] = peer
    assert sorted(nh.dev for nh in r.nexthops) == sorted(spine_side)
    for nh in r.nexthops:
        spine = spine_side[nh.dev]
        spine_ifs = {i.name: i for i in sim.interfaces(spine)}
        port_to_leaf = next(p for p in sim.ports(spine) if sim.peer(spine, p) == "leaf01")
        assert nh.gateway in {a.local for a in spine_ifs[port_to_leaf].addresses if a.family == 4}
    # a server's loopback behind another leaf: over the spines too; leaf0001's own server: one hop
    assert len(bgp[lo4(sim, f"server{LEAVES}")].nexthops) == 4
    assert [nh.dev for nh in bgp[lo4(sim, "server01")].nexthops] == ["swp5"]
    # spine01 sends the anycast prefix to every leaf
    assert len(main_route(sim, "spine01", ANY4).nexthops) == LEAVES


def test_a_failure_in_a_2000_leaf_fabric_converges():
    sim = SimFabric(SimConfig(spines=4, leaves=LEAVES))
    far, far_lo, server_lo = f"leaf{LEAVES}", lo4(sim, f"leaf{LEAVES}"), lo4(sim, f"server{LEAVES}")
    assert main_route(sim, "spine01", far_lo) is not None
    sim.fail_device(far)
    assert main_route(sim, "spine01", far_lo) is None
    assert main_route(sim, "leaf01", server_lo) is None  # its only way in was the failed leaf
    assert len(main_route(sim, "spine01", ANY4).nexthops) == LEAVES - 1
    sim.restore_device(far)
    assert len(main_route(sim, "leaf01", server_lo).nexthops) == 4
    assert len(main_route(sim, "spine01", ANY4).nexthops) == LEAVES


def test_a_leaf_answers_as_in_a_small_fabric_where_size_does_not_enter():
    """leaf01's links, hash sysctls and its path to spine01's loopback (over link 0 in both) do not depend on
    how many leaves there are."""
    small, big = SimFabric(SimConfig(spines=4, leaves=4)), SimFabric(SimConfig(spines=4, leaves=LEAVES))
    spine01 = str(ipaddress.ip_interface(lo4(small, "spine01")).ip)
    assert lo4(big, "spine01") == lo4(small, "spine01")
    for line in ("ip -j link show", "ip link show",
                 "sysctl -n " + " ".join(HASH_SYSCTLS),
                 f"ip route get {spine01}", f"ip -j route get {spine01}"):
        a, b = small.handle("leaf01", line), big.handle("leaf01", line)
        assert a.exit_status == 0, (line, a.stderr)
        assert (b.stdout, b.stderr, b.exit_status) == (a.stdout, a.stderr, a.exit_status), line
