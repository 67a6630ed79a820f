"""Pure renderers: our records -> the text and JSON that iproute2 6.1 prints.

Field order, spacing (trailing blanks, the tab before ``nexthop``), the
``"flags":[]`` arrays and the ``%g`` floats follow ip/iproute.c, ip/ipnexthop.c
and ip/ipaddress.c of iproute2 v6.1.0.  Attributes our records do not model
travel in ``extra`` (string values; JSON literals such as ``1000`` or ``true``
are emitted as such) and are printed where iproute2 prints them.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Container, Iterable, Sequence

from anycast_tui.model.types import (
    Address,
    Bucket,
    Interface,
    Nexthop,
    NexthopGroup,
    NexthopObject,
    Route,
)

INFINITY_LIFE_TIME = 4294967295

# print_rt_flags() order.
RT_FLAG_ORDER: tuple[str, ...] = (
    "dead", "onlink", "pervasive", "offload", "trap", "notify", "linkdown", "unresolved",
    "rt_offload", "rt_trap", "rt_offload_failed",
)

# Route attributes kept in ``extra`` that iproute2 prints at fixed places.
_ROUTE_EXTRA_HANDLED = frozenset({"from", "uid", "cache", "iif", "pref", "tos", "expires", "error"})


class G(float):
    """A float that JSON-renders with C's ``%g`` (iproute2's jsonw_float)."""


# --------------------------------------------------------------------------- JSON writer


_string = json.encoder.encode_basestring  # json.dumps(s, ensure_ascii=False) for a str, without its encoder


def dumps(value: object) -> str:
    """Compact JSON exactly as iproute2's json_writer prints it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return "%g" % value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__}")


def _jval(text: str) -> object:
    """An ``extra`` value back to its JSON value (literal if it parses, else the string)."""
    try:
        v = json.loads(text)
    except (ValueError, TypeError):
        return text
    return G(v) if isinstance(v, float) else v


def _doc(items: Iterable[dict]) -> str:
    return dumps(list(items)) + "\n"


def _extra(extra: Iterable[tuple[str, str]]) -> dict[str, str]:
    return dict(extra)


# --------------------------------------------------------------------------- routes


def _host_len(family: int) -> int:
    return 32 if family == 4 else 128


@lru_cache(maxsize=1 << 16)
def format_dst(dst: str, family: int) -> str:
    """``default`` for /0, the bare address for a host prefix, else ``addr/len``."""
    net = ipaddress.ip_network(dst, strict=False)
    if net.prefixlen == 0 and int(net.network_address) == 0:
        return "default"
    if net.prefixlen == _host_len(family):
        return str(net.network_address)
    return f"{net.network_address}/{net.prefixlen}"


def order_flags(flags: Iterable[str]) -> list[str]:
    """Flags in print_rt_flags() order; unknown ones after, in input order."""
    return list(_flag_order(tuple(flags)))


@lru_cache(maxsize=1024)
def _flag_order(flags: tuple[str, ...]) -> tuple[str, ...]:
    fs = list(dict.fromkeys(flags))
    known = [f for f in RT_FLAG_ORDER if f in fs]
    return tuple(known + [f for f in fs if f not in RT_FLAG_ORDER])


def _family_name(family: int) -> str:
    return "inet" if family == 4 else "inet6"


