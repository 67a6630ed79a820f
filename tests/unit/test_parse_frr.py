"""FRR ``show ip route`` (JSON and text) and ``show bgp ... json``: mapping rules, errors, mutations."""

from __future__ import annotations

import json

import pytest
from frr_ss_seeds import FUZZ, corpus_seeds, only_parse_errors
from mutations import mutated_json, mutated_text
from hypothesis import given

from anycast_tui.parse.detect import detect_kind
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.frr import KIND_BGP, KIND_JSON, KIND_TEXT, parse_frr_bgp_json, parse_frr_route, \
    parse_frr_route_json

ANYCAST = {
    "192.0.2.53/32": [
        {"prefix": "192.0.2.53/32", "protocol": "bgp", "selected": True, "installed": True, "distance": 20,
         "metric": 0, "table": 254, "nexthops": [
             {"fib": True, "ip": "198.18.1.2", "afi": "ipv4", "interfaceName": "swp1", "active": True, "weight": 1},
             {"fib": True, "ip": "198.18.2.2", "afi": "ipv4", "interfaceName": "swp2", "active": True, "weight": 1},
             {"ip": "198.18.3.2", "afi": "ipv4", "interfaceName": "swp3", "weight": 1},
         ]},
        {"prefix": "192.0.2.53/32", "protocol": "ospf", "distance": 110, "metric": 20, "table": 254,
         "nexthops": [{"ip": "198.18.9.2", "interfaceName": "swp9", "active": True}]},
    ],
    "192.0.2.54/32": [
        {"protocol": "bgp", "installed": True, "metric": 0, "nexthops": [
            {"ip": "198.51.100.1", "active": True, "recursive": True},
            {"fib": True, "ip": "198.18.1.2", "interfaceName": "swp1", "resolver": True, "onLink": True},
            {"fib": True, "ip": "fe80::1", "afi": "ipv6", "interfaceName": "swp2", "resolver": True},
        ]},
    ],
    "192.0.2.60/32": [{"protocol": "static", "installed": True, "nexthops": [
        {"fib": True, "unreachable": True, "reject": True}]}],
    "192.0.2.61/32": [{"protocol": "static", "installed": True, "nexthops": [
        {"fib": True, "unreachable": True, "admin-prohibited": True}]}],
}


def test_fib_next_hops_only_with_counts_and_kept_attributes():
    routes = parse_frr_route_json(json.dumps(ANYCAST))
    assert [r.dst for r in routes] == ["192.0.2.53/32", "192.0.2.54/32", "192.0.2.60/32", "192.0.2.61/32"]
    r = routes[0]
    assert (r.family, r.type, r.table, r.protocol, r.metric, r.scope) == (4, "unicast", "main", "bgp", 0, None)
    assert [(nh.gateway, nh.dev, nh.weight) for nh in r.nexthops] == [("198.18.1.2", "swp1", 1),
                                                                      ("198.18.2.2", "swp2", 1)]
    extra = dict(r.extra)
    assert (extra["prefix"], extra["selected"], extra["distance"], extra["nexthops_not_in_fib"]) == (
        "192.0.2.53/32", "true", "20", "1")
    assert ("active", "true") in r.nexthops[0].extra and ("afi", "ipv4") in r.nexthops[0].extra


def test_rib_view_keeps_every_entry():
    routes = parse_frr_route_json(json.dumps(ANYCAST), fib_only=False)
    ospf = [r for r in routes if r.protocol == "ospf"]
    assert len(ospf) == 1 and ospf[0].nexthops[0].gateway == "198.18.9.2"
    bgp = next(r for r in routes if r.dst == "192.0.2.53/32" and r.protocol == "bgp")
    assert len(bgp.nexthops) == 3 and ("nexthops_not_in_fib", "1") in bgp.extra


def test_recursive_resolvers_and_foreign_family_gateway():
    r = parse_frr_route_json(json.dumps(ANYCAST))[1]
    assert [(nh.gateway, nh.gateway_family, nh.onlink) for nh in r.nexthops] == [
        ("198.18.1.2", None, True), ("fe80::1", 6, False)]
    assert all(("resolves", "198.51.100.1") in nh.extra for nh in r.nexthops)


def test_blackhole_kinds_become_route_types():
    routes = {r.dst: r for r in parse_frr_route_json(json.dumps(ANYCAST))}
    assert (routes["192.0.2.60/32"].type, routes["192.0.2.60/32"].nexthops) == ("unreachable", ())
    assert routes["192.0.2.61/32"].type == "prohibit"


