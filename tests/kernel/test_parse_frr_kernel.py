"""Real FRR (zebra + staticd) in a namespace: its ``show ip route`` (JSON and text) parse to the kernel's FIB."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from anycast_tui.lab import frr as labfrr
from anycast_tui.lab import netns as nsx
from anycast_tui.parse.frr import parse_frr_bgp_json, parse_frr_route, parse_frr_route_json
from anycast_tui.parse.route import parse_ip_route_json

from frrns import start_frr, stop_frr, wait_until

pytestmark = pytest.mark.kernel

STATIC = """hostname r
ip route 192.0.2.53/32 198.18.1.2
ip route 192.0.2.53/32 198.18.2.2
ip route 192.0.2.53/32 198.18.3.2
ip route 192.0.2.60/32 blackhole
ip route 198.51.100.0/24 192.0.2.53
!
"""
PREFIXES = ("192.0.2.53/32", "192.0.2.60/32", "198.51.100.0/24")


def _vtysh(rundir: Path, command: str) -> str:
    proc = subprocess.run(["vtysh", "--vty_socket", str(rundir), "-c", command], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def frr_router(netns):
    why = labfrr.available()
    if why is not None:
        pytest.skip(why)
    r, peer = netns.add("r"), netns.add("p")
    for i in (1, 2, 3):
        nsx.ip(r, "link", "add", f"v{i}", "type", "veth", "peer", "name", f"p{i}", "netns", peer)
        nsx.ip(peer, "link", "set", f"p{i}", "up")
        nsx.ip(peer, "addr", "add", f"198.18.{i}.2/24", "dev", f"p{i}")
        nsx.ip(r, "addr", "add", f"198.18.{i}.1/24", "dev", f"v{i}")
        nsx.ip(r, "link", "set", f"v{i}", "up")
    rundir = Path("/run/anycast-tui/frr") / r
    try:
        start_frr(r, rundir, {"zebra": "hostname r\n!\n", "staticd": STATIC})
        wait_until(lambda: set(PREFIXES) <= {rt.dst for rt in parse_ip_route_json(nsx.ip(r, "-j", "route", "show"))},
                  "zebra installing the static routes")
        yield r, rundir
    finally:
        stop_frr(rundir)


def _fib(routes):
    return {r.dst: (r.type, sorted((nh.gateway, nh.dev, nh.weight) for nh in r.nexthops)) for r in routes
            if r.dst in PREFIXES}


def test_frr_json_and_text_match_the_kernel_fib(frr_router):
    ns, rundir = frr_router
    kernel = _fib(parse_ip_route_json(nsx.ip(ns, "-j", "route", "show")))
    assert set(kernel) == set(PREFIXES)
    from_json = parse_frr_route_json(_vtysh(rundir, "show ip route json"))
    from_text = parse_frr_route(_vtysh(rundir, "show ip route"))
    assert _fib(from_json) == kernel
    assert _fib(from_text) == kernel
    rec = next(r for r in from_json if r.dst == "198.51.100.0/24")
    assert all(("resolves", "192.0.2.53") in nh.extra for nh in rec.nexthops) and len(rec.nexthops) == 3
    ecmp = next(r for r in from_json if r.dst == "192.0.2.53/32")
    assert (ecmp.protocol, ecmp.table, dict(ecmp.extra)["distance"]) == ("static", "main", "1")


def _bgpd(asn: int, router_id: str, neighbors: dict[str, int], networks: list[str]) -> str:
    lines = ["frr defaults datacenter", "hostname x", f"router bgp {asn}", f" bgp router-id {router_id}",
             " no bgp ebgp-requires-policy", " no bgp network import-check", " bgp bestpath as-path multipath-relax",
             " timers bgp 1 3"]
    for ip, remote in neighbors.items():
        lines += [f" neighbor {ip} remote-as {remote}", f" neighbor {ip} timers connect 1",
                  f" neighbor {ip} advertisement-interval 0"]
    lines += [" address-family ipv4 unicast", *[f"  network {n}" for n in networks], "  maximum-paths 64",
              " exit-address-family", "!"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def bgp_pair(netns):
    """Router r (AS 65000) learns 192.0.2.53/32 from two servers (AS 65201, 65202): a 2-way BGP multipath."""
    why = labfrr.available()
    if why is not None:
        pytest.skip(why)
    r = netns.add("r")
    servers = [netns.add(f"s{i}") for i in (1, 2)]
    for i, s in enumerate(servers, 1):
        nsx.ip(r, "link", "add", f"v{i}", "type", "veth", "peer", "name", "up0", "netns", s)
        nsx.ip(r, "addr", "add", f"198.18.{i}.1/24", "dev", f"v{i}")
        nsx.ip(r, "link", "set", f"v{i}", "up")
        nsx.ip(s, "addr", "add", f"198.18.{i}.2/24", "dev", "up0")
        nsx.ip(s, "link", "set", "up0", "up")
        nsx.ip(s, "addr", "add", "192.0.2.53/32", "dev", "lo")
    dirs = [Path("/run/anycast-tui/frr") / n for n in (r, *servers)]
    try:
        start_frr(r, dirs[0], {"zebra": "hostname r\n!\n",
                            "bgpd": _bgpd(65000, "198.18.255.1", {"198.18.1.2": 65201, "198.18.2.2": 65202}, [])})
        for i, s in enumerate(servers, 1):
            start_frr(s, dirs[i], {"zebra": "hostname s\n!\n",
                                "bgpd": _bgpd(65200 + i, f"198.18.255.{10 + i}", {f"198.18.{i}.1": 65000},
                                              ["192.0.2.53/32"])})
        wait_until(lambda: len([nh for rt in parse_ip_route_json(nsx.ip(r, "-j", "route", "show"))
                               if rt.dst == "192.0.2.53/32" for nh in rt.nexthops]) == 2,
                  "a 2-way BGP multipath route in the kernel")
        yield r, dirs[0]
    finally:
        for d in dirs:
            stop_frr(d)


def test_real_bgp_multipath_state_and_routes(bgp_pair):
    ns, rundir = bgp_pair
    (state,) = [p for p in parse_frr_bgp_json(_vtysh(rundir, "show bgp ipv4 unicast json"))
                if p.prefix == "192.0.2.53/32"]
    assert (state.paths, state.valid, state.vrf) == (2, 2, "default")
    assert sorted(state.multipath) == ["198.18.1.2", "198.18.2.2"] and state.bestpath in state.multipath
    kernel = _fib(parse_ip_route_json(nsx.ip(ns, "-j", "route", "show")))["192.0.2.53/32"]
    for routes in (parse_frr_route_json(_vtysh(rundir, "show ip route json")),
                   parse_frr_route(_vtysh(rundir, "show ip route"))):
        (bgp,) = [r for r in routes if r.dst == "192.0.2.53/32"]
        assert bgp.protocol == "bgp" and (bgp.type, sorted((nh.gateway, nh.dev, nh.weight)
                                                            for nh in bgp.nexthops)) == kernel