def _route_parts(r: Route, groups: Container[int] = ()) -> tuple[list[tuple[str, object, str]], list[Nexthop] | None]:
    """(key, json value, text) triples in print_route() order, plus the multipath list.

    An IPv6 route through a nexthop *group* prints its next hops as a list even
    when only one is left; ``groups`` names the group ids for that case.
    """
    ex = _extra(r.extra)
    out: list[tuple[str, object, str]] = []
    if r.type != "unicast":
        out.append(("type", r.type, f"{r.type} "))
    d = format_dst(r.dst, r.family)
    out.append(("dst", d, f"{d} "))
    if "from" in ex:
        out.append(("from", ex["from"], f"from {ex['from']} "))
    if r.nhid is not None:
        out.append(("nhid", r.nhid, f"nhid {r.nhid} "))
    if "tos" in ex:
        out.append(("tos", ex["tos"], f"tos {ex['tos']} "))
    # IPv4 prints the paths (one group member = one path); IPv6 prints every group as a list
    multipath = len(r.nexthops) > 1 or (r.family == 6 and r.nhid is not None and r.nhid in groups
                                        and bool(r.nexthops))
    flags = list(r.flags)
    if not multipath and r.nexthops:
        nh = r.nexthops[0]
        flags = list(nh.flags) + flags
        out.extend(_gateway_parts(nh, r.family))
        if nh.dev is not None:
            out.append(("dev", nh.dev, f"dev {nh.dev} "))
    if r.table not in ("main", "254"):
        out.append(("table", r.table, f"table {r.table} "))
    if r.protocol is not None and r.protocol != "boot":
        out.append(("protocol", r.protocol, f"proto {r.protocol} "))
    if r.scope is not None and r.scope != "global":
        out.append(("scope", r.scope, f"scope {r.scope} "))
    if r.prefsrc is not None:
        out.append(("prefsrc", r.prefsrc, f"src {r.prefsrc} "))
    if r.metric is not None and (r.family == 6 or r.metric != 0):  # IPv4 has no RTA_PRIORITY for 0
        out.append(("metric", r.metric, f"metric {r.metric} "))
    fl = order_flags(flags)
    out.append(("flags", fl, "".join(f"{f} " for f in fl)))
    for key, val in r.extra:
        if key not in _ROUTE_EXTRA_HANDLED:
            out.append((key, _jval(val), f"{key} {val} "))
    if "expires" in ex:
        out.append(("expires", _jval(ex["expires"]), f"expires {ex['expires']}sec "))
    if "error" in ex:
        out.append(("error", _jval(ex["error"]), f"error {ex['error']} "))
    if "uid" in ex:
        out.append(("uid", _jval(ex["uid"]), f"uid {ex['uid']} "))
    if "cache" in ex:
        cache = [c for c in ex["cache"].split(",") if c]
        txt = "\n    cache " + (("<" + ",".join(cache) + "> ") if cache else "")
        out.append(("cache", cache, txt))
    if "iif" in ex:
        out.append(("iif", ex["iif"], f"iif {ex['iif']} "))
    if "pref" in ex:
        out.append(("pref", ex["pref"], f"pref {ex['pref']}"))
    return out, (list(r.nexthops) if multipath else None)


def _gateway_parts(nh: Nexthop, family: int) -> list[tuple[str, object, str]]:
    if nh.gateway is None:
        return []
    if nh.gateway_family is not None and nh.gateway_family != family:
        fam = _family_name(nh.gateway_family)
        return [("via", {"family": fam, "host": nh.gateway}, f"via {fam} {nh.gateway} ")]
    return [("gateway", nh.gateway, f"via {nh.gateway} ")]


def _nexthop_parts(nh: Nexthop, family: int) -> list[tuple[str, object, str]]:
    out = _gateway_parts(nh, family)
    out.append(("dev", nh.dev, f"dev {nh.dev} "))
    out.append(("weight", nh.weight, f"weight {nh.weight} "))
    fl = order_flags(nh.flags)
    out.append(("flags", fl, "".join(f"{f} " for f in fl)))
    for key, val in nh.extra:
        out.append((key, _jval(val), f"{key} {val} "))
    return out


def render_route_text(r: Route, groups: Container[int] = ()) -> str:
    parts, mp = _route_parts(r, groups)
    s = "".join(t for _, _, t in parts)
    for nh in mp or ():
        s += "\n\tnexthop " + "".join(t for _, _, t in _nexthop_parts(nh, r.family))
    return s + "\n"


