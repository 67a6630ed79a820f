"""render.py against the kernel: the records our parsers make of the kernel's
``ip -j`` output must render back to exactly what iproute2 prints, text and
JSON, byte for byte.  This is what lets the simulator speak iproute2."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from anycast_tui.lab import netns as nsmod
from anycast_tui.lab import render
from anycast_tui.parse.addr import parse_ip_addr_json
from anycast_tui.parse.link import parse_ip_link_json
from anycast_tui.parse.nexthop import parse_ip_nexthop_bucket_json, parse_ip_nexthop_json
from anycast_tui.parse.route import parse_ip_route_json

pytestmark = pytest.mark.kernel

SETUP = [
    "link set lo up",
    "link add swp1 type veth peer name swp1p",
    "link add swp2 type veth peer name swp2p",
    "link add swp3 type veth peer name swp3p",
    "link add swp4 type veth peer name swp4p",
    "link set swp1 up",
    "link set swp2 up",
    "link set swp3 up",
    "link set swp4 up",
    "link set swp1p up",
    "link set swp2p up",
    "link set swp3p up",
    "addr add 198.18.0.1/32 dev lo",
    "addr add 2001:db8::1/128 dev lo",
    "addr add 198.19.0.0/31 dev swp1",
    "addr add 198.19.0.2/31 dev swp2",
    "addr add 198.19.0.4/31 dev swp3",
    "addr add 198.19.0.6/31 dev swp4",
    "addr add 2001:db8:1::/127 dev swp1 nodad",
    "addr add 2001:db8:1::2/127 dev swp2 nodad",
    "route add 192.0.2.53/32 proto bgp metric 20 nexthop via 198.19.0.1 dev swp1 weight 1"
    " nexthop via 198.19.0.3 dev swp2 weight 3 nexthop via 198.19.0.7 dev swp4 onlink",
    "route add 2001:db8:53::53/128 proto bgp metric 20 nexthop via 2001:db8:1::1 dev swp1"
    " nexthop via 2001:db8:1::3 dev swp2 weight 2",
    "nexthop add id 1 via 198.19.0.1 dev swp1",
    "nexthop add id 2 via 198.19.0.3 dev swp2",
    "nexthop add id 3 via 198.19.0.5 dev swp3 proto bgp",
    "nexthop add id 4 blackhole",
    "nexthop add id 10 group 1/2",
    "nexthop add id 20 group 1/2,2/3 type resilient buckets 8 idle_timer 120 unbalanced_timer 0",
    "route add 192.0.2.54/32 nhid 20 proto bgp metric 20",
    "route add 192.0.2.55/32 nhid 10",
    "route add 192.0.2.56/32 nhid 3",
    "nexthop add id 30 group 2",
    "route add 192.0.2.57/32 nhid 30",
    "nexthop add id 40 via 2001:db8:1::1 dev swp1",
    "nexthop add id 41 group 40",
    "route add 2001:db8:57::57/128 nhid 41",
    "route add 203.0.113.0/24 via 198.19.0.1 dev swp1 proto static metric 100",
    "route add blackhole 192.0.2.0/24",
    "route add default via 198.19.0.3",
]


# ----------------------------------------------------------------- the router


@pytest.fixture
def router(netns):
    ns = netns.add("r1")
    for key in ("net.ipv6.conf.all.addr_gen_mode", "net.ipv6.conf.default.addr_gen_mode"):
        nsmod.sysctl(ns, key, 1)  # no link-local addresses: nothing changes under us (DAD)
    nsmod.sysctl(ns, "net.ipv4.ip_forward", 1)
    nsmod.sysctl(ns, "net.ipv4.fib_multipath_hash_policy", 1)
    nsmod.batch(ns, SETUP)
    nsmod.ip(ns, "link", "set", "swp4p", "down")  # swp4 loses carrier: linkdown next hops, NO-CARRIER
    return ns


def _group_ids(ns: str) -> set[int]:
    return {g.id for g in parse_ip_nexthop_json(nsmod.ip(ns, "-j", "nexthop", "show")).groups}


@pytest.mark.parametrize("family", [4, 6])
def test_routes_table_all(router, family):
    args = (f"-{family}", "route", "show", "table", "all")
    text = nsmod.ip(router, *args)
    raw = nsmod.ip(router, "-j", *args)
    routes = parse_ip_route_json(raw, family=family)
    assert "\tnexthop" in text and ("linkdown" in text or family == 6)
    if family == 6:  # IPv6 lists a group's next hops even when there is one
        one = "2001:db8:57::57 nhid 41 metric 1024 pref medium\n\tnexthop via 2001:db8:1::1 dev swp1 weight 1 \n"
        assert one in text
    gids = _group_ids(router)
    assert render.render_routes_json(routes, groups=gids) == raw
    assert render.render_routes_text(routes, groups=gids) == text


def test_routes_main_table(router):
    text = nsmod.ip(router, "route", "show")
    raw = nsmod.ip(router, "-j", "route", "show")
    routes = parse_ip_route_json(raw, family=4)
    assert "192.0.2.57 nhid 30 via 198.19.0.3 dev swp2 \n" in text  # a one-member group: one path
    assert "192.0.2.56 nhid 3 via 198.19.0.5 dev swp3 \n" in text  # a single nexthop object
    gids = _group_ids(router)
    assert render.render_routes_text(routes, groups=gids) == text
    assert render.render_routes_json(routes, groups=gids) == raw


def test_nexthops(router):
    text = nsmod.ip(router, "nexthop", "show")
    raw = nsmod.ip(router, "-j", "nexthop", "show")
    table = parse_ip_nexthop_json(raw)
    assert any(g.type == "resilient" for g in table.groups) and any(o.blackhole for o in table.objects)
    assert render.render_nexthops_json(table.objects, table.groups) == raw
    assert render.render_nexthops_text(table.objects, table.groups) == text


def test_buckets(router):
    raw = nsmod.ip(router, "-j", "nexthop", "bucket", "show")
    text = nsmod.ip(router, "nexthop", "bucket", "show")
    buckets = parse_ip_nexthop_bucket_json(raw)
    assert len(buckets) == 8
    assert render.render_buckets_json(buckets) == raw
    # idle_time runs on between the two dumps: take the text dump's values, check the format.
    idle = [float(m) for m in re.findall(r"idle_time (\S+)", text)]
    again = [dataclasses.replace(b, idle_time=t) for b, t in zip(buckets, idle)]
    assert render.render_buckets_text(again) == text


@pytest.mark.parametrize("what", ["link", "addr"])
def test_links_and_addrs(router, what):
    text = nsmod.ip(router, what, "show")
    raw = nsmod.ip(router, "-j", what, "show")
    ifs = (parse_ip_link_json if what == "link" else parse_ip_addr_json)(raw)
    assert any("NO-CARRIER" in i.flags for i in ifs)
    if what == "link":
        assert render.render_links_json(ifs) == raw
        assert render.render_links_text(ifs) == text
    else:
        assert render.render_addrs_json(ifs) == raw
        assert render.render_addrs_text(ifs) == text


@pytest.mark.parametrize("args", [
    ("route", "get", "192.0.2.53"),
    ("route", "get", "192.0.2.53", "from", "198.18.0.1", "ipproto", "udp", "sport", "1234", "dport", "53"),
    ("route", "get", "192.0.2.54", "from", "203.0.113.5", "iif", "swp1", "ipproto", "tcp", "sport", "999",
     "dport", "53"),
    ("route", "get", "198.19.0.0"),
    ("-6", "route", "get", "2001:db8:53::53"),
    ("-6", "route", "get", "2001:db8:53::53", "from", "2001:db8::1", "ipproto", "tcp", "sport", "5", "dport", "53"),
])
def test_route_get(router, args):
    family = 6 if args[0] == "-6" else 4
    raw = nsmod.ip(router, "-j", *args)
    text = nsmod.ip(router, *args)
    (route,) = parse_ip_route_json(raw, family=family)
    assert render.render_route_get_json(route) == raw
    assert render.render_route_get_text(route) == text


# ----------------------------------------------------------------- the simulator against a kernel twin
# A namespace built from the simulator's own records for spine01 (ports, addresses, anycast routes or
# resilient group, hash seed) must answer ``ip route get`` exactly as the simulator does, and a resilient
# group must evolve the same way when a leaf fails.

from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402

SPINE = "spine01"
ANY4, ANY6 = "192.0.2.53/32", "2001:db8:53::53/128"


def _twin(netns, sim: SimFabric) -> tuple[str, str]:
    r, p = netns.add("spine"), netns.add("peers")
    hs = sim.hash_settings(SPINE)
    for key, val in [("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                     ("net.ipv4.conf.all.rp_filter", 0), ("net.ipv4.conf.default.rp_filter", 0),
                     ("net.ipv4.fib_multipath_hash_policy", hs.policy),
                     ("net.ipv6.fib_multipath_hash_policy", hs.policy6),
                     ("net.ipv4.fib_multipath_hash_seed", hs.seed), ("net.ipv6.conf.all.accept_dad", 0),
                     ("net.ipv6.conf.default.accept_dad", 0)]:
        nsmod.sysctl(r, key, val)
    cmds, peer_cmds = [], []
    for i in sim.interfaces(SPINE):
        if i.name == "lo":
            cmds += [f"addr add {a.local}/{a.prefixlen} dev lo" for a in i.addresses
                     if a.scope == "global"]
            continue
        peer = "p" + i.name
        nsmod.run(None, "ip", "link", "add", i.name, "netns", r, "type", "veth", "peer", "name", peer, "netns", p)
        peer_cmds.append(f"link set {peer} up")
        cmds.append(f"link set {i.name} up")
        for a in i.addresses:
            if a.scope == "global":
                brd = dict(a.extra).get("broadcast")
                cmds.append(f"addr add {a.local}/{a.prefixlen} {'brd ' + brd + ' ' if brd else ''}dev {i.name}"
                            + (" nodad" if a.family == 6 else ""))
    table = sim.nexthops(SPINE)
    for o in table.objects:
        cmds.append(f"nexthop add id {o.id} via {o.gateway} dev {o.dev} proto {o.protocol}")
    for g in table.groups:
        members = "/".join(f"{m.id},{m.weight}" for m in g.members)
        cmds.append(f"nexthop add id {g.id} group {members} type resilient buckets {g.buckets} "
                    f"idle_timer {g.idle_timer} unbalanced_timer {g.unbalanced_timer} proto {g.protocol}")
    for r_ in sim.routes(SPINE, table="main"):
        if r_.dst in (ANY4, ANY6):
            cmds.append(_route_add(r_))
    nsmod.batch(p, peer_cmds)
    nsmod.batch(r, cmds)
    return r, p


def _sync(router: str, sim: SimFabric) -> None:
    """Replay the simulator's converged state into the twin, as zebra would (objects, groups, routes)."""
    have = {e["id"] for e in json.loads(nsmod.ip(router, "-j", "nexthop", "show"))}
    table = sim.nexthops(SPINE)
    cmds = [f"nexthop add id {o.id} via {o.gateway} dev {o.dev} proto {o.protocol}"
            for o in table.objects if o.id not in have]
    cmds += [f"nexthop replace id {g.id} group {'/'.join(f'{m.id},{m.weight}' for m in g.members)} type resilient"
             for g in table.groups]
    cmds += [_route_add(r) for r in sim.routes(SPINE, table="main") if r.dst in (ANY4, ANY6)]
    nsmod.batch(router, cmds)


