"""ip link / ip addr parsers (text and JSON)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from anycast_tui.model.types import Address, Interface
from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"

# Text names the peer namespace, JSON gives its id: the one thing the two cannot agree on.
NETNS_KEYS = ("link_netns", "link_netnsid")


def without_netns(ifaces: list[Interface]) -> list[Interface]:
    return [dataclasses.replace(i, extra=tuple(e for e in i.extra if e[0] not in NETNS_KEYS)) for i in ifaces]


def test_link_text_fields():
    text = ("4: v3@if3: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue master br0 state LOWERLAYERDOWN "
            "mode DEFAULT group default qlen 1000\n"
            "    link/ether 9e:35:b2:50:c6:b6 brd ff:ff:ff:ff:ff:ff link-netnsid 1\n"
            "5: eth0.10@eth0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\n"
            "    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n"
            "    alias uplink to spine\n"
            "    altname enp1s0\n")
    v3, vl = parse_ip_link(text)
    assert (v3.name, v3.ifindex, v3.operstate, v3.mtu, v3.master, v3.link_type, v3.mac) == (
        "v3", 4, "LOWERLAYERDOWN", 1500, "br0", "ether", "9e:35:b2:50:c6:b6")
    assert v3.admin_up and not v3.carrier
    assert v3.extra == (("link_index", "3"), ("qdisc", "noqueue"), ("linkmode", "DEFAULT"), ("group", "default"),
                        ("txqlen", "1000"), ("broadcast", "ff:ff:ff:ff:ff:ff"), ("link_netnsid", "1"))
    assert vl.link == "eth0" and not vl.admin_up
    assert ("ifalias", "uplink to spine") in vl.extra and ("altnames", '["enp1s0"]') in vl.extra


def test_link_json_fields():
    js = ('[{"ifindex":4,"link_index":3,"ifname":"v3","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],'
          '"mtu":1500,"qdisc":"noqueue","master":"br0","operstate":"LOWERLAYERDOWN","linkmode":"DEFAULT",'
          '"group":"default","txqlen":1000,"link_type":"ether","address":"9e:35:b2:50:c6:b6",'
          '"broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":1}]')
    text = ("4: v3@if3: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue master br0 state LOWERLAYERDOWN "
            "mode DEFAULT group default qlen 1000\n"
            "    link/ether 9e:35:b2:50:c6:b6 brd ff:ff:ff:ff:ff:ff link-netnsid 1\n")
    assert parse_ip_link_json(js) == parse_ip_link(text)


def test_json_details_kept_as_json_strings():
    js = '[{"ifindex":2,"ifname":"v1","flags":[],"linkinfo":{"info_kind":"veth"},"promiscuity":0,"stats64":{"rx":{"bytes":1}}}]'
    (i,) = parse_ip_link_json(js)
    assert dict(i.extra) == {"linkinfo": '{"info_kind":"veth"}', "promiscuity": "0", "stats64": '{"rx":{"bytes":1}}'}


def test_addr_text_addresses():
    text = ("2: ens32: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n"
            "    link/ether 00:0c:29:56:07:1b brd ff:ff:ff:ff:ff:ff\n"
            "    inet 192.168.131.128/24 brd 192.168.131.255 scope global dynamic ens32\n"
            "       valid_lft 1307sec preferred_lft 1307sec\n"
            "    inet 10.0.0.1 peer 10.0.0.2/32 scope global secondary ens32:1\n"
            "       valid_lft forever preferred_lft forever\n"
            "    inet6 2001:db8::1/64 scope global tentative noprefixroute \n"
            "       valid_lft forever preferred_lft forever\n")
    (i,) = parse_ip_addr(text)
    a, b, c = i.addresses
    assert a == Address(4, "192.168.131.128", 24, "global", "ens32", ("dynamic",),
                        (("broadcast", "192.168.131.255"), ("valid_life_time", "1307"), ("preferred_life_time", "1307")))
    assert (b.local, b.prefixlen, b.label, b.flags, b.extra[0]) == ("10.0.0.1", 32, "ens32:1", ("secondary",),
                                                                     ("address", "10.0.0.2"))
    assert (c.family, c.flags, c.label) == (6, ("tentative", "noprefixroute"), None)


def test_addr_json_matches_text():
    js = ('[{"ifindex":2,"ifname":"ens32","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,'
          '"qdisc":"fq_codel","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether",'
          '"address":"00:0c:29:56:07:1b","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet",'
          '"local":"192.168.131.128","prefixlen":24,"broadcast":"192.168.131.255","scope":"global","dynamic":true,'
          '"label":"ens32","valid_life_time":1307,"preferred_life_time":1307}]}]')
    text = ("2: ens32: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n"
            "    link/ether 00:0c:29:56:07:1b brd ff:ff:ff:ff:ff:ff\n"
            "    inet 192.168.131.128/24 brd 192.168.131.255 scope global dynamic ens32\n"
            "       valid_lft 1307sec preferred_lft 1307sec\n")
    assert parse_ip_addr_json(js) == parse_ip_addr(text)


@pytest.mark.parametrize("kind", ["link", "addr"])
def test_captured_text_equals_json(kind):
    parse_text, parse_json = {"link": (parse_ip_link, parse_ip_link_json), "addr": (parse_ip_addr, parse_ip_addr_json)}[kind]
    t = parse_text((FIX / f"kernel-{kind}.txt").read_text())
    j = parse_json((FIX / f"kernel-{kind}.json").read_text())
    assert [i.name for i in t] == ["lo", "v1", "v2", "v3", "d0"]
    assert without_netns(t) == without_netns(j)
    v3 = next(i for i in t if i.name == "v3")
    assert v3.operstate == "LOWERLAYERDOWN" and "NO-CARRIER" in v3.flags
    d0 = next(i for i in t if i.name == "d0")
    assert not d0.admin_up


def test_stats_and_details_kept():
    (i,) = [x for x in parse_ip_link((FIX / "kernel-link-sd.txt").read_text()) if x.name == "v1"]
    keys = [k for k, _ in i.extra]
    assert "rx" in keys and "tx" in keys and "details" in keys and "min_mtu" in keys
    assert dict(i.extra)["rx"].startswith("bytes=")


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("    link/ether 00:00:00:00:00:01\n", 1, "unexpected line before any interface"),
        ("1: lo: <LOOPBACK> mtu x\n", 1, "bad mtu"),
        ("1: lo: <LOOPBACK> mtu 1\n    inet 1.2.3.999/8 scope host lo\n", 2, "not an address"),
        ("1: lo: <LOOPBACK> mtu 1\n    inet 1.2.3.4/x scope host lo\n", 2, "bad prefix length"),
    ],
)
def test_text_errors(text, line, reason):
    with pytest.raises(ParseError) as ei:
        parse_ip_addr(text)
    assert ei.value.line == line and reason in ei.value.reason


@pytest.mark.parametrize("js", ['[{"ifindex":1}]', '[{"ifname":"a","mtu":"x"}]', '[{"ifname":"a","flags":"UP"}]',
                                '[{"ifname":"a","addr_info":[{"family":"inet"}]}]',
                                '[{"ifname":"a","addr_info":[{"family":"inet","local":"1.2.3.4","prefixlen":"z"}]}]'])
def test_json_errors(js):
    with pytest.raises(ParseError) as ei:
        parse_ip_addr_json(js)
    assert ei.value.reason.startswith("interface 0")


def test_oneline_form_equals_multiline():
    text = (FIX / "kernel-link.txt").read_text()
    oneline = text.replace("\n    ", "\\    ")
    assert oneline.count("\n") == 5
    assert parse_ip_link(oneline) == parse_ip_link(text)