def route_json(r: Route, groups: Container[int] = ()) -> dict:
    parts, mp = _route_parts(r, groups)
    d: dict[str, object] = {k: v for k, v, _ in parts}
    if mp is not None:
        d["nexthops"] = [{k: v for k, v, _ in _nexthop_parts(nh, r.family)} for nh in mp]
    return d


def render_routes_text(routes: Iterable[Route], *, groups: Container[int] = ()) -> str:
    """``ip route show`` text; ``groups``: nexthop group ids (see _route_parts)."""
    return "".join(render_route_text(r, groups) for r in routes)


def render_routes_json(routes: Iterable[Route], *, groups: Container[int] = ()) -> str:
    """``ip -j route show`` JSON (one line)."""
    return _doc(route_json(r, groups) for r in routes)


def render_route_get_text(route: Route) -> str:
    """``ip route get`` text; ``from``/``uid``/``cache``/``iif`` travel in ``route.extra``."""
    return render_route_text(route)


def render_route_get_json(route: Route) -> str:
    """``ip -j route get`` JSON."""
    return _doc([route_json(route)])


# --------------------------------------------------------------------------- nexthop objects


def _tv(seconds: float | int) -> G:
    return G(seconds)


Part = tuple[str, object, str]  # (JSON key, JSON value, text)


def _nh_tail(protocol: str | None, flags: Sequence[str], extra: Iterable[tuple[str, str]]) -> list[Part]:
    out: list[Part] = []
    if protocol is not None and protocol != "unspec":  # RTPROT_UNSPEC is not printed
        out.append(("protocol", protocol, f"proto {protocol} "))
    fl = order_flags(flags)
    out.append(("flags", fl, "".join(f"{f} " for f in fl)))
    for key, val in extra:
        out.append((key, _jval(val), f"{key} {val} "))
    return out


def _object_parts(o: NexthopObject) -> list[tuple[str, object, str]]:
    out: list[tuple[str, object, str]] = [("id", o.id, f"id {o.id} ")]
    if o.gateway is not None:
        out.append(("gateway", o.gateway, f"via {o.gateway} "))
    if o.dev is not None:
        out.append(("dev", o.dev, f"dev {o.dev} "))
    if o.scope is not None and o.scope != "global":
        out.append(("scope", o.scope, f"scope {o.scope} "))
    if o.blackhole:
        out.append(("blackhole", None, "blackhole "))
    out += _nh_tail(o.protocol, o.flags, o.extra)
    if o.fdb:
        out.append(("fdb", None, "fdb"))
    return out


def _group_parts(g: NexthopGroup) -> list[tuple[str, object, str]]:
    members = "/".join(f"{m.id}" + (f",{m.weight}" if m.weight != 1 else "") for m in g.members)
    jm = [({"id": m.id, "weight": m.weight} if m.weight != 1 else {"id": m.id}) for m in g.members]
    out: list[tuple[str, object, str]] = [("id", g.id, f"id {g.id} "), ("group", jm, f"group {members} ")]
    if g.type != "mpath":
        out.append(("type", g.type, f"type {g.type} "))
    if g.type == "resilient":
        args = {
            "buckets": g.buckets or 0,
            "idle_timer": _tv(g.idle_timer or 0),
            "unbalanced_timer": _tv(g.unbalanced_timer or 0),
            "unbalanced_time": _tv(g.unbalanced_time or 0),
        }
        txt = "".join(f"{k} {dumps(v)} " for k, v in args.items())
        out.append(("resilient_args", args, txt))
    ex = [(k, v) for k, v in g.extra if k != "fdb"]
    out += _nh_tail(g.protocol, g.flags, ex)
    if any(k == "fdb" for k, _ in g.extra):
        out.append(("fdb", None, "fdb"))
    return out


def _nh_entries(objects: Iterable[NexthopObject], groups: Iterable[NexthopGroup]) -> list[list[Part]]:
    rows = [(o.id, _object_parts(o)) for o in objects] + [(g.id, _group_parts(g)) for g in groups]
    rows.sort(key=lambda r: r[0])  # the kernel dumps by id
    return [p for _, p in rows]


