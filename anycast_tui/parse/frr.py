"""FRR ``vtysh`` outputs -> records: ``show ip|ipv6 route [vrf X] json``, ``show ip route`` text, ``show bgp ... json``.

Mapping of an FRR RIB entry to a ``Route`` (the same rules for JSON and text;
text carries fewer attributes: ``selected``, ``distance`` from ``[distance/metric]``,
``uptime``, ``labels``, a VRF header's name as the table):

* By default only entries in the FIB are returned (``installed`` true, or at
  least one next hop with ``fib`` true / the ``*`` marker): those are what the
  kernel forwards with, so an FRR device's ECMP groups can be built from them.
  ``fib_only=False`` returns every RIB entry (then several per prefix) with
  all their next hops.
* ``nexthops`` are the next hops installed in the FIB only (default).  For a recursive
  next hop FRR lists the unresolved one (no ``fib``) followed by its
  ``resolver`` entries (``fib``): the resolvers are kept, each with
  ``("resolves", <recursive gateway>)`` in its extra.  Next hops not in the FIB
  (duplicates, unresolved recursive ones, inactive ones) are counted in the
  route's extra as ``("nexthops_not_in_fib", "N")``; backup next hops stay
  JSON-encoded under ``backupNexthops``.
* A FIB next hop that is a blackhole gives the route its type: ``blackhole``
  (``blackhole`` / plain ``unreachable``), ``unreachable`` (``reject``, text
  ``ICMP unreachable``), ``prohibit`` (``admin-prohibited``); it adds no Nexthop.
* ``table``: FRR's table id (254 -> ``main``, 255 -> ``local``, 253 ->
  ``default``, others as the number); without one, the VRF name unless it is
  ``default`` (then ``main``).  ``protocol`` is FRR's name (bgp, ospf,
  connected, kernel, static, ...); ``metric`` is FRR's route metric (the kernel
  priority FRR installs with is a constant, 20); ``scope`` is not given by FRR
  (None).  ``onLink`` becomes the ``onlink`` flag.
* Every other key is kept in ``extra`` under its FRR name (``distance``,
  ``selected``, ``installed``, ``vrfName``, ``uptime``, nexthop ``active``,
  ``labels``, ...), values as text.

BGP (``show bgp [vrf X] ipv4|ipv6 [unicast] json``, also ``vrf all``): one
``BgpMultipath`` per prefix.  ``show bgp summary json`` and neighbour JSON
carry no routes and are refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

from anycast_tui.model.types import BgpMultipath, Nexthop, Route
from anycast_tui.parse._common import (FRR_WEIGHT, METRIC, BadValue, address, bounded, extra_value, lines_of, load_json,
                                       pair, pieces, prefix, shown, words)
from anycast_tui.parse.errors import ParseError

KIND_JSON = "frr-route-json"
KIND_TEXT = "frr-route"
KIND_BGP = "frr-bgp-json"

_TABLES = {254: "main", 255: "local", 253: "default"}
_ROUTE_KEYS = frozenset({"protocol", "table", "metric", "nexthops"})
_NH_KEYS = frozenset({"ip", "interfaceName", "weight", "fib", "onLink"})
_BLACKHOLE_KEYS = ("reject", "admin-prohibited", "blackhole", "unreachable")
_Extra = list[tuple[str, str]]


def _show(key: str) -> str:
    """A JSON key for an error message: as is when plain and short, else quoted and cut (never a line break)."""
    return key if len(key) <= 48 and key.isprintable() and key.strip() == key and key else shown(key)


def _table(value: Any, vrf: str | None, where: str) -> str:
    if value is None:
        return vrf if vrf and vrf != "default" else "main"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParseError(0, f"{where}: bad table {shown(value)}", KIND_JSON)
    if isinstance(value, int):
        return _TABLES.get(value, str(value))
    return value


def _blackhole_type(nh: dict) -> str | None:
    if nh.get("reject") is True:
        return "unreachable"
    if nh.get("admin-prohibited") is True:
        return "prohibit"
    if nh.get("blackhole") is True or nh.get("unreachable") is True:
        return "blackhole"
    return None


def _json_nexthop(nh: Any, family: int, where: str, resolves: str | None) -> Nexthop:
    if not isinstance(nh, dict):
        raise ParseError(0, f"{where}: expected an object", KIND_JSON)
    gw = gw_family = None
    ip = nh.get("ip")
    if ip is not None:
        if not isinstance(ip, str):
            raise ParseError(0, f"{where}: bad ip {shown(ip)}", KIND_JSON)
        try:
            gw, fam = address(ip)
        except BadValue as exc:
            raise ParseError(0, f"{where}: {exc}", KIND_JSON) from None
        gw_family = fam if fam != family else None
    dev = nh.get("interfaceName")
    if dev is not None and not isinstance(dev, str):
        raise ParseError(0, f"{where}: bad interfaceName {shown(dev)}", KIND_JSON)
    try:
        weight = bounded(nh.get("weight", 1), "weight", FRR_WEIGHT)
    except BadValue as exc:
        raise ParseError(0, f"{where}: {exc}", KIND_JSON) from None
    flags = ("onlink",) if nh.get("onLink") is True else ()
    extra: _Extra = [(k, extra_value(v)) for k, v in nh.items() if k not in _NH_KEYS]
    if nh.get("onLink") not in (None, True):
        extra.append(("onLink", extra_value(nh.get("onLink"))))
    if resolves is not None and nh.get("resolver") is True:
        extra.append(("resolves", resolves))
    return Nexthop(gw, dev, weight, flags, gw_family, tuple(extra))


def _json_route(dst: str, family: int, entry: Any, where: str, vrf: str | None, fib_only: bool) -> Route | None:
    if not isinstance(entry, dict):
        raise ParseError(0, f"{where}: expected an object", KIND_JSON)
    nhs_raw = entry.get("nexthops", [])
    if not isinstance(nhs_raw, list):
        raise ParseError(0, f"{where}: bad nexthops {shown(nhs_raw)}", KIND_JSON)
    fib_flags = [isinstance(nh, dict) and nh.get("fib") is True for nh in nhs_raw]
    in_fib = entry.get("installed") is True or any(fib_flags)
    if fib_only and not in_fib:
        return None
    vrf_name = entry.get("vrfName", vrf)
    if vrf_name is not None and not isinstance(vrf_name, str):
        raise ParseError(0, f"{where}: bad vrfName {shown(vrf_name)}", KIND_JSON)
    table = _table(entry.get("table"), vrf_name, where)
    protocol = entry.get("protocol")
    if protocol is not None and not isinstance(protocol, str):
        raise ParseError(0, f"{where}: bad protocol {shown(protocol)}", KIND_JSON)
    metric = entry.get("metric")
    if metric is not None:
        try:
            metric = bounded(metric, "metric", METRIC)
        except BadValue as exc:
            raise ParseError(0, f"{where}: {exc}", KIND_JSON) from None
    rtype = "unicast"
    nexthops: list[Nexthop] = []
    skipped = 0
    recursive: str | None = None
    for n, (nh, fib) in enumerate(zip(nhs_raw, fib_flags)):
        w = f"{where} nexthop {n}"
        if not isinstance(nh, dict):
            raise ParseError(0, f"{w}: expected an object", KIND_JSON)
        if nh.get("recursive") is True and isinstance(nh.get("ip"), str):
            recursive = nh["ip"]
        if not fib and fib_only:
            _json_nexthop(nh, family, w, None)  # validate what is not kept as a Nexthop
            skipped += 1
            continue
        if not fib:
            skipped += 1
        bh = _blackhole_type(nh)
        if bh is not None and fib:
            rtype = bh
            continue
        nexthops.append(_json_nexthop(nh, family, w, recursive))
    extra: _Extra = [(k, extra_value(v)) for k, v in entry.items() if k not in _ROUTE_KEYS]
    if vrf is not None and "vrfName" not in entry:
        extra.append(("vrfName", vrf))
    if skipped:
        extra.append(("nexthops_not_in_fib", str(skipped)))
    return Route(dst, family, rtype, table, protocol, None, metric, None, None, tuple(nexthops), (), tuple(extra))


def _routes_of_table(table: dict, vrf: str | None, fib_only: bool, out: list[Route]) -> None:
    for key, entries in table.items():
        where = f"prefix {_show(key)}" if vrf is None else f"vrf {_show(vrf)} prefix {_show(key)}"
        try:
            dst, family = prefix(key)
        except BadValue as exc:
            raise ParseError(0, f"{where}: {exc}", KIND_JSON) from None
        if not isinstance(entries, list):
            raise ParseError(0, f"{where}: expected a list of route entries", KIND_JSON)
        for i, entry in enumerate(entries):
            r = _json_route(dst, family, entry, f"{where} entry {i}", vrf, fib_only)
            if r is not None:
                out.append(r)


def parse_frr_route_json(text: str, *, fib_only: bool = True) -> list[Route]:
    """Parse ``show ip|ipv6 route [vrf X|all] [PREFIX] json`` (one object keyed by prefix, or by VRF then prefix)."""
    top = load_frr_route_json(text)
    return [] if top is None else frr_routes_of(top, fib_only=fib_only)


def load_frr_route_json(text: str) -> dict | None:
    """The one JSON object of ``show ip|ipv6 route ... json`` (None for empty output), checked for shape."""
    items = load_json(text, KIND_JSON)
    if len(items) > 1 or (text.lstrip()[:1] == "[" and items):
        raise ParseError(1, "expected one JSON object keyed by prefix", KIND_JSON)
    return items[0] if items else None


def frr_route_tables(top: dict) -> list[tuple[str | None, Any]]:
    """(VRF or None, {prefix: [entries]}) of a loaded route document: ``vrf all`` is keyed by VRF first."""
    if top and all(isinstance(v, dict) for v in top.values()):  # ``vrf all``: {vrf: {prefix: [...]}}
        return list(top.items())
    return [(None, top)]


def frr_routes_of(top: dict, *, fib_only: bool = True) -> list[Route]:
    """The Routes of a document loaded by :func:`load_frr_route_json`."""
    out: list[Route] = []
    for vrf, table in frr_route_tables(top):
        _routes_of_table(table, vrf, fib_only, out)
    return out


# --------------------------------------------------------------------------- text

_CODE_LINE = re.compile(r"([A-Za-z])([> qr])([* qrtob])\s+(\S+)\s*(.*)")
_DIST = re.compile(r"\[([0-9]{1,10})/([0-9]{1,10})\]\s*(.*)")
_VRF_HEADER = re.compile(r"(?:IPv[46] unicast )?VRF (\S+):")
_CONT = re.compile(r"([* qrtob]?)\s*((?:via|is directly connected|unreachable)\b.*)")
_UPTIME = re.compile(r"XX:XX:XX|\d\d:\d\d:\d\d|(?:\d+[ywdhms])+")
_UNREACH = {"(blackhole)": "blackhole", "(ICMP unreachable)": "unreachable", "(ICMP admin-prohibited)": "prohibit"}
_DEV_VRF = re.compile(r"(\S+?)\(vrf (\S+)\)")
_DEV_WORDS = frozenset({"linkdown", "inactive", "onlink"})


class _TextRoute:
    __slots__ = ("lineno", "raw", "dst", "family", "table", "protocol", "metric", "selected", "type", "nexthops",
                 "skipped", "fib", "extra")

    def __init__(self, lineno: int, raw: str, dst: str, family: int, table: str, protocol: str, metric: int,
                 selected: bool, extra: _Extra):
        self.lineno, self.raw, self.dst, self.family, self.table = lineno, raw, dst, family, table
        self.protocol, self.metric, self.selected, self.extra = protocol, metric, selected, extra
        self.type = "unicast"
        self.nexthops: list[Nexthop] = []
        self.skipped = 0
        self.fib = False

    def route(self, fib_only: bool) -> Route | None:
        if fib_only and not self.fib:
            return None
        extra = [("selected", "true" if self.selected else "false"), *self.extra]
        if self.skipped:
            extra.append(("nexthops_not_in_fib", str(self.skipped)))
        return Route(self.dst, self.family, self.type, self.table, self.protocol, None, self.metric, None, None,
                     tuple(self.nexthops), (), tuple(extra))


_PROTOCOLS = {"K": "kernel", "C": "connected", "L": "local", "S": "static", "R": "rip", "O": "ospf", "I": "isis",
              "B": "bgp", "E": "eigrp", "N": "nhrp", "T": "table", "v": "vnc", "V": "vnc-direct", "A": "babel",
              "D": "sharp", "F": "pbr", "f": "openfabric", "t": "table-direct"}


def _text_nexthop(route: _TextRoute, marker: str, body: str, lineno: int, raw: str, fib_only: bool) -> None:
    segs = pieces(body, ",")
    first = next(segs).strip()
    head = words(first)
    fib = marker == "*"
    route.fib = route.fib or fib
    gw = gw_family = dev = None
    weight = 1
    flags: list[str] = []
    extra: _Extra = []
    if head[0] == "via":
        if len(head) < 2:
            raise ParseError(lineno, "'via' without a gateway", KIND_TEXT, raw)
        try:
            gw, fam = address(head[1])
        except BadValue as exc:
            raise ParseError(lineno, f"bad gateway: {exc}", KIND_TEXT, raw) from None
        gw_family = fam if fam != route.family else None
        rest = head[2:]
        if rest[:1] == ["(recursive)"]:
            extra.append(("recursive", "true"))
            rest = rest[1:]
        if len(rest) >= 2 and rest[0] == "(vrf" and rest[1].endswith(")"):
            extra.append(("vrf", rest[1][:-1]))
            rest = rest[2:]
        for word in rest:
            extra.append(("info", word))
    elif first == "is directly connected":
        extra.append(("directlyConnected", "true"))
    elif head[0] == "unreachable":
        kind = _UNREACH.get(" ".join(head[1:]))
        if kind is None:
            raise ParseError(lineno, f"unknown unreachable kind {shown(' '.join(head[1:]))}", KIND_TEXT, raw)
        if fib:
            route.type = kind
            return
    else:
        raise ParseError(lineno, f"unexpected next hop {shown(first)}", KIND_TEXT, raw)
    for seg in segs:
        words_ = words(seg)
        if not words_:
            continue
        if words_[0] == "weight" and len(words_) == 2:
            try:
                weight = bounded(words_[1], "weight", FRR_WEIGHT)
            except BadValue as exc:
                raise ParseError(lineno, str(exc), KIND_TEXT, raw) from None
        elif len(words_) == 1 and _UPTIME.fullmatch(words_[0]):
            extra.append(pair("uptime", words_[0]))
        elif words_[0] == "label" and len(words_) >= 2:
            extra.append(pair("labels", " ".join(words_[1:])))
        elif dev is None and gw is not None or dev is None and first == "is directly connected":
            dev = words_[0]
            vm = _DEV_VRF.fullmatch(dev + (" " + words_[1] if len(words_) > 1 else ""))
            if vm:  # leaked route: ``swp4(vrf blue)``
                dev = vm.group(1)
                extra.append(("vrf", vm.group(2)))
                words_ = [dev, *words_[2:]]
            for w in words_[1:]:
                if w in _DEV_WORDS:
                    flags.append(w)
                else:
                    extra.append(pair("info", w))
        elif len(words_) == 1 and words_[0] in _DEV_WORDS:
            flags.append(words_[0])
        else:
            extra.append(pair("info", seg.strip()))
    if not fib:
        route.skipped += 1
        if fib_only:
            return
    if not fib and gw is None and dev is None:
        return
    route.nexthops.append(Nexthop(gw, dev, weight, tuple(flags), gw_family, tuple(extra)))


def parse_frr_route(text: str, *, fib_only: bool = True) -> list[Route]:
    """Parse ``show ip|ipv6 route [vrf X]`` text (``Codes:`` legend and VRF headers optional)."""
    lines = lines_of(text, KIND_TEXT)
    out: list[Route] = []
    cur: _TextRoute | None = None
    table = "main"
    in_codes = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            in_codes = False
            continue
        if line.startswith("Codes:"):
            in_codes = True
            continue
        m = _CODE_LINE.fullmatch(line)
        if in_codes and (m is None or "/" not in m.group(4) and ":" not in m.group(4)):
            continue
        in_codes = False
        vm = _VRF_HEADER.fullmatch(line)
        if vm:
            table = "main" if vm.group(1) == "default" else vm.group(1)
            continue
        if m is None or m.group(1) not in _PROTOCOLS:
            cm = _CONT.fullmatch(line)
            if cm is None:
                raise ParseError(lineno, "not an FRR route line", KIND_TEXT, raw)
            if cur is None:
                raise ParseError(lineno, "next hop line before any route", KIND_TEXT, raw)
            _text_nexthop(cur, cm.group(1), cm.group(2), lineno, raw, fib_only)
            continue
        code, sel, marker, pfx, rest = m.groups()
        try:
            dst, family = prefix(pfx)
        except BadValue as exc:
            raise ParseError(lineno, str(exc), KIND_TEXT, raw) from None
        if cur is not None:
            r = cur.route(fib_only)
            if r is not None:
                out.append(r)
        extra: _Extra = []
        metric = 0
        dm = _DIST.fullmatch(rest)
        if dm:
            extra.append(("distance", dm.group(1)))
            try:
                metric = bounded(dm.group(2), "metric", METRIC)
            except BadValue as exc:
                raise ParseError(lineno, str(exc), KIND_TEXT, raw) from None
            rest = dm.group(3)
        if table != "main":
            extra.append(("vrfName", table))
        if sel == "q" or marker == "q":
            extra.append(("queued", "true"))
        cur = _TextRoute(lineno, raw, dst, family, table, _PROTOCOLS[code], metric, sel == ">", extra)
        cm = _CONT.fullmatch(rest)
        if cm is None or cm.group(1):
            raise ParseError(lineno, f"unexpected text after the prefix: {shown(rest)}", KIND_TEXT, raw)
        _text_nexthop(cur, marker, cm.group(2), lineno, raw, fib_only)
    if cur is not None:
        r = cur.route(fib_only)
        if r is not None:
            out.append(r)
    return out


# --------------------------------------------------------------------------- BGP


def _bgp_prefix(key: str, paths: Any, vrf: str, where: str, common: _Extra) -> BgpMultipath:
    try:
        dst, family = prefix(key)
    except BadValue as exc:
        raise ParseError(0, f"{where}: {exc}", KIND_BGP) from None
    if not isinstance(paths, list):
        raise ParseError(0, f"{where}: expected a list of paths", KIND_BGP)
    best: str | None = None
    multi: list[str] = []
    valid = 0
    extra: _Extra = list(common)
    for i, path in enumerate(paths):
        if not isinstance(path, dict):
            raise ParseError(0, f"{where} path {i}: expected an object", KIND_BGP)
        nhs = path.get("nexthops", [])
        if not isinstance(nhs, list) or not all(isinstance(n, dict) for n in nhs):
            raise ParseError(0, f"{where} path {i}: bad nexthops", KIND_BGP)
        used = [n for n in nhs if n.get("used") is True] or nhs
        hop: str | None = None
        if used:
            ip = used[0].get("ip")
            if ip is not None:
                try:
                    hop = address(ip)[0] if isinstance(ip, str) else None
                except BadValue:
                    hop = None
                if hop is None:
                    raise ParseError(0, f"{where} path {i}: bad next hop {shown(ip)}", KIND_BGP)
        is_valid = path.get("valid") is True
        valid += is_valid
        if path.get("bestpath") is True:
            best = hop
        if is_valid and (path.get("bestpath") is True or path.get("multipath") is True) and hop is not None:
            multi.append(hop)
        extra.append(("path", json.dumps(path, separators=(",", ":"))))
    return BgpMultipath(dst, family, vrf, len(paths), valid, best, tuple(multi), tuple(extra))


def _bgp_table(obj: dict, vrf_hint: str | None, out: list[BgpMultipath]) -> None:
    routes = obj.get("routes")
    vrf = obj.get("vrfName", vrf_hint) or "default"
    if not isinstance(vrf, str):
        raise ParseError(0, f"bad vrfName {shown(vrf)}", KIND_BGP)
    if not isinstance(routes, dict):
        raise ParseError(0, f"vrf {_show(vrf)}: 'routes' is not an object", KIND_BGP)
    common: _Extra = [(k, extra_value(obj[k])) for k in ("routerId", "localAS") if k in obj]
    for key, paths in routes.items():
        out.append(_bgp_prefix(key, paths, vrf, f"vrf {_show(vrf)} prefix {_show(key)}", common))


def _bgp_peers(obj: Any) -> bool:
    """A BGP summary or neighbour object (no routes)."""
    return isinstance(obj, dict) and any(k in obj for k in ("peers", "bgpNeighborAddr", "remoteAs", "ipv4Unicast"))


def parse_frr_bgp_json(text: str) -> list[BgpMultipath]:
    """Parse ``show bgp [vrf X|all] [ipv4|ipv6] [unicast] json``: multipath state per prefix."""
    items = load_json(text, KIND_BGP)
    if not items:
        return []
    if len(items) > 1 or text.lstrip()[:1] == "[":
        raise ParseError(1, "expected one JSON object with 'routes'", KIND_BGP)
    top = items[0]
    out: list[BgpMultipath] = []
    if "routes" in top:
        _bgp_table(top, None, out)
        return out
    if top and all(isinstance(v, dict) and "routes" in v for v in top.values()):  # vrf all
        for vrf, obj in top.items():
            _bgp_table(obj, vrf, out)
        return out
    if any(k in top for k in ("ipv4Unicast", "ipv6Unicast", "peers", "l2VpnEvpn")) or _bgp_peers(top) or any(
            _bgp_peers(v) or isinstance(v, dict) and any(_bgp_peers(w) for w in v.values()) for v in top.values()):
        raise ParseError(0, "BGP summary/neighbour JSON has no routes; use 'show bgp [vrf X] ipv4|ipv6 json'",
                         KIND_BGP)
    raise ParseError(0, "no 'routes' object: not 'show bgp ... json' output", KIND_BGP)


# --------------------------------------------------------------------------- detection


def detect(text: str) -> str | None:
    """``frr-route-json`` / ``frr-bgp-json`` / ``frr-route`` when ``text`` looks like one, else None."""
    body = text.lstrip()
    if body[:1] == "{":
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            if "routes" in data or any(k in data for k in ("ipv4Unicast", "ipv6Unicast", "routerId")):
                return KIND_BGP
            first = next(iter(data.values()), None)
            if isinstance(first, dict):
                if "routes" in first or _bgp_peers(first) or any(_bgp_peers(v) for v in first.values()):
                    return KIND_BGP
                first = next(iter(first.values()), None)
            if isinstance(first, list) and first and isinstance(first[0], dict) and \
                    {"protocol", "nexthops", "prefix", "selected", "installed"} & first[0].keys() and \
                    "dst" not in first[0]:
                return KIND_JSON
            return None
        if data is None and '"dst"' not in body:
            if '"routes"' in body or '"bestpath"' in body or '"pathFrom"' in body:
                return KIND_BGP
            if '"nexthops"' in body or '"selected"' in body or '"installed"' in body:
                return KIND_JSON
        return None
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("Codes:") or _VRF_HEADER.fullmatch(line):
            return KIND_TEXT
        m = _CODE_LINE.fullmatch(line)
        if m and m.group(1) in _PROTOCOLS and (_DIST.match(m.group(5)) or _CONT.fullmatch(m.group(5))):
            return KIND_TEXT
        return None
    return None