def test_tables_and_vrfs():
    def one(entry: dict, **kw):
        return parse_frr_route_json(json.dumps({"10.0.0.0/8": [dict(entry, installed=True)]}), **kw)[0]

    assert one({"table": 255}).table == "local"
    assert one({"table": 1001, "vrfName": "red"}).table == "1001"
    assert one({"vrfName": "red"}).table == "red"
    assert one({"vrfName": "default"}).table == "main"
    vrf_all = {"red": {"10.0.0.0/8": [{"installed": True, "nexthops": []}]},
               "blue": {"2001:db8::/32": [{"installed": True, "table": 20, "nexthops": []}]}}
    routes = parse_frr_route_json(json.dumps(vrf_all))
    assert [(r.dst, r.family, r.table, dict(r.extra)["vrfName"]) for r in routes] == [
        ("10.0.0.0/8", 4, "red", "red"), ("2001:db8::/32", 6, "20", "blue")]


@pytest.mark.parametrize("text, reason", [
    ('{"10.0.0.0/8": "x"}', "expected a list"),
    ('{"not-a-prefix": []}', "not an address"),
    ('{"10.0.0.0/8": [{"installed": true, "nexthops": [{"fib": true, "ip": "x"}]}]}', "not an address"),
    ('{"10.0.0.0/8": [{"installed": true, "nexthops": [{"fib": true, "weight": "w"}]}]}', "bad weight"),
    ('{"10.0.0.0/8": [{"installed": true, "metric": true}]}', "bad metric"),
    ('{"10.0.0.0/8": [{"installed": true, "table": [1]}]}', "bad table"),
    ('[{"10.0.0.0/8": []}]', "one JSON object"),
    ('{"10.0.0.0/8": [', "invalid JSON"),
])
def test_json_errors_are_parse_errors(text, reason):
    with pytest.raises(ParseError) as info:
        parse_frr_route_json(text)
    assert reason in info.value.reason and info.value.kind == KIND_JSON


TEXT = """\
Codes: K - kernel route, C - connected, L - local, S - static,
       > - selected route, * - FIB route, q - queued, r - rejected, b - backup

IPv4 unicast VRF default:
B>* 192.0.2.53/32 [20/0] via 198.18.1.2, swp1, weight 1, 00:01:02
  *                      via 198.18.2.2, swp2, weight 3, 00:01:02
                         via 198.18.3.2, swp3 inactive, weight 1, 00:01:02
O   192.0.2.53/32 [110/20] via 198.18.9.2, swp9, weight 1, 1d02h03m
B>  192.0.2.54/32 [200/0] via 198.51.100.1 (recursive), weight 1, 00:01:02
  *                        via 198.18.1.2, swp1 onlink, label 16040/16010, weight 1, 00:01:02
C>* 198.18.1.0/24 is directly connected, swp1, 00:10:00
S>* 192.0.2.62/32 [1/0] unreachable (ICMP admin-prohibited), weight 1, 00:00:01
VRF red:
B>* 203.0.113.0/24 [20/0] via 198.18.4.2, swp4(vrf blue), weight 1, 00:00:05
"""


def test_text_routes():
    assert detect_kind(TEXT) == KIND_TEXT
    routes = parse_frr_route(TEXT)
    assert [(r.dst, r.protocol, r.table) for r in routes] == [
        ("192.0.2.53/32", "bgp", "main"), ("192.0.2.54/32", "bgp", "main"), ("198.18.1.0/24", "connected", "main"),
        ("192.0.2.62/32", "static", "main"), ("203.0.113.0/24", "bgp", "red")]
    mp = routes[0]
    assert [(nh.gateway, nh.dev, nh.weight) for nh in mp.nexthops] == [("198.18.1.2", "swp1", 1),
                                                                       ("198.18.2.2", "swp2", 3)]
    assert ("distance", "20") in mp.extra and ("nexthops_not_in_fib", "1") in mp.extra and mp.metric == 0
    rec = routes[1].nexthops
    assert len(rec) == 1 and rec[0].onlink and ("labels", "16040/16010") in rec[0].extra
    assert routes[2].nexthops[0].dev == "swp1" and routes[2].nexthops[0].gateway is None
    assert routes[3].type == "prohibit" and not routes[3].nexthops
    leaked = routes[4].nexthops[0]
    assert (leaked.dev, dict(leaked.extra)["vrf"]) == ("swp4", "blue")
    everything = parse_frr_route(TEXT, fib_only=False)
    assert [r.metric for r in everything if r.protocol == "ospf"] == [20]
    inactive = next(r for r in everything if r.dst == "192.0.2.53/32" and r.protocol == "bgp").nexthops[2]
    assert inactive.flags == ("inactive",)