def render_nexthops_text(objects: Iterable[NexthopObject], groups: Iterable[NexthopGroup] = ()) -> str:
    """``ip nexthop show`` text (objects and groups interleaved by id)."""
    return "".join("".join(t for _, _, t in p) + "\n" for p in _nh_entries(objects, groups))


def render_nexthops_json(objects: Iterable[NexthopObject], groups: Iterable[NexthopGroup] = ()) -> str:
    """``ip -j nexthop show`` JSON."""
    return _doc({k: v for k, v, _ in p} for p in _nh_entries(objects, groups))


def _bucket_json(b: Bucket) -> dict:
    d: dict[str, object] = {"id": b.group_id, "bucket": {"index": b.index, "idle_time": G(b.idle_time), "nhid": b.nhid}}
    d["flags"] = order_flags(b.flags)
    for k, v in b.extra:
        d[k] = _jval(v)
    return d


def render_buckets_text(buckets: Iterable[Bucket]) -> str:
    """``ip nexthop bucket show`` text."""
    lines = []
    for b in buckets:
        s = f"id {b.group_id} index {b.index} idle_time {'%g' % b.idle_time} nhid {b.nhid} "
        s += "".join(f"{f} " for f in order_flags(b.flags))
        s += "".join(f"{k} {v} " for k, v in b.extra)
        lines.append(s + "\n")
    return "".join(lines)


def render_buckets_json(buckets: Iterable[Bucket]) -> str:
    """``ip -j nexthop bucket show`` JSON."""
    return _doc(_bucket_json(b) for b in buckets)


# --------------------------------------------------------------------------- links and addresses

# ``extra`` keys of an Interface, in print_linkinfo() order around the modelled fields.
_LINK_BEFORE_NAME = ("link_index",)
_LINK_AFTER_MTU = ("qdisc",)
_LINK_AFTER_MASTER: tuple[str, ...] = ()
_LINK_AFTER_OPER = ("linkmode", "group", "txqlen")
_LINK_AFTER_TYPE = ("link_pointtopoint", "broadcast", "permaddr", "link_netnsid")
# ``link_netns`` (text only): the peer namespace name that text prints instead of the id.
_LINK_HANDLED = frozenset(_LINK_BEFORE_NAME + _LINK_AFTER_MTU + _LINK_AFTER_OPER + _LINK_AFTER_TYPE + ("link_netns",))


def _link_json(i: Interface, *, addr: bool) -> dict:
    ex = _extra(i.extra)
    d: dict[str, object] = {}
    if i.ifindex is not None:
        d["ifindex"] = i.ifindex
    for k in _LINK_BEFORE_NAME:
        if k in ex:
            d[k] = _jval(ex[k])
    if i.link is not None:
        d["link"] = i.link
    d["ifname"] = i.name
    d["flags"] = list(i.flags)
    if i.mtu is not None:
        d["mtu"] = i.mtu
    for k in _LINK_AFTER_MTU:
        if k in ex:
            d[k] = ex[k]
    if i.master is not None:
        d["master"] = i.master
    d["operstate"] = i.operstate
    for k in _LINK_AFTER_OPER:
        if k in ex and not (addr and k == "linkmode"):
            d[k] = _jval(ex[k]) if k == "txqlen" else ex[k]
    if i.link_type is not None:
        d["link_type"] = i.link_type
    if i.mac is not None:
        d["address"] = i.mac
    for k in _LINK_AFTER_TYPE:
        if k in ex:
            d[k] = _jval(ex[k]) if k in ("link_pointtopoint", "link_netnsid") else ex[k]
    for k, v in i.extra:
        if k not in _LINK_HANDLED:
            d[k] = _jval(v)
    if addr:
        d["addr_info"] = [_addr_json(a) for a in i.addresses]
    return d