def _route_add(r) -> str:
    head = f"route replace {r.dst} proto {r.protocol} metric {r.metric}"
    if r.nhid is not None:
        return f"{head} nhid {r.nhid}"
    return head + "".join(f" nexthop via {nh.gateway} dev {nh.dev} weight {nh.weight}" for nh in r.nexthops)


GETS = ([f"route get 192.0.2.53 from 203.0.113.{7 + s % 50} iif swp5 ipproto tcp sport {s} dport 53"
         for s in range(33000, 33040)]
        + [f"route get 192.0.2.53 ipproto udp sport {s} dport 53" for s in range(5000, 5010)]
        + [f"-6 route get 2001:db8:53::53 ipproto tcp sport {s} dport 443" for s in range(7000, 7010)])


def _compare_gets(router: str, sim: SimFabric) -> set[str]:
    devs = set()
    for g in GETS:
        for js in (True, False):
            args = (["-j"] if js else []) + g.split()
            want = nsmod.ip(router, *args)
            got = sim.handle(SPINE, "ip " + " ".join(args))
            assert (got.exit_status, got.stdout) == (0, want), g
            if js and "iif" in g:
                devs.add(json.loads(want)[0]["dev"])
    return devs


def _wait_for(cond, what: str, limit_s: float = 10.0) -> None:
    """Poll a kernel condition (carrier changes go through linkwatch, asynchronously)."""
    import time

    end = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("resilient", [False, True])
