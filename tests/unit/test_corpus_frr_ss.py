"""Every FRR (JSON and text), ss and conntrack sample of the shared corpus: parsed, or refused in one line.

Samples are matched by command slug: ``vtysh-*``, ``net-show-bgp*``, ``ss-*``
and ``conntrack-*``.  Detection and parsing go through the same path as
``anycast-tui parse`` (``detect_kind`` + ``parse_as``), and the CLI's ``--json``
output is checked for every file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anycast_tui.cli import main
from anycast_tui.parse import conntrack, frr, ss
from anycast_tui.parse.detect import detect_kind, parse_as
from anycast_tui.parse.errors import ParseError

# Samples refused on purpose: why, and the cause the refusal must give (a fragment of ParseError.reason).
NO_ROUTES = "BGP summary/neighbour JSON has no routes; use 'show bgp [vrf X] ipv4|ipv6 json'"
UNKNOWN = "cannot tell what command produced this; use --as KIND"
REFUSED = {
    "sonic__vtysh-show-ip-bgp-summary-json__1.json": ("BGP summary: peers, no routes", NO_ROUTES),
    "sonic__vtysh-show-ip-bgp-summary-json__2.json": ("BGP summary: peers, no routes", NO_ROUTES),
    "sonic__vtysh-show-ip-route-summary__1.txt": ("route counts per source, not routes", UNKNOWN),
    "suzieq__net-show-bgp-vrf-all-neighbor-json__1.json": ("BGP neighbours, no routes", NO_ROUTES),
    "suzieq__net-show-bgp-vrf-all-neighbor-json__2.json": ("BGP neighbours, no routes", NO_ROUTES),
    "suzieq__vtysh-show-bgp-vrf-all-neighbors-json__1.json": ("BGP neighbours, no routes", NO_ROUTES),
    "suzieq__vtysh-show-evpn-vni-detail-json__1.json": ("EVPN VNI table, not routes", UNKNOWN),
}
EXPECTED_KIND = {"vtysh-show-ip-route": frr.KIND_TEXT, "vtysh-show-ipv6-route": frr.KIND_TEXT,
                 "ss": ss.KIND, "conntrack": conntrack.KIND}


def samples(corpus: Path) -> list[Path]:
    out = []
    for p in sorted(corpus.iterdir()):
        parts = p.name.split("__")
        if len(parts) == 3 and parts[1].startswith(("vtysh-", "net-show-bgp", "ss-", "conntrack-")) \
                and "+ip-" not in parts[1]:
            out.append(p)
    return out


def parse_file(path: Path):
    text = path.read_text()
    kind = detect_kind(text)
    return kind, parse_as(text, kind)


def test_corpus_has_the_samples(corpus_dir):
    names = {p.name for p in samples(corpus_dir)}
    assert len(names) >= 40
    assert set(REFUSED) <= names


def test_every_sample_parses_or_is_refused_with_one_parse_error(corpus_dir):
    refused = []
    for path in samples(corpus_dir):
        try:
            kind, records = parse_file(path)
        except ParseError as exc:
            assert "\n" not in str(exc) and exc.reason, path.name
            refused.append(path.name)
            continue
        assert isinstance(records, list) and records, path.name
        slug = path.name.split("__")[1]
        if slug.endswith("-json"):
            assert kind in (frr.KIND_JSON, frr.KIND_BGP), path.name
        elif slug.startswith("ss-"):
            assert kind == ss.KIND, path.name
        elif slug.startswith("conntrack"):
            assert kind == conntrack.KIND, path.name
        else:
            assert kind == frr.KIND_TEXT, path.name
    assert sorted(refused) == sorted(REFUSED)


def test_cli_json_for_every_sample(corpus_dir, capsys):
    for path in samples(corpus_dir):
        code = main(["parse", str(path), "--json"])
        cap = capsys.readouterr()
        assert "Traceback" not in cap.err
        if path.name in REFUSED:
            assert code == 2 and cap.out == ""
            assert cap.err.count("\n") == 1 and cap.err.startswith(f"anycast-tui parse: {path}: ")
            assert REFUSED[path.name][1] in cap.err, path.name
        else:
            assert code == 0, (path.name, cap.err)
            assert json.loads(cap.out)


def by_dst(routes):
    out = {}
    for r in routes:
        out.setdefault(r.dst, []).append(r)
    return out


def load(corpus_dir, name):
    return parse_file(corpus_dir / name)[1]


def test_frrdoc_16_way_text_route(corpus_dir):
    (r,) = load(corpus_dir, "frrdoc__vtysh-show-ip-route__1.txt")
    assert (r.dst, r.protocol, r.table, r.metric) == ("4.4.4.4/32", "sharp", "main", 0)
    assert [nh.gateway for nh in r.nexthops] == [f"192.168.161.{i}" for i in range(1, 17)]
    assert {nh.dev for nh in r.nexthops} == {"enp39s0"} and {nh.weight for nh in r.nexthops} == {1}
    assert ("distance", "150") in r.extra


def test_frrdoc_16_way_text_agrees_with_kernel_route(corpus_dir):
    """The FRR view and the kernel's ``ip route`` of the same route have the same next hops."""
    (frr_route,) = load(corpus_dir, "frrdoc__vtysh-show-ip-route__1.txt")
    (kernel_route,) = load(corpus_dir, "frrdoc__ip-route-show__1.txt")
    assert sorted(nh.gateway for nh in frr_route.nexthops) == sorted(nh.gateway for nh in kernel_route.nexthops)


