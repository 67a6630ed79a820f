"""ip route text / JSON parser: shapes, flags, types, canonical form, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anycast_tui.model.types import Nexthop, Route
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"


def one(text: str, **kw) -> Route:
    routes = parse_ip_route(text, **kw)
    assert len(routes) == 1, routes
    return routes[0]


def test_single_path_route_carries_one_nexthop_with_defaults_filled():
    r = one("192.0.2.53 via 198.18.1.2 dev v1\n")
    assert r == Route(
        dst="192.0.2.53/32", family=4, type="unicast", table="main", protocol="boot", scope="global", metric=0,
        nexthops=(Nexthop("198.18.1.2", "v1", 1),),
    )


def test_connected_route_fields():
    r = one("198.18.1.0/24 dev v1 proto kernel scope link src 198.18.1.1 metric 100 ")
    assert (r.dst, r.protocol, r.scope, r.prefsrc, r.metric) == ("198.18.1.0/24", "kernel", "link", "198.18.1.1", 100)
    assert r.nexthops == (Nexthop(None, "v1", 1),)


def test_multipath_with_weights_and_nexthop_flags():
    text = (
        "192.0.2.53 proto bgp metric 20 \n"
        "\tnexthop via 198.18.1.2 dev v1 weight 3 \n"
        "\tnexthop via 198.18.2.2 dev v2 weight 1 dead linkdown \n"
        "\tnexthop via 198.18.3.2 dev v3 weight 2 onlink pervasive offload trap\n"
    )
    r = one(text)
    assert r.multipath and [nh.weight for nh in r.nexthops] == [3, 1, 2]
    assert r.nexthops[1].dead and r.nexthops[1].linkdown
    assert r.nexthops[2].flags == ("onlink", "pervasive", "offload", "trap")
    assert r.flags == ()


def test_single_path_flags_go_to_the_nexthop_route_only_flags_stay():
    r = one("192.0.2.54 via 198.18.3.2 dev v3 linkdown onlink rt_offload rt_trap\n")
    assert r.nexthops[0].flags == ("linkdown", "onlink")
    assert r.flags == ("rt_offload", "rt_trap")


@pytest.mark.parametrize("rtype", ["blackhole", "unreachable", "prohibit", "throw"])
def test_routes_without_nexthops(rtype):
    r = one(f"{rtype} 192.0.2.60 proto static metric 7\n")
    assert (r.type, r.dst, r.nexthops, r.metric) == (rtype, "192.0.2.60/32", (), 7)


@pytest.mark.parametrize("rtype", ["local", "broadcast", "multicast", "anycast"])
def test_typed_routes_with_dev(rtype):
    r = one(f"{rtype} 198.18.1.1 dev v1 table local proto kernel scope host src 198.18.1.1 \n")
    assert (r.type, r.table, r.scope) == (rtype, "local", "host")
    assert r.nexthops == (Nexthop(None, "v1", 1),)


def test_default_family_from_gateway_argument_and_pref():
    assert one("default via 198.18.1.1 dev v1").dst == "0.0.0.0/0"
    assert one("default via fe80::1 dev v1").dst == "::/0"
    assert one("unreachable default table mgmt metric 4278198272").dst == "0.0.0.0/0"
    assert one("unreachable default table mgmt metric 4278198272", family=6).dst == "::/0"
    # ``pref`` is printed for IPv6 routes only.
    r = one("unreachable default dev lo table unspec proto kernel metric 4294967295 error -101 pref medium")
    assert (r.dst, r.family, r.table) == ("::/0", 6, "unspec")
    assert r.extra == (("error", "-101"), ("pref", "medium"))


def test_ipv6_route_extras_and_canonical_addresses():
    r = one("2001:DB8:0:0::1 via FE80::1 dev v1 proto ra metric 100 expires 2334sec pref medium\n")
    assert r.dst == "2001:db8::1/128" and r.family == 6
    assert r.nexthops[0].gateway == "fe80::1"
    assert r.extra == (("expires", "2334"), ("pref", "medium"))


def test_rfc5549_ipv6_gateway_for_ipv4_route():
    r = one("192.0.2.70 via inet6 fe80::1 dev v1 proto bgp metric 20")
    assert r.family == 4 and r.nexthops[0].gateway == "fe80::1" and r.nexthops[0].gateway_family == 6
    mp = one("192.0.2.71 proto bgp\n\tnexthop via inet6 fe80::1 dev swp1 weight 1\n\tnexthop via inet6 fe80::2 dev swp2 weight 1")
    assert [nh.gateway_family for nh in mp.nexthops] == [6, 6]
    d = one("default via inet6 fe80::1 dev swp1 proto bgp")
    assert d.dst == "0.0.0.0/0" and d.family == 4


def test_nhid_routes():
    r = one("192.0.2.80 nhid 10 \n\tnexthop via 198.18.1.2 dev v1 weight 1 \n\tnexthop via 198.18.2.2 dev v2 weight 3 ")
    assert r.nhid == 10 and [nh.weight for nh in r.nexthops] == [1, 3]
    r = one("192.0.2.82 nhid 1 via 198.18.1.2 dev v1 ")
    assert r.nhid == 1 and r.nexthops == (Nexthop("198.18.1.2", "v1", 1),)


def test_detail_output_matches_plain_output():
    plain = parse_ip_route("192.0.2.64 via 198.18.1.2 dev v1 table 100 proto static metric 50 \nblackhole 192.0.2.60 \n")
    detail = parse_ip_route(
        "unicast 192.0.2.64 via 198.18.1.2 dev v1 table 100 proto static scope global metric 50 \n"
        "blackhole 192.0.2.60 table main proto boot scope global \n"
    )
    assert plain == detail


def test_nh_info_is_normalised_in_text_and_json():
    text = (" unicast 198.51.100.0/24 nhid 103 table 3 proto boot scope global\n"
            "\t nh_info id 103 group 101/102 type resilient buckets 512 idle_timer 0 unbalanced_timer 0 "
            "unbalanced_time 0 scope global proto unspec\n"
            "\t nexthop via 169.254.2.22 dev veth2 weight 1\n")
    r = one(text)
    assert r.extra == (("nh_info", "id 103 group 101/102 type resilient buckets 512 idle_timer 0 unbalanced_timer 0 "
                                   "unbalanced_time 0 scope global proto unspec"),)
    js = json.dumps([{"type": "unicast", "dst": "198.51.100.0/24", "nhid": 103, "table": "3", "protocol": "boot",
                      "scope": "global", "flags": [], "nh_info": {"id": 103, "group": [{"id": 101}, {"id": 102}],
                      "type": "resilient", "resilient_args": {"buckets": 512, "idle_timer": 0, "unbalanced_timer": 0,
                      "unbalanced_time": 0}, "scope": "global", "protocol": "unspec", "flags": []},
                      "nexthops": [{"gateway": "169.254.2.22", "dev": "veth2", "weight": 1, "flags": []}]}])
    assert parse_ip_route_json(js) == [r]


def test_metrics_and_other_attributes_go_to_extra_same_as_json():
    text = ("192.0.2.100 via 198.18.1.2 dev v1 src 198.18.1.1 realm 5 mtu 1400 window 1000 rtt 10ms advmss 1360 "
            "hoplimit 5 initcwnd 10 features ecn quickack 1 congctl cubic \n")
    js = ('[{"dst":"192.0.2.100","gateway":"198.18.1.2","dev":"v1","prefsrc":"198.18.1.1","flags":[],'
          '"flow":{"to":"5"},"metrics":[{"mtu":1400,"window":1000,"rtt":10,"advmss":1360,"hoplimit":5,'
          '"initcwnd":10,"ecn":null,"quickack":1,"congestion":"cubic"}]}]')
    assert parse_ip_route(text) == parse_ip_route_json(js)
    assert dict(parse_ip_route(text)[0].extra)["rtt"] == "10"


def test_text_only_lock_is_kept():
    r = one("192.0.2.100 via 198.18.1.2 dev v1 mtu lock 1400 rtt 1.5s")
    assert r.extra == (("locked", "mtu"), ("mtu", "1400"), ("rtt", "1500"))


def test_from_tos_and_unknown_attributes_are_kept():
    r = one("2001:db8:98::/64 from 2001:db8:1::/64 tos 0x10 via 2001:db8:1::2 dev v1 frobnicate 7 shiny metric 1024")
    assert r.extra == (("from", "2001:db8:1::/64"), ("tos", "0x10"), ("frobnicate", "7"))
    assert r.nexthops[0].flags == ("shiny",)
    assert r.metric == 1024


def test_old_iproute2_double_spaces_trailing_spaces_and_numeric_proto():
    text = ("10.0.0.11  proto 186  src 10.0.0.100  metric 20 \n"
            "\tnexthop via 169.254.253.1  dev eth2.2 weight 1\n"
            "\tnexthop via 169.254.254.1  dev eth1.2 weight 1\n"
            "broadcast 127.0.0.0 dev lo  table local  proto kernel  scope link  src 127.0.0.1 \n")
    a, b = parse_ip_route(text)
    assert (a.protocol, a.prefsrc, a.metric, len(a.nexthops)) == ("186", "10.0.0.100", 20, 2)
    assert (b.type, b.table) == ("broadcast", "local")


def test_vrf_tables_by_name():
    routes = parse_ip_route("default via 169.254.253.6 dev swp5.3  table evpn-vrf  proto bgp  metric 20 \n"
                            "blackhole 172.16.1.0/24  table evpn-vrf  proto bgp  metric 20 \n")
    assert [r.table for r in routes] == ["evpn-vrf", "evpn-vrf"]


def test_oneline_form_equals_multiline():
    multi = "192.0.2.53 \n\tnexthop via 198.18.1.2 dev v1 weight 3 \n\tnexthop via 198.18.2.2 dev v2 weight 1 \n"
    oneline = "192.0.2.53 \\\tnexthop via 198.18.1.2 dev v1 weight 3 \\\tnexthop via 198.18.2.2 dev v2 weight 1 \n"
    assert parse_ip_route(oneline) == parse_ip_route(multi)


def test_indentation_is_ignored():
    text = "   4.4.4.4 nhid 185483868 proto sharp metric 20\n      nexthop via 192.168.161.1 dev enp39s0 weight 1\n"
    assert one(text).nexthops[0].gateway == "192.168.161.1"


def test_route_get_cache_line():
    r = one("192.0.2.53 from 198.18.255.1 via 198.18.1.2 dev v1 uid 0 \n    cache \n")
    assert r.extra == (("from", "198.18.255.1"), ("uid", "0"), ("cache", ""))


def test_identical_nexthops_are_shared_objects():
    text = "".join(f"192.0.2.{i} \n\tnexthop via 198.18.1.2 dev v1 weight 1\n\tnexthop via 198.18.2.2 dev v2 weight 1\n"
                   for i in range(3))
    routes = parse_ip_route(text)
    assert routes[0].nexthops[0] is routes[2].nexthops[0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("192.0.2.1 dev v1\nfoo bar baz\n", 2, "unexpected token 'foo' in route"),
        ("\tnexthop via 198.18.1.2 dev v1 weight 1\n", 1, "'nexthop' line before any route"),
        ("192.0.2.1 via 198.18.1.2 dev v1 metric ten\n", 1, "bad metric: 'ten'"),
        ("192.0.2.1 via 999.1.1.1 dev v1\n", 1, "bad gateway"),
        ("192.0.2.1 dev\n", 1, "'dev' without a value"),
        ("blackhole\n", 1, "route type 'blackhole' without a destination"),
        ("192.0.2.1\n\tnexthop via 198.18.1.2 dev v1 weight x\n", 2, "bad weight"),
        ("192.0.2.0/33 dev v1\n", 1, "unexpected token '192.0.2.0/33' in route"),
    ],
)
def test_text_errors_carry_line_and_reason(text, line, reason):
    with pytest.raises(ParseError) as ei:
        parse_ip_route(text)
    assert ei.value.line == line
    assert reason in ei.value.reason
    assert ei.value.kind == "ip-route"


@pytest.mark.parametrize(
    "text, reason",
    [
        ('[{"dst": "192.0.2.1", "metric": "x"}]', "bad metric"),
        ('[{"gateway": "198.18.1.1"}]', "missing or bad dst"),
        ('[{"dst": "nope"}]', "bad dst"),
        ('[{"dst": "192.0.2.1", "nexthops": {"a": 1}}]', "bad nexthops"),
        ('[{"dst": "192.0.2.1", "nexthops": [{"gateway": 5}]}]', "bad gateway"),
        ('[1, 2]', "expected an object"),
        ('"routes"', "expected a JSON array"),
    ],
)
def test_json_semantic_errors(text, reason):
    with pytest.raises(ParseError) as ei:
        parse_ip_route_json(text)
    assert reason in ei.value.reason


def test_json_syntax_error_has_line_number():
    with pytest.raises(ParseError) as ei:
        parse_ip_route_json('[\n{"dst": "192.0.2.1",\n"flags": [}\n]')
    assert ei.value.line == 3 and "invalid JSON" in ei.value.reason


def test_empty_input_is_an_empty_table():
    assert parse_ip_route("") == [] and parse_ip_route_json("") == [] and parse_ip_route_json("[]") == []


def test_single_object_json_is_accepted():
    assert parse_ip_route_json('{"dst":"36.0.0.13","flags":[],"nexthops":[{"gateway":"169.254.0.1","dev":"a","weight":1,"flags":["onlink"]}]}')[0].nexthops[0].onlink


# --------------------------------------------------------------------------- real captures (kernel 6.18, iproute2 6.1)


@pytest.mark.parametrize("stem", ["kernel-route", "kernel-route-d"])
def test_captured_text_equals_json(stem):
    text = parse_ip_route((FIX / f"{stem}.txt").read_text())
    js = parse_ip_route_json((FIX / f"{stem}.json").read_text())
    # ``mtu lock`` is printed in text only: drop that one text-only entry.
    text = [r if not any(k == "locked" for k, _ in r.extra) else
            Route(r.dst, r.family, r.type, r.table, r.protocol, r.scope, r.metric, r.prefsrc, r.nhid, r.nexthops,
                  r.flags, tuple(e for e in r.extra if e[0] != "locked")) for r in text]
    assert len(text) == len(js) > 30
    assert text == js


def test_captured_oneline_equals_multiline():
    assert parse_ip_route((FIX / "kernel-route-o.txt").read_text()) == parse_ip_route((FIX / "kernel-route.txt").read_text())


def test_captured_values():
    routes = {(r.table, r.dst): r for r in parse_ip_route((FIX / "kernel-route.txt").read_text())}
    mp = routes[("main", "192.0.2.53/32")]
    assert [(nh.gateway, nh.weight, nh.flags) for nh in mp.nexthops] == [
        ("198.18.1.2", 3, ()), ("198.18.2.2", 1, ()), ("198.18.3.2", 1, ("linkdown",))]
    dead = routes[("main", "192.0.2.91/32")]
    assert dead.nexthops[0].flags == ("dead", "linkdown")
    assert routes[("100", "192.0.2.64/32")].protocol == "static"
    assert routes[("main", "2001:db8:53::/64")].family == 6


def test_the_command_id_is_a_field_of_the_error_not_text_to_parse_back():
    from anycast_tui.collect.commands import LINUX_POLL
    from anycast_tui.collect.poller import parse_reason
    from anycast_tui.model.types import Device, Health
    from anycast_tui.parse.device import build_device_state
    from anycast_tui.parse.errors import ParseError

    outputs = {"routes4": "[]", "routes6": "routes6: not json at all"}
    with pytest.raises(ParseError) as exc:
        build_device_state(Device("d"), outputs, collected_at_ms=0, health=Health())
    assert exc.value.command == "routes6" and not exc.value.reason.startswith("routes6")
    # a reason that happens to start like another command's id is not mistaken for it
    tricky = ParseError(3, "routes4: looks like an id but is device text", "ip-route", None, "routes6")
    assert parse_reason(tricky, LINUX_POLL).startswith("routes6: line 3: routes4: looks like")