def _link_text(i: Interface, *, addr: bool) -> str:
    ex = _extra(i.extra)
    name = i.name
    if i.link is not None:
        name = f"{i.name}@{i.link}"
    elif "link_index" in ex:
        name = f"{i.name}@if{ex['link_index']}"
    s = f"{i.ifindex}: {name}: <{','.join(i.flags)}> "
    if i.mtu is not None:
        s += f"mtu {i.mtu} "
    if "qdisc" in ex:
        s += f"qdisc {ex['qdisc']} "
    if i.master is not None:
        s += f"master {i.master} "
    s += f"state {i.operstate} "
    if not addr and "linkmode" in ex:
        s += f"mode {ex['linkmode']} "
    if "group" in ex:
        s += f"group {ex['group']} "
    if ex.get("txqlen", "0") != "0":
        s += f"qlen {ex['txqlen']}"
    s += f"\n    link/{i.link_type} "
    if i.mac is not None:
        s += i.mac
    if "broadcast" in ex:
        s += (" peer " if "link_pointtopoint" in ex else " brd ") + ex["broadcast"]
    if "permaddr" in ex:
        s += f" permaddr {ex['permaddr']}"
    if "link_netnsid" in ex:
        nsname = ex.get("link_netns")
        s += f" link-netns {nsname}" if nsname else f" link-netnsid {ex['link_netnsid']}"
    s += "\n"
    if addr:
        s += "".join(_addr_text(a) for a in i.addresses)
    return s


_ADDR_HANDLED = frozenset({"address", "metric", "broadcast", "anycast", "valid_life_time", "preferred_life_time"})


def _addr_json(a: Address) -> dict:
    ex = _extra(a.extra)
    d: dict[str, object] = {"family": _family_name(a.family), "local": a.local}
    if "address" in ex:
        d["address"] = ex["address"]
    d["prefixlen"] = a.prefixlen
    if "metric" in ex:
        d["metric"] = _jval(ex["metric"])
    for k in ("broadcast", "anycast"):
        if k in ex:
            d[k] = ex[k]
    d["scope"] = a.scope or "global"
    for f in a.flags:
        d[f] = True
    if a.label is not None:
        d["label"] = a.label
    for k in ("valid_life_time", "preferred_life_time"):
        if k in ex:
            d[k] = _jval(ex[k])
    for k, v in a.extra:
        if k not in _ADDR_HANDLED:
            d[k] = _jval(v)
    return d


def _lft(value: str | None) -> str:
    if value is None or int(value) == INFINITY_LIFE_TIME:
        return "forever"
    return f"{value}sec"


def _addr_text(a: Address) -> str:
    ex = _extra(a.extra)
    s = f"    {_family_name(a.family)} {a.local}"
    if "address" in ex:
        s += f" peer {ex['address']}"
    s += f"/{a.prefixlen} "
    if "metric" in ex:
        s += f"metric {ex['metric']} "
    if "broadcast" in ex:
        s += f"brd {ex['broadcast']} "
    if "anycast" in ex:
        s += f"any {ex['anycast']} "
    s += f"scope {a.scope or 'global'} "
    s += "".join(f"{f} " for f in a.flags)
    if a.label is not None:
        s += a.label
    s += f"\n       valid_lft {_lft(ex.get('valid_life_time'))} preferred_lft {_lft(ex.get('preferred_life_time'))}\n"
    return s


def render_links_json(interfaces: Iterable[Interface]) -> str:
    """``ip -j link show`` JSON."""
    return _doc(_link_json(i, addr=False) for i in interfaces)


def render_links_text(interfaces: Iterable[Interface]) -> str:
    """``ip link show`` text."""
    return "".join(_link_text(i, addr=False) for i in interfaces)


def render_addrs_json(interfaces: Iterable[Interface]) -> str:
    """``ip -j addr show`` JSON."""
    return _doc(_link_json(i, addr=True) for i in interfaces)


def render_addrs_text(interfaces: Iterable[Interface]) -> str:
    """``ip addr show`` text."""
    return "".join(_link_text(i, addr=True) for i in interfaces)