def test_frrdoc_recursive_static_keeps_the_resolved_hop(corpus_dir):
    routes = by_dst(load(corpus_dir, "frrdoc__vtysh-show-ip-route__2.txt"))
    (r,) = routes["4.5.6.7/32"]
    assert [(nh.gateway, nh.dev) for nh in r.nexthops] == [("192.168.119.1", "enp13s0")]
    assert ("nexthops_not_in_fib", "1") in r.extra
    (ll,) = routes["169.254.0.0/16"]
    assert ll.nexthops[0].linkdown and ll.nexthops[0].gateway is None and ll.metric == 1000


def test_frr_text_blackholes_and_non_fib_duplicates(corpus_dir):
    routes = by_dst(load(corpus_dir, "frr__vtysh-show-ip-route__1.txt"))
    assert routes["4.5.6.13/32"][0].type == "blackhole" and not routes["4.5.6.13/32"][0].nexthops
    assert routes["4.5.6.9/32"][0].type == "unreachable"
    assert "4.5.6.15/32" not in routes  # never in the FIB
    (r,) = routes["4.5.6.16/32"]  # [10/0] not selected, [5/0] in the FIB
    assert r.nexthops[0].gateway == "192.168.0.2" and ("distance", "5") in r.extra
    all_routes = by_dst(frr.parse_frr_route((corpus_dir / "frr__vtysh-show-ip-route__1.txt").read_text(),
                                            fib_only=False))
    assert len(all_routes["4.5.6.16/32"]) == 2 and "4.5.6.15/32" in all_routes


def test_frr_json_weights_85_255(corpus_dir):
    (r,) = load(corpus_dir, "frr__vtysh-show-ip-route-json__5.json")
    assert [(nh.gateway, nh.weight) for nh in r.nexthops] == [("11.1.1.6", 85), ("11.1.1.2", 255)]


def test_frr_json_backup_nexthops_are_not_ecmp_members(corpus_dir):
    routes = by_dst(load(corpus_dir, "frr__vtysh-show-ip-route-json__2.json"))
    (r,) = routes["1.1.1.1/32"]
    assert [nh.gateway for nh in r.nexthops] == ["10.0.1.1"]
    backups = json.loads(dict(r.extra)["backupNexthops"])
    assert [b["ip"] for b in backups] == ["10.0.4.5", "10.0.5.5"]
    assert ("backupIndex", "[0,1]") in r.nexthops[0].extra
    assert (r.protocol, r.metric, dict(r.extra)["distance"]) == ("isis", 20, "115")


def test_frr_json_recursive_resolution(corpus_dir):
    (r,) = load(corpus_dir, "sonic__vtysh-show-ip-route-json__3.json")
    assert [nh.gateway for nh in r.nexthops] == ["20.1.0.128", "20.1.8.128", "20.1.16.128", "20.1.24.128"]
    assert all(nh.onlink and nh.dev == "Ethernet-IB0" for nh in r.nexthops)
    assert [dict(nh.extra)["resolves"] for nh in r.nexthops] == [nh.gateway for nh in r.nexthops]
    assert ("nexthops_not_in_fib", "4") in r.extra


def test_frr_json_duplicates_are_excluded(corpus_dir):
    (r,) = load(corpus_dir, "frr__vtysh-show-ip-route-json__3.json")
    assert r.table == "vrf1" and [nh.gateway for nh in r.nexthops] == ["10.0.0.1", "10.0.0.2"]
    assert ("nexthops_not_in_fib", "2") in r.extra


def test_frr_json_vrf_table_and_blackholes(corpus_dir):
    routes = by_dst(load(corpus_dir, "frr__vtysh-show-ip-route-vrf-json__1.json"))
    assert {r.table for rs in routes.values() for r in rs} == {"1"}
    assert routes["0.0.0.0/0"][0].type == "blackhole"
    (r,) = routes["10.1.0.0/24"]
    assert (r.nexthops[0].gateway, r.nexthops[0].dev, dict(r.nexthops[0].extra)["vrf"]) == (
        "192.168.211.254", "r1-eth1", "default")


