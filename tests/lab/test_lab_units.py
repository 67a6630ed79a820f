"""The lab's pure parts: addressing, the routing BGP would converge to, FRR config, SSH command filter."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from anycast_tui.collect.commands import ALLOWED_LINES, route_get
from anycast_tui.lab import frr, nslab
from anycast_tui.lab.labssh import allowed_argv
from anycast_tui.lab.nslab import ANYCAST, Down, build_topology, desired_routes

DOC = [ipaddress.ip_network(n) for n in ("198.18.0.0/15", "192.0.2.0/24", "203.0.113.0/24")]


def test_topology_size_names_and_seeds():
    t = build_topology(4, 16)
    assert Counter(n.role for n in t.nodes.values()) == {"spine": 4, "leaf": 16, "server": 16, "client": 1}
    assert len(t.links) == 4 * 16 + 16 + 4
    seeds = [n.seed for n in t.nodes.values()]
    assert len(set(seeds)) == len(seeds) and 0 not in seeds
    for ln in t.links:  # interface names are the peer's name, short enough for the kernel
        assert len(ln.a) <= 15 and len(ln.b) <= 15
    assert all(n.ns.startswith("atui-lab-") for n in t.nodes.values())


def test_addresses_are_documentation_ranges_and_unique():
    t = build_topology(8, 99)
    addrs = [n.loopback for n in t.nodes.values()] + [a for ln in t.links for a in (ln.a_ip, ln.b_ip)]
    assert len(set(addrs)) == len(addrs)
    for a in addrs:
        assert any(ipaddress.ip_address(a) in net for net in DOC), a
    for ln in t.links:  # each link is one /31
        assert ipaddress.ip_network(f"{ln.a_ip}/31", strict=False) == ipaddress.ip_network(f"{ln.b_ip}/31", strict=False)


def test_bad_size_and_prefix_refused():
    with pytest.raises(ValueError):
        build_topology(0, 4)
    with pytest.raises(ValueError):
        build_topology(2, 4, prefix="lab-")


def test_desired_routes_all_up():
    t = build_topology(2, 4)
    r = desired_routes(t, Down())
    assert [d for _, d in r["spine01"][f"{ANYCAST}/32"]] == ["leaf01", "leaf02", "leaf03", "leaf04"]
    assert [d for _, d in r["client"]["0.0.0.0/0"]] == ["spine01", "spine02"]
    assert r["leaf03"][f"{ANYCAST}/32"] == (("198.18.32.5", "server03"),)
    assert f"{ANYCAST}/32" not in r["server03"]  # the server has it on lo


def test_desired_routes_after_failures_and_drain():
    t = build_topology(2, 4)
    r = desired_routes(t, Down(devices=frozenset({"leaf03"})))
    assert "leaf03" not in r
    for s in ("spine01", "spine02"):
        assert [d for _, d in r[s][f"{ANYCAST}/32"]] == ["leaf01", "leaf02", "leaf04"]
        assert "198.18.1.3/32" not in r[s]
    r = desired_routes(t, Down(links=frozenset({"spine01-leaf02"})))
    assert [d for _, d in r["spine01"][f"{ANYCAST}/32"]] == ["leaf01", "leaf03", "leaf04"]
    assert [d for _, d in r["spine02"][f"{ANYCAST}/32"]] == ["leaf01", "leaf02", "leaf03", "leaf04"]
    assert [d for _, d in r["leaf02"]["0.0.0.0/0"]] == ["spine02"]
    r = desired_routes(t, Down(drained=frozenset({"server02"})))
    assert f"{ANYCAST}/32" not in r["leaf02"]
    assert [d for _, d in r["spine01"][f"{ANYCAST}/32"]] == ["leaf01", "leaf03", "leaf04"]
    assert "198.18.2.2/32" in r["spine01"]  # the drained server stays reachable


def test_resilient_route_lines_use_one_group():
    lines = nslab.route_lines(f"{ANYCAST}/32", (("198.18.17.1", "leaf01"), ("198.18.17.3", "leaf02")), resilient=True)
    assert any("type resilient buckets 128" in ln and "group " in ln for ln in lines)
    assert lines[-1] == f"route replace {ANYCAST}/32 nhid {nslab.RESILIENT_GROUP} proto static"


def test_bgpd_conf():
    t = build_topology(2, 4)
    spine = frr.bgpd_conf(t, t.node("spine01"))
    assert "router bgp 65000" in spine and "bgp bestpath as-path multipath-relax" in spine
    assert spine.count("remote-as 651") == 4 and "network 203.0.113.0/24" in spine
    server = frr.bgpd_conf(t, t.node("server03"))
    assert "router bgp 65203" in server and f"network {ANYCAST}/32" in server
    assert "neighbor 198.18.32.4 remote-as 65103" in server
    assert f"network {ANYCAST}/32" not in frr.bgpd_conf(t, t.node("server03"), drained=True)
    with pytest.raises(ValueError):
        frr.asn(t.node("client"))


@pytest.mark.parametrize("line", sorted(ALLOWED_LINES))
def test_ssh_allows_every_fixed_command(line):
    assert allowed_argv(line) is not None


def test_ssh_allows_validated_route_get():
    ok = route_get("192.0.2.53", src="203.0.113.9", iif="client", proto="tcp", sport=1000, dport=8053).line
    assert allowed_argv(ok) == ok.split()


@pytest.mark.parametrize("line", [
    "", "rm -rf /", "ip -j route show table all; reboot", "ip link set lo down", "sh -c id",
    "ip -j route get 192.0.2.53 from 203.0.113.9 iif $(id)", "ip -j route get 192.0.2.53 dport 99999",
    "ip -j route get 192.0.2.53 from", "ip -j route get 192.0.2.53 table 5", "ip -j route get nothost",
    "ip -j route get 192.0.2.53 ipproto udp sport 1 dport 2 && id", "ip -j -4 route show table all x",
])
def test_ssh_refuses_anything_else(line):
    assert allowed_argv(line) is None


def test_traffic_flows_are_bounded_and_lab_only():
    from anycast_tui.lab import traffic

    flows = traffic.make_flows(3, 2)
    assert [f.proto for f in flows] == [6, 6, 6, 17, 17]
    assert len({(f.src, f.sport) for f in flows}) == 5
    with pytest.raises(ValueError):
        traffic.make_flows(traffic.MAX_FLOWS, 1)
    with pytest.raises(ValueError):
        traffic.run_client([traffic.LabFlow(6, "10.0.0.1", 2000)], 1)  # not a lab client address
    with pytest.raises(ValueError):
        traffic.run_client([traffic.LabFlow(1, "203.0.113.9", 2000)], 1)
    with pytest.raises(ValueError):
        traffic.run_client([], 101)
