"""Parsers against the real kernel: a namespace router, its outputs in text and JSON, equal records."""

from __future__ import annotations

import dataclasses

import pytest

from anycast_tui.collect.commands import HASH_SYSCTLS
from anycast_tui.lab import netns as nsx
from anycast_tui.model.types import Device, GroupMember, Health, Interface, Nexthop, Route
from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
from anycast_tui.parse.device import build_device_state
from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json
from anycast_tui.parse.nexthop import (
    parse_ip_nexthop,
    parse_ip_nexthop_bucket,
    parse_ip_nexthop_bucket_json,
    parse_ip_nexthop_json,
)
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json
from anycast_tui.parse.sysctl import parse_hash_sysctls

pytestmark = pytest.mark.kernel

SETUP = [
    "addr add 198.18.1.1/24 dev v1", "addr add 198.18.2.1/24 dev v2", "addr add 198.18.3.1/24 dev v3",
    "addr add 198.18.4.1/24 dev d0", "addr add 198.18.255.1/32 dev lo",
    "addr add 2001:db8:1::1/64 dev v1 nodad", "addr add 2001:db8:2::1/64 dev v2 nodad",
    "route add 192.0.2.53/32 nexthop via 198.18.1.2 dev v1 weight 3 nexthop via 198.18.2.2 dev v2 weight 1 "
    "nexthop via 198.18.3.2 dev v3 weight 2",
    "route add 192.0.2.54/32 via 198.18.3.2 dev v3",
    "route add 192.0.2.55/32 via 198.18.9.9 dev v1 onlink",
    "route add 192.0.2.91/32 nexthop via 198.18.4.2 dev d0 nexthop via 198.18.1.2 dev v1",
    "route add blackhole 192.0.2.60/32", "route add unreachable 192.0.2.61/32", "route add prohibit 192.0.2.62/32",
    "route add throw 192.0.2.63/32",
    "route add 192.0.2.64/32 via 198.18.1.2 table 100 proto static metric 50",
    "route add unreachable default table 100 metric 4278198272",
    "route add 192.0.2.70/32 via inet6 fe80::1 dev v1",
    "route add 192.0.2.100/32 via 198.18.1.2 mtu 1400 advmss 1360 rtt 10ms initcwnd 10 congctl cubic features ecn "
    "realm 5 src 198.18.1.1",
    "route add 2001:db8:53::/64 nexthop via 2001:db8:1::2 dev v1 weight 2 nexthop via 2001:db8:2::2 dev v2",
    "route add 2001:db8:99::/64 via 2001:db8:1::2 mtu 1400 pref high",
    "route add 2001:db8:98::/64 from 2001:db8:1::/64 via 2001:db8:1::2",
    "route add unreachable ::/0 table 100",
    "nexthop add id 1 via 198.18.1.2 dev v1", "nexthop add id 2 via 198.18.2.2 dev v2", "nexthop add id 3 blackhole",
    "nexthop add id 10 group 1/2,3",
    "nexthop add id 11 group 1/2 type resilient buckets 8 idle_timer 120 unbalanced_timer 0",
    "nexthop add id 20 via 198.18.1.2 fdb", "nexthop add id 21 via 198.18.2.2 fdb", "nexthop add id 22 group 20/21 fdb",
    "nexthop add id 23 dev v1", "nexthop add id 24 via 198.18.1.2 dev v1 proto bgp",
    "route add 192.0.2.80/32 nhid 10", "route add 192.0.2.81/32 nhid 11", "route add 192.0.2.82/32 nhid 1",
]


def build_router(netns) -> str:
    r1, a, b = netns.add("r1"), netns.add("a"), netns.add("b")
    nsx.veth(r1, "v1", a, "p1")
    nsx.veth(r1, "v2", b, "p2")
    nsx.veth(r1, "v3", b, "p3")
    nsx.veth(r1, "d0", a, "p4")
    nsx.ip(b, "link", "set", "p3", "down")  # v3: carrier down -> linkdown
    nsx.batch(r1, SETUP)
    nsx.ip(r1, "link", "set", "d0", "down")  # admin down -> its next hop is dead
    nsx.sysctl(r1, "net.ipv4.fib_multipath_hash_seed", 4242)
    return r1


def capture(r1: str, *args: str) -> str:
    return nsx.ip(r1, *args)


def drop_extra(items, keys):
    return [dataclasses.replace(i, extra=tuple(e for e in i.extra if e[0] not in keys)) for i in items]


