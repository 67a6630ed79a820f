"""render.py against the kernel: records built from ``ip -j`` output must render
back to exactly what iproute2 prints (text and JSON), byte for byte."""

from __future__ import annotations

import json
import re

import pytest

from anycast_tui.lab import netns as nsmod
from anycast_tui.lab import render
from anycast_tui.model.types import (
    Address,
    Bucket,
    GroupMember,
    Interface,
    Nexthop,
    NexthopGroup,
    NexthopObject,
    Route,
)

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
    "route add 203.0.113.0/24 via 198.19.0.1 dev swp1 proto static metric 100",
    "route add blackhole 192.0.2.0/24",
    "route add default via 198.19.0.3",
]


# ----------------------------------------------------------------- records from the kernel's JSON
# (a minimal, test-local reading of ip -j output: enough to feed the renderers)


def _fam(d: dict, default: int) -> int:
    dst = d.get("dst", "default")
    if dst == "default":
        return default
    return 6 if ":" in dst else 4


def _prefix(dst: str, family: int) -> str:
    if dst == "default":
        return "0.0.0.0/0" if family == 4 else "::/0"
    return dst if "/" in dst else f"{dst}/{32 if family == 4 else 128}"


def _ex(d: dict, skip: set[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for k, v in d.items():
        if k in skip:
            continue
        if k == "cache":
            out.append((k, ",".join(v)))
        else:
            out.append((k, v if isinstance(v, str) else json.dumps(v)))
    return tuple(out)


_ROUTE_KEYS = {"type", "dst", "nhid", "gateway", "via", "dev", "table", "protocol", "scope", "prefsrc", "metric",
               "flags", "nexthops"}
_NH_FLAGS_ROUTE = {"rt_offload", "rt_trap", "rt_offload_failed"}


def _nexthop(d: dict) -> Nexthop:
    gw, gf = d.get("gateway"), None
    if "via" in d:
        gw, gf = d["via"]["host"], 4 if d["via"]["family"] == "inet" else 6
    return Nexthop(gateway=gw, dev=d.get("dev"), weight=d.get("weight", 1), flags=tuple(d.get("flags", [])),
                   gateway_family=gf, extra=_ex(d, {"gateway", "via", "dev", "weight", "flags"}))


def route_from_json(d: dict, family: int) -> Route:
    fam = _fam(d, family)
    flags = tuple(d.get("flags", []))
    if "nexthops" in d:
        nhs = tuple(_nexthop(n) for n in d["nexthops"])
        rflags = flags
    elif "dev" in d or "gateway" in d or "via" in d:
        nhs = (_nexthop({k: d[k] for k in ("gateway", "via", "dev") if k in d}
                        | {"flags": [f for f in flags if f not in _NH_FLAGS_ROUTE]}),)
        rflags = tuple(f for f in flags if f in _NH_FLAGS_ROUTE)
    else:
        nhs, rflags = (), flags
    return Route(dst=_prefix(d["dst"], fam), family=fam, type=d.get("type", "unicast"), table=d.get("table", "main"),
                 protocol=d.get("protocol"), scope=d.get("scope"), metric=d.get("metric"), prefsrc=d.get("prefsrc"),
                 nhid=d.get("nhid"), nexthops=nhs, flags=rflags, extra=_ex(d, _ROUTE_KEYS))


def nexthops_from_json(items: list[dict]) -> tuple[list[NexthopObject], list[NexthopGroup]]:
    objs, groups = [], []
    for d in items:
        if "group" in d:
            ra = d.get("resilient_args", {})
            groups.append(NexthopGroup(
                id=d["id"], members=tuple(GroupMember(m["id"], m.get("weight", 1)) for m in d["group"]),
                type=d.get("type", "mpath"), buckets=ra.get("buckets"), idle_timer=ra.get("idle_timer"),
                unbalanced_timer=ra.get("unbalanced_timer"), unbalanced_time=ra.get("unbalanced_time"),
                protocol=d.get("protocol"), flags=tuple(d["flags"]),
                extra=_ex(d, {"id", "group", "type", "resilient_args", "protocol", "flags"})))
        else:
            objs.append(NexthopObject(
                id=d["id"], gateway=d.get("gateway"), dev=d.get("dev"), scope=d.get("scope"),
                protocol=d.get("protocol"), blackhole="blackhole" in d, fdb="fdb" in d, flags=tuple(d["flags"]),
                extra=_ex(d, {"id", "gateway", "dev", "scope", "protocol", "blackhole", "fdb", "flags"})))
    return objs, groups


def buckets_from_json(items: list[dict]) -> list[Bucket]:
    return [Bucket(group_id=d["id"], index=d["bucket"]["index"], nhid=d["bucket"]["nhid"],
                   idle_time=d["bucket"]["idle_time"], flags=tuple(d["flags"])) for d in items]


_LINK_KEYS = {"ifindex", "ifname", "link", "flags", "mtu", "master", "operstate", "link_type", "address", "addr_info"}
_ADDR_KEYS = {"family", "local", "prefixlen", "scope", "label"}


def interfaces_from_json(items: list[dict]) -> list[Interface]:
    out = []
    for d in items:
        addrs = []
        for a in d.get("addr_info", []):
            flags = tuple(k for k, v in a.items() if v is True)
            addrs.append(Address(family=4 if a["family"] == "inet" else 6, local=a["local"],
                                 prefixlen=a["prefixlen"], scope=a.get("scope"), label=a.get("label"),
                                 flags=flags, extra=_ex(a, _ADDR_KEYS | set(flags))))
        out.append(Interface(name=d["ifname"], ifindex=d.get("ifindex"), flags=tuple(d["flags"]),
                             operstate=d["operstate"], mtu=d.get("mtu"), link_type=d.get("link_type"),
                             mac=d.get("address"), master=d.get("master"), link=d.get("link"),
                             addresses=tuple(addrs), extra=_ex(d, _LINK_KEYS)))
    return out


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


def both(ns: str, *args: str) -> tuple[str, list]:
    text = nsmod.ip(ns, *args)
    js = nsmod.ip(ns, "-j", *args)
    return text, js


@pytest.mark.parametrize("family", [4, 6])
def test_routes_table_all(router, family):
    args = (f"-{family}", "route", "show", "table", "all")
    text = nsmod.ip(router, *args)
    raw = nsmod.ip(router, "-j", *args)
    routes = [route_from_json(d, family) for d in json.loads(raw)]
    assert "\tnexthop" in text and ("linkdown" in text or family == 6)
    assert render.render_routes_json(routes) == raw
    assert render.render_routes_text(routes) == text


def test_routes_main_table(router):
    text = nsmod.ip(router, "route", "show")
    raw = nsmod.ip(router, "-j", "route", "show")
    routes = [route_from_json(d, 4) for d in json.loads(raw)]
    assert render.render_routes_text(routes) == text
    assert render.render_routes_json(routes) == raw


def test_nexthops(router):
    text = nsmod.ip(router, "nexthop", "show")
    raw = nsmod.ip(router, "-j", "nexthop", "show")
    objs, groups = nexthops_from_json(json.loads(raw))
    assert any(g.type == "resilient" for g in groups)
    assert render.render_nexthops_json(objs, groups) == raw
    assert render.render_nexthops_text(objs, groups) == text


def test_buckets(router):
    raw = nsmod.ip(router, "-j", "nexthop", "bucket", "show")
    text = nsmod.ip(router, "nexthop", "bucket", "show")
    buckets = buckets_from_json(json.loads(raw))
    assert len(buckets) == 8
    assert render.render_buckets_json(buckets) == raw
    # idle_time runs on between the two dumps: take the text dump's values, check the format.
    idle = [float(m) for m in re.findall(r"idle_time (\S+)", text)]
    import dataclasses

    again = [dataclasses.replace(b, idle_time=t) for b, t in zip(buckets, idle)]
    assert render.render_buckets_text(again) == text


@pytest.mark.parametrize("what", ["link", "addr"])
def test_links_and_addrs(router, what):
    text = nsmod.ip(router, what, "show")
    raw = nsmod.ip(router, "-j", what, "show")
    ifs = interfaces_from_json(json.loads(raw))
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
    (d,) = json.loads(raw)
    route = route_from_json(d, family)
    assert render.render_route_get_json(route) == raw
    assert render.render_route_get_text(route) == text