def test_frr_json_main_table_and_unselected_entries(corpus_dir):
    routes = by_dst(load(corpus_dir, "frr__vtysh-show-ip-route-json__6.json"))
    (r,) = routes["10.0.1.1/32"]  # the ospf entry is not in the FIB
    assert (r.protocol, r.table) == ("connected", "main")
    everything = frr.parse_frr_route_json((corpus_dir / "frr__vtysh-show-ip-route-json__6.json").read_text(),
                                          fib_only=False)
    assert [x.protocol for x in everything if x.dst == "10.0.1.1/32"] == ["ospf", "connected"]


def test_sonic_ipv6_ecmp_over_port_channels(corpus_dir):
    routes = load(corpus_dir, "sonic__vtysh-show-ipv6-route-json__1.json")
    assert all(r.family == 6 for r in routes)
    multi = {r.dst: r for r in routes if r.multipath}
    assert len(multi) == 65
    assert [(nh.gateway, nh.dev) for nh in multi["20c0:a800:0:10::/64"].nexthops] == [
        ("fc00::2", "PortChannel0002"), ("fc00::6", "PortChannel0005")]


def test_bgp_multipath_state(corpus_dir):
    (p,) = load(corpus_dir, "sonic__vtysh-show-ip-bgp-json__1.json")
    assert (p.prefix, p.paths, p.valid, p.bestpath, p.multipath) == (
        "0.0.0.0/0", 2, 2, "10.0.0.1", ("10.0.0.7", "10.0.0.1"))
    view = {b.prefix: b for b in load(corpus_dir, "frr__vtysh-show-bgp-view-json__1.json")}
    assert view["10.0.1.0/24"].paths == 3 and view["10.0.1.0/24"].bestpath == "172.16.1.1"
    assert view["10.0.1.0/24"].multipath == ("172.16.1.1",) and view["10.0.1.0/24"].vrf == "1"


def test_ss_samples(corpus_dir):
    socks = load(corpus_dir, "iproute2__ss-t__1.txt")
    assert [(s.local, s.local_dev, s.peer, s.peer_port) for s in socks] == [
        ("10.100.1.2", "red", "10.100.1.254", 47814), ("2100:1::2", "red", "2100:1::64", 49406)]
    assert all(("local_service", "ssh") in s.extra for s in socks)
    (s,) = load(corpus_dir, "iproute2__ss-emoitn__1.txt")
    (one_line,) = load(corpus_dir, "iproute2__ss-emoitn__2.txt")
    for sock in (s, one_line):
        e = dict(sock.extra)
        assert (sock.state, sock.local_port, sock.peer_port, e["uid"], e["cwnd"]) == ("ESTAB", 13265, 36743,
                                                                                    "1974", "10")
        assert e["skmem"].startswith("r0,rb2227595")
    tulpen = load(corpus_dir, "jc__ss-tulpen__1.txt")
    assert len(tulpen) == 73
    assert ("users", '("avahi-daemon",pid=1510,fd=12)') in tulpen[1].extra
    dev_scoped = [t for t in tulpen if t.local_dev == "virbr0"]
    assert dev_scoped and dev_scoped[0].local == "0.0.0.0" and dev_scoped[0].local_port == 67
    everything = load(corpus_dir, "jc__ss-a__1.txt")
    assert {"nl", "u_str", "tcp", "udp"} <= {x.netid for x in everything}
    v6 = [x for x in everything if x.netid == "tcp" and x.state == "ESTAB"]
    assert [(x.local, x.peer) for x in v6] == [("::1", "::1"), ("::1", "::1")]


def test_conntrack_samples(corpus_dir):
    entries = load(corpus_dir, "conntracktools__conntrack-L__1.txt")
    assert len(entries) == 2
    e = entries[0]
    assert (e.proto, e.state, e.src, e.dst, e.sport, e.dport, e.reply_sport, e.flags, e.mark) == (
        "tcp", "ESTABLISHED", "192.168.2.100", "123.59.27.117", 34846, 993, 993, ("ASSURED",), 0)
    assert ("orig_packets", "169") in e.extra and ("reply_bytes", "34787") in e.extra
    assert e.flow().dport == 993


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals_name_the_reason(corpus_dir, name):
    """Each refusal gives its own cause: a BGP summary or neighbour table says it has no routes and which
    command has them; what is no known command's output says so and how to name the kind."""
    with pytest.raises(ParseError) as info:
        parse_file(corpus_dir / name)
    _why, cause = REFUSED[name]
    assert info.value.reason == cause and info.value.line == 0