@pytest.mark.parametrize("text, line, reason", [
    ("B>* 192.0.2.0/33 [20/0] via 198.18.1.2, swp1\n", 1, "not an address"),
    ("B>* 192.0.2.0/24 [20/0] via 198.18.1.2, swp1\nhello world\n", 2, "not an FRR route line"),
    ("  *   via 198.18.1.2, swp1\n", 1, "before any route"),
    ("B>* 192.0.2.0/24 [20/0] via nothing, swp1\n", 1, "bad gateway"),
    ("B>* 192.0.2.0/24 [20/0] via 1.2.3.4, swp1, weight x\n", 1, "bad weight"),
    ("B>* 192.0.2.0/24 [20/0] frobnicated\n", 1, "unexpected"),
    ("S>* 192.0.2.0/24 [1/0] unreachable (sideways)\n", 1, "unknown unreachable"),
])
def test_text_errors_carry_the_line(text, line, reason):
    with pytest.raises(ParseError) as info:
        parse_frr_route(text)
    assert (info.value.line, info.value.kind) == (line, KIND_TEXT) and reason in info.value.reason


BGP = {
    "vrfId": 0, "vrfName": "default", "routerId": "198.18.255.1", "localAS": 65000,
    "routes": {
        "192.0.2.53/32": [
            {"valid": True, "multipath": True, "pathFrom": "external", "path": "65101",
             "nexthops": [{"ip": "198.18.1.2", "afi": "ipv4", "used": True}]},
            {"valid": True, "bestpath": True, "selectionReason": "Older Path", "pathFrom": "external",
             "nexthops": [{"ip": "198.18.2.2", "afi": "ipv4", "used": True}]},
            {"valid": True, "pathFrom": "external", "nexthops": [{"ip": "198.18.3.2", "used": True}]},
            {"multipath": True, "nexthops": [{"ip": "198.18.4.2", "used": True}]},
        ],
        "2001:db8:53::/64": [
            {"valid": True, "bestpath": True, "nexthops": [
                {"ip": "2001:db8::2", "scope": "global"}, {"ip": "fe80::2", "scope": "link-local", "used": True}]},
        ],
    },
}


def test_bgp_multipath_state():
    assert detect_kind(json.dumps(BGP)) == KIND_BGP
    a, b = parse_frr_bgp_json(json.dumps(BGP))
    assert (a.prefix, a.family, a.vrf, a.paths, a.valid, a.bestpath, a.multipath) == (
        "192.0.2.53/32", 4, "default", 4, 3, "198.18.2.2", ("198.18.1.2", "198.18.2.2"))
    assert ("routerId", "198.18.255.1") in a.extra and sum(k == "path" for k, _ in a.extra) == 4
    assert (b.family, b.bestpath, b.multipath) == (6, "fe80::2", ("fe80::2",))
    vrf_all = {"default": BGP, "red": dict(BGP, vrfName="red")}
    assert [p.vrf for p in parse_frr_bgp_json(json.dumps(vrf_all))] == ["default"] * 2 + ["red"] * 2


@pytest.mark.parametrize("data, reason", [
    ({"ipv4Unicast": {"peers": {}}}, "summary"),
    ({"routes": []}, "'routes' is not an object"),
    ({"routes": {"192.0.2.0/24": [{"nexthops": [{"ip": "bogus"}]}]}}, "bad next hop"),
    ({"routes": {"192.0.2.0/24": {}}}, "list of paths"),
    ({"something": 1}, "no 'routes'"),
])
def test_bgp_errors(data, reason):
    with pytest.raises(ParseError) as info:
        parse_frr_bgp_json(json.dumps(data))
    assert reason in info.value.reason


def test_detection_does_not_take_ip_outputs():
    assert detect_kind('[{"dst": "192.0.2.53", "gateway": "198.18.1.2", "dev": "v1", "flags": []}]') \
        == "ip-route-json"
    assert detect_kind('{"dst": "192.0.2.53", "protocol": "bgp", "flags": []}') == "ip-route-json"
    assert detect_kind("192.0.2.53 via 198.18.1.2 dev v1\n") == "ip-route"
    assert detect_kind("default via 198.18.1.2 dev v1 proto bgp\n") == "ip-route"
    assert detect_kind(json.dumps(ANYCAST)) == KIND_JSON


JSON_SEEDS = {"anycast": json.dumps(ANYCAST), "bgp": json.dumps(BGP),
              **{k: v for k, v in corpus_seeds("vtysh-show-ip-route-json", "vtysh-show-ipv6-route-json",
                                               "vtysh-show-ip-bgp-json", "vtysh-show-bgp").items()}}
TEXT_SEEDS = {"text": TEXT, **corpus_seeds("vtysh-show-ip-route", "vtysh-show-ipv6-route")}
TEXT_SEEDS = {k: v for k, v in TEXT_SEEDS.items() if not k.endswith(".json")}


@FUZZ
@given(mutated_json(JSON_SEEDS))
def test_mutated_frr_json_raises_only_parse_error(text):
    only_parse_errors(text)


@FUZZ
@given(mutated_text(TEXT_SEEDS))
def test_mutated_frr_text_raises_only_parse_error(text):
    only_parse_errors(text)


@FUZZ
@given(mutated_text({k: v for k, v in JSON_SEEDS.items() if len(v) < 8000}))
def test_broken_frr_json_syntax_raises_only_parse_error(text):
    only_parse_errors(text)