def test_sim_route_get_equals_kernel_twin(netns, resilient):
    sim = SimFabric(SimConfig(resilient=resilient))
    router, _ = _twin(netns, sim)
    assert _compare_gets(router, sim) == {"swp1", "swp2", "swp3", "swp4"}
    sim.set_weight(SPINE, ANY4, "swp2", 3)  # UCMP: plain routes re-hash, resilient groups move idle buckets
    _sync(router, sim)
    assert _compare_gets(router, sim) == {"swp1", "swp2", "swp3", "swp4"}


def test_sim_resilient_group_evolves_like_the_kernel(netns):
    sim = SimFabric(SimConfig(resilient=True))
    router, peers = _twin(netns, sim)

    def kernel_buckets() -> list[tuple[int, int, int]]:
        return [(b.group_id, b.index, b.nhid) for b in
                parse_ip_nexthop_bucket_json(nsmod.ip(router, "-j", "nexthop", "bucket", "show"))]

    def sim_buckets() -> list[tuple[int, int, int]]:
        return [(b.group_id, b.index, b.nhid) for b in sim.buckets(SPINE)]

    assert kernel_buckets() == sim_buckets()
    _compare_gets(router, sim)  # same flows: the same buckets are busy on both sides
    # leaf03 fails: carrier goes on swp3; the kernel drops nexthops 3 and 103 from both groups by itself
    nsmod.ip(peers, "link", "set", "pswp3", "down")
    _wait_for(lambda: "id 3 " not in nsmod.ip(router, "nexthop", "show"), "linkwatch to flush nexthop 3")
    sim.fail_device("leaf03")
    assert kernel_buckets() == sim_buckets()
    assert 3 not in {n for _, _, n in sim_buckets()}
    _compare_gets(router, sim)
    # leaf03 is back: zebra re-adds the nexthops and replaces the groups (joiner last)
    nsmod.ip(peers, "link", "set", "pswp3", "up")
    _wait_for(lambda: "LOWER_UP" in nsmod.ip(router, "link", "show", "swp3"), "carrier on swp3")
    sim.restore_device("leaf03")
    _sync(router, sim)
    assert kernel_buckets() == sim_buckets()
    _compare_gets(router, sim)