def test_routes_text_equals_json(netns):
    r1 = build_router(netns)
    for fam in ("-4", "-6"):
        for detail in ((), ("-d",)):
            text = parse_ip_route(capture(r1, *detail, fam, "route", "show", "table", "all"))
            js = parse_ip_route_json(capture(r1, "-j", *detail, fam, "route", "show", "table", "all"))
            assert text == js, (fam, detail)
            assert len(text) > 8
    oneline = parse_ip_route(capture(r1, "-o", "route", "show", "table", "all"))
    assert oneline == parse_ip_route(capture(r1, "route", "show", "table", "all"))

    routes = {(r.table, r.dst): r for r in parse_ip_route_json(capture(r1, "-j", "route", "show", "table", "all"))}
    mp = routes[("main", "192.0.2.53/32")]
    assert [(nh.gateway, nh.dev, nh.weight, nh.flags) for nh in mp.nexthops] == [
        ("198.18.1.2", "v1", 3, ()), ("198.18.2.2", "v2", 1, ()), ("198.18.3.2", "v3", 2, ("linkdown",))]
    assert routes[("main", "192.0.2.54/32")].nexthops == (Nexthop("198.18.3.2", "v3", 1, ("linkdown",)),)
    assert routes[("main", "192.0.2.55/32")].nexthops[0].onlink
    dead = routes[("main", "192.0.2.91/32")].nexthops
    assert dead[0].dead and dead[0].linkdown and not dead[1].dead
    for dst, rtype in (("192.0.2.60/32", "blackhole"), ("192.0.2.61/32", "unreachable"),
                       ("192.0.2.62/32", "prohibit"), ("192.0.2.63/32", "throw")):
        assert (routes[("main", dst)].type, routes[("main", dst)].nexthops) == (rtype, ())
    t100 = routes[("100", "192.0.2.64/32")]
    assert (t100.protocol, t100.metric) == ("static", 50)
    assert routes[("100", "0.0.0.0/0")].type == "unreachable"
    assert routes[("100", "::/0")].family == 6
    v6 = routes[("main", "2001:db8:53::/64")]
    assert [(nh.gateway, nh.weight) for nh in v6.nexthops] == [("2001:db8:1::2", 2), ("2001:db8:2::2", 1)]
    assert routes[("main", "192.0.2.70/32")].nexthops[0].gateway_family == 6
    assert dict(routes[("main", "192.0.2.100/32")].extra)["mtu"] == "1400"
    assert dict(routes[("main", "2001:db8:98::/64")].extra)["from"] == "2001:db8:1::/64"
    assert routes[("main", "192.0.2.80/32")].nhid == 10
    assert [nh.weight for nh in routes[("main", "192.0.2.80/32")].nexthops] == [1, 3]
    assert routes[("local", "198.18.1.1/32")].type == "local"


def test_nexthops_buckets_links_addrs_sysctl(netns):
    r1 = build_router(netns)
    nh_text = parse_ip_nexthop(capture(r1, "nexthop", "show"))
    assert nh_text == parse_ip_nexthop_json(capture(r1, "-j", "nexthop", "show"))
    g = {x.id: x for x in nh_text.groups}
    assert g[10].members == (GroupMember(1, 1), GroupMember(2, 3))
    assert (g[11].type, g[11].buckets, g[11].idle_timer, g[11].unbalanced_timer) == ("resilient", 8, 120, 0)
    objs = {o.id: o for o in nh_text.objects}
    assert objs[3].blackhole and objs[20].fdb and objs[24].protocol == "bgp"
    assert (objs[23].gateway, objs[23].dev, objs[23].scope) == (None, "v1", "host")
    assert g[22].extra == (("fdb", ""),)

    bt = parse_ip_nexthop_bucket(capture(r1, "nexthop", "bucket", "show"))
    bj = parse_ip_nexthop_bucket_json(capture(r1, "-j", "nexthop", "bucket", "show"))
    # idle_time advances between the two captures; everything else must agree.
    assert [dataclasses.replace(b, idle_time=0.0) for b in bt] == [dataclasses.replace(b, idle_time=0.0) for b in bj]
    assert sorted(b.index for b in bt) == list(range(8)) and {b.nhid for b in bt} == {1, 2}

    # Text names the peer namespace (link-netns NAME), JSON gives its id: compare without those two.
    netns_keys = ("link_netns", "link_netnsid")
    for parse_t, parse_j, cmd in ((parse_ip_link, parse_ip_link_json, "link"), (parse_ip_addr, parse_ip_addr_json, "addr")):
        t = parse_t(capture(r1, cmd, "show"))
        j = parse_j(capture(r1, "-j", cmd, "show"))
        assert drop_extra(t, netns_keys) == drop_extra(j, netns_keys), cmd
    # The poll asks only for `ip -j addr show`: it must carry every link field `ip -j link show` gives.
    by_link = parse_ip_link_json(capture(r1, "-j", "link", "show"))
    by_addr = parse_ip_addr_json(capture(r1, "-j", "addr", "show"))
    assert [dataclasses.replace(i, addresses=()) for i in by_addr] == \
        [dataclasses.replace(i, extra=tuple(kv for kv in i.extra if kv[0] != "linkmode")) for i in by_link]
    ifs: dict[str, Interface] = {i.name: i for i in by_addr}
    assert ifs["v3"].admin_up and not ifs["v3"].carrier
    assert not ifs["d0"].admin_up
    assert [(a.local, a.prefixlen) for a in ifs["v1"].addresses][:2] == [("198.18.1.1", 24), ("2001:db8:1::1", 64)]
    assert "nodad" in ifs["v1"].addresses[1].flags

    sysctl_out = nsx.run(r1, "sysctl", "-n", *HASH_SYSCTLS).stdout
    hs = parse_hash_sysctls(sysctl_out)
    assert hs.seed == 4242 and hs.policy == 0

    state = build_device_state(Device("r1"), {
        "routes4": capture(r1, "-j", "-4", "route", "show", "table", "all"),
        "routes6": capture(r1, "-j", "-6", "route", "show", "table", "all"),
        "links": capture(r1, "-j", "link", "show"), "addrs": capture(r1, "-j", "addr", "show"),
        "nexthops": capture(r1, "-j", "nexthop", "show"),
        "buckets": capture(r1, "-j", "nexthop", "bucket", "show"), "sysctl": sysctl_out,
    }, collected_at_ms=1, health=Health())
    assert len(state.group(11).bucket_table) == 8
    assert any(isinstance(r, Route) and r.nhid == 11 for r in state.routes)
    assert state.hash.seed == 4242
