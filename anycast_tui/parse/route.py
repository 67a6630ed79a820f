"""``ip route show`` text and ``ip -j route show`` JSON -> ``Route`` records.

Canonical form (the same from text and from JSON of one table):

* ``dst`` is a prefix with length (``default`` -> ``0.0.0.0/0`` / ``::/0``).
* Omitted defaults are filled: type ``unicast``, table ``main``, protocol
  ``boot``, scope ``global``, metric ``0`` (iproute2 prints them only with
  ``-d``, or not at all for metric 0), so ``ip route`` and ``ip -d route`` agree.
* A single-path route has one Nexthop (weight 1) with the gateway, dev and the
  next-hop flags (``dead``, ``onlink``, ``linkdown``, ...); route-only flags
  (``rt_offload``, ``rt_trap``, ``rt_offload_failed``, ``notify``) stay on the
  route.  A route with neither gateway nor dev has no next hops.
* Unmodelled attributes go to ``extra`` under the JSON key names, values as
  text: ``from``, ``tos``, ``expires`` (seconds), ``error``, ``pref``, ``uid``,
  ``realm``/``realms``, ``as``, ``nh_info`` (normalised ``ip nexthop`` text),
  metrics (``mtu``, ``advmss``, ``rtt`` in ms, ``congctl``, ``features``, ...).
  Text-only details (``mtu lock``) add a ``locked`` entry.
* Family comes from the addresses, then ``pref`` (printed for IPv6 only), then
  the ``family`` argument, else 4.
* Numbers the kernel cannot hold are a ParseError naming the value: a next
  hop's weight is 1..256 (``rtnh_hops`` is a u8 of weight-1), ``metric`` and
  ``nhid`` are u32 (``nhid`` 1..).

Text lines are taken with their indentation stripped: continuation lines are
recognised by their first word (``nexthop``, ``nh_info``, ``cache``), so an
excerpt indented by its host document parses the same.  ``ip -o`` lines (``\\``
separators) are split back into lines.
"""

from __future__ import annotations

from typing import Any

from anycast_tui.model.types import Nexthop, Route
from anycast_tui.parse._common import (LONG_LINE, METRIC, NH_ID, ROUTE_WEIGHT, BadValue, address, bounded, extra_value,
                                       json_items, lines_of, pair, pieces, prefix, shown, words)
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import Text

KIND_TEXT = "ip-route"
KIND_JSON = "ip-route-json"

ROUTE_TYPES = frozenset(
    {"unicast", "local", "broadcast", "blackhole", "unreachable", "prohibit", "throw", "multicast", "anycast",
     "nat", "xresolve"}
)
# Flags that belong to the route itself (RTM_F_*); every other flag of a single-path route is its next hop's.
ROUTE_ONLY_FLAGS = frozenset({"notify", "rt_offload", "rt_trap", "rt_offload_failed", "cloned", "cached"})
KNOWN_FLAGS = frozenset({"dead", "onlink", "pervasive", "offload", "trap", "linkdown", "unresolved"}) | ROUTE_ONLY_FLAGS

# Route metrics (RTA_METRICS): text name -> JSON name where they differ.
_METRICS = ("mtu", "window", "rtt", "rttvar", "ssthresh", "sstresh", "cwnd", "advmss", "reordering", "hoplimit",
            "initcwnd", "features", "rto_min", "initrwnd", "quickack", "congctl", "fastopen_no_cookie")
_TIME_METRICS = frozenset({"rtt", "rttvar", "rto_min"})
_TEXT_EXTRA_KEYS = frozenset({"from", "tos", "dsfield", "pref", "error", "uid", "realm", "realms", "encap",
                              "iif", "ttl-propagate", "as", "expires", "nh_info"}) | frozenset(_METRICS)
_CONTINUATION = frozenset({"nexthop", "nh_info", "cache"})
_FAMILY_WORDS = {"inet": 4, "inet6": 6}

_Extra = list[tuple[str, str]]


def _ms(value: str) -> str:
    """``10ms`` -> ``10``; ``1.5s`` -> ``1500`` (iproute2 prints RTT-like metrics this way)."""
    try:
        if value.endswith("ms"):
            return str(int(value[:-2]))
        if value.endswith("s"):
            return str(round(float(value[:-1]) * 1000))
    except (ValueError, OverflowError):
        pass
    return value


class _Line:
    """Token cursor over one text line, raising ParseError with the line's number."""

    __slots__ = ("toks", "i", "lineno", "raw")

    def __init__(self, toks: list[str], lineno: int, raw: str):
        self.toks = toks
        self.i = 0
        self.lineno = lineno
        self.raw = raw

    def error(self, reason: str) -> ParseError:
        return ParseError(self.lineno, reason, KIND_TEXT, self.raw)

    def value(self, key: str) -> str:
        if self.i >= len(self.toks):
            raise self.error(f"'{key}' without a value")
        v = self.toks[self.i]
        self.i += 1
        return v

    def more(self) -> bool:
        return self.i < len(self.toks)

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None


def _is_keyword(tok: str | None) -> bool:
    return tok is None or tok in _TEXT_EXTRA_KEYS or tok in KNOWN_FLAGS or tok in _NH_KEYS or tok in _ROUTE_KEYS


_ROUTE_KEYS = frozenset({"via", "dev", "table", "proto", "scope", "src", "metric", "nhid"})
_NH_KEYS = frozenset({"via", "dev", "weight"})


def _gateway(ln: _Line) -> tuple[str, int, int | None]:
    """After ``via``: ``[inet|inet6] ADDR`` -> (address, its family, explicit family or None)."""
    tok = ln.value("via")
    explicit = _FAMILY_WORDS.get(tok)
    if explicit is not None:
        tok = ln.value("via " + tok)
    try:
        gw, fam = address(tok)
    except BadValue as exc:
        raise ln.error(f"bad gateway: {exc}") from None
    return gw, fam, explicit


def _common_attr(key: str, ln: _Line, extra: _Extra, flags: list[str]) -> None:
    """Attributes shared by route lines and nexthop lines: flags, metrics and other extras."""
    if key in KNOWN_FLAGS:
        flags.append(key)
        return
    if key in _METRICS:
        v = ln.value(key)
        if v == "lock":
            v = ln.value(key + " lock")
            extra.append(pair("locked", key))
        if key in _TIME_METRICS:
            v = _ms(v)
        elif key == "sstresh":
            key = "ssthresh"
        extra.append(pair(key, v))
        return
    if key == "expires":
        v = ln.value(key)
        extra.append(pair("expires", v[:-3] if v.endswith("sec") else v))
        return
    if key == "dsfield":
        extra.append(pair("tos", ln.value(key)))
        return
    if key == "as":
        v = ln.value(key)
        if v == "to":
            v = ln.value("as to")
        extra.append(pair("as", v))
        return
    if key in _TEXT_EXTRA_KEYS:
        extra.append(pair(key, ln.value(key)))
        return
    # Unknown word: a key with a value unless it is last or followed by a keyword (then a flag).
    nxt = ln.peek()
    if _is_keyword(nxt):
        flags.append(key)
    else:
        extra.append(pair(key, ln.value(key)))


class _Pending:
    """A route whose continuation lines (``nexthop``, ``nh_info``, ``cache``) may still follow."""

    __slots__ = ("lineno", "raw", "type", "dst", "fam_hint", "table", "protocol", "scope", "metric", "prefsrc",
                 "nhid", "gw", "gw_fam", "gw_explicit", "dev", "flags", "extra", "nexthops", "pref6")

    def __init__(self, ln: _Line):
        self.lineno = ln.lineno
        self.raw = ln.raw
        toks = ln.toks
        head = toks[0]
        self.type = "unicast"
        if head in ROUTE_TYPES:
            self.type = head
            ln.i = 1
            if not ln.more():
                raise ln.error(f"route type '{head}' without a destination")
            head = toks[1]
        ln.i += 1
        if head != "default":
            try:
                self.dst, self.fam_hint = prefix(head)
            except BadValue:
                raise ln.error(f"unexpected token {shown(head)} in route") from None
        else:
            self.dst, self.fam_hint = "default", None
        self.table = "main"
        self.protocol = "boot"
        self.scope = "global"
        self.metric = 0
        self.prefsrc: str | None = None
        self.nhid: int | None = None
        self.gw: str | None = None
        self.gw_fam: int | None = None
        self.gw_explicit: int | None = None
        self.dev: str | None = None
        self.flags: list[str] = []
        self.extra: _Extra = []
        self.nexthops: list[Nexthop] | None = None
        self.pref6 = False
        while ln.more():
            key = toks[ln.i]
            ln.i += 1
            if key == "via":
                self.gw, self.gw_fam, self.gw_explicit = _gateway(ln)
            elif key == "dev":
                self.dev = ln.value(key)
            elif key == "table":
                self.table = ln.value(key)
            elif key == "proto":
                self.protocol = ln.value(key)
            elif key == "scope":
                self.scope = ln.value(key)
            elif key == "src":
                v = ln.value(key)
                try:
                    self.prefsrc = address(v)[0]
                except BadValue as exc:
                    raise ln.error(f"bad src: {exc}") from None
            elif key == "metric":
                try:
                    self.metric = bounded(ln.value(key), "metric", METRIC)
                except BadValue as exc:
                    raise ln.error(str(exc)) from None
            elif key == "nhid":
                try:
                    self.nhid = bounded(ln.value(key), "nhid", NH_ID)
                except BadValue as exc:
                    raise ln.error(str(exc)) from None
            else:
                if key == "pref":
                    self.pref6 = True
                _common_attr(key, ln, self.extra, self.flags)

    def continuation(self, ln: _Line, nexthop_cache: dict) -> None:
        head = ln.toks[0]
        ln.i = 1
        if head == "nexthop":
            if self.nexthops is None:
                self.nexthops = []
            self.nexthops.append(_text_nexthop(ln, nexthop_cache))
        elif head == "nh_info":
            self.extra.append(("nh_info", _nh_info_text(ln)))
        else:  # cache [<flags,...>] [attributes]
            rest = ln.toks[1:]
            if len(rest) == 1 and rest[0].startswith("<") and rest[0].endswith(">"):
                self.extra.append(("cache", rest[0][1:-1]))
            else:
                self.extra.append(("cache", " ".join(rest)))

    def finish(self, family: int | None, cache: dict) -> Route:
        fam = self.fam_hint
        if fam is None and self.gw_fam is not None:
            # ``via inet6 X`` (RTA_VIA) is printed only when the gateway's family differs from the route's.
            fam = self.gw_fam if self.gw_explicit is None else 10 - self.gw_explicit
        if fam is None and self.prefsrc is not None:
            fam = address(self.prefsrc)[1]
        if fam is None and self.nexthops:
            for nh in self.nexthops:
                if nh.gateway is not None and nh.gateway_family is None:
                    fam = address(nh.gateway)[1]
                    break
        if fam is None:
            fam = 6 if self.pref6 else (family or 4)
        dst = self.dst if self.dst != "default" else prefix("default", fam)[0]
        route_flags = self.flags
        if self.nexthops is not None:
            nhs = tuple(self.nexthops)
        elif self.gw is not None or self.dev is not None:
            nh_flags = tuple(f for f in self.flags if f not in ROUTE_ONLY_FLAGS)
            route_flags = [f for f in self.flags if f in ROUTE_ONLY_FLAGS]
            gw_family = self.gw_explicit if self.gw_explicit is not None and self.gw_explicit != fam else None
            key = ("single", self.gw, self.dev, nh_flags, gw_family)
            nh = cache.get(key)
            if nh is None:
                nh = cache[key] = Nexthop(self.gw, self.dev, 1, nh_flags, gw_family)
            nhs = (nh,)
        else:
            nhs = ()
        return Route(dst, fam, _shared(cache, self.type), _shared(cache, self.table), _shared(cache, self.protocol),
                     _shared(cache, self.scope), self.metric, self.prefsrc, self.nhid, nhs, tuple(route_flags),
                     tuple(self.extra))


def _shared(cache: dict, value: str | None) -> str | None:
    """One string object per distinct value of a parse (a route's type, table, protocol, scope): the JSON decoder
    and ``split`` make a new one per route, ~58 bytes each — 30 MB of ``"bgp"`` in a 500,000-route table.  Kept in
    the parse's own cache, so a device printing a new value per route costs only that parse."""
    return value if value is None else cache.setdefault(value, value)


def _text_nexthop(ln: _Line, cache: dict) -> Nexthop:
    gw = dev = None
    gw_family = None
    weight = 1
    flags: list[str] = []
    extra: _Extra = []
    while ln.more():
        key = ln.toks[ln.i]
        ln.i += 1
        if key == "via":
            gw, _, explicit = _gateway(ln)
            gw_family = explicit
        elif key == "dev":
            dev = ln.value(key)
        elif key == "weight":
            try:
                weight = bounded(ln.value(key), "weight", ROUTE_WEIGHT)
            except BadValue as exc:
                raise ln.error(str(exc)) from None
        else:
            _common_attr(key, ln, extra, flags)
    k = (gw, dev, weight, tuple(flags), gw_family, tuple(extra))
    nh = cache.get(k)
    if nh is None:
        nh = cache[k] = Nexthop(gw, dev, weight, k[3], gw_family, k[5])
    return nh


def _nh_info_text(ln: _Line) -> str:
    from anycast_tui.parse.nexthop import format_entry, parse_ip_nexthop

    body = " ".join(ln.toks[1:])
    try:
        table = parse_ip_nexthop(body)
    except ParseError as exc:
        raise ln.error(f"bad nh_info: {exc.reason}") from None
    entries = (*table.objects, *table.groups)
    return format_entry(entries[0]) if len(entries) == 1 else body


def parse_ip_route(text: Text, *, family: int | None = None) -> list[Route]:
    """Parse ``ip [-6] [-d] [-o] route show [table all]`` text."""
    lines = lines_of(text, KIND_TEXT)
    routes: list[Route] = []
    pending: _Pending | None = None
    cache: dict = {}
    # One long ``ip -o`` line can hold many routes of a few bytes each: identical ones (same text, all on that
    # line) are one Route object, so memory stays linear in the input's size, not in its route count.  Lines of
    # normal length skip this.
    same: dict[tuple[str, ...], Route] = {}
    key: list[str] | None = None  # the pending route's segments while it lies within one long line
    start = 0

    def finish(p: _Pending) -> Route:
        if key is None:
            return _finish(p, family, cache)
        k = tuple(key)
        got = same.get(k)
        if got is None:
            got = _finish(p, family, cache)
            if len(same) < 65536:
                same[k] = got
        return got

    for lineno, raw in enumerate(lines, 1):
        long = len(raw) > LONG_LINE
        segments = pieces(raw, "\\") if "\\" in raw else (raw,)
        for seg in segments:
            toks = words(seg)
            if not toks:
                continue
            ln = _Line(toks, lineno, raw)
            if toks[0] in _CONTINUATION:
                if pending is None:
                    raise ln.error(f"'{toks[0]}' line before any route")
                pending.continuation(ln, cache)
                if key is not None:
                    if lineno == start:
                        key.append(seg)
                    else:
                        key = None
                continue
            if pending is not None:
                routes.append(finish(pending))
            pending = _Pending(ln)
            key, start = ([seg] if long else None), lineno
    if pending is not None:
        routes.append(finish(pending))
    return routes


def _finish(p: _Pending, family: int | None, cache: dict) -> Route:
    r = p.finish(family, cache)
    if p.nexthops and any(nh.gateway_family is not None for nh in p.nexthops):
        # Multipath next hops were interned before the family was known: drop a redundant explicit family.
        nhs = tuple(_same_family(nh, r.family, cache) for nh in r.nexthops)
        if nhs != r.nexthops:
            r = Route(r.dst, r.family, r.type, r.table, r.protocol, r.scope, r.metric, r.prefsrc, r.nhid, nhs,
                      r.flags, r.extra)
    return r


def _same_family(nh: Nexthop, family: int, cache: dict) -> Nexthop:
    if nh.gateway_family is None or nh.gateway_family != family:
        return nh
    k = (nh.gateway, nh.dev, nh.weight, nh.flags, None, nh.extra)
    got = cache.get(k)
    if got is None:
        got = cache[k] = Nexthop(nh.gateway, nh.dev, nh.weight, nh.flags, None, nh.extra)
    return got


# --------------------------------------------------------------------------- JSON

_JSON_ROUTE_KEYS = frozenset({"type", "dst", "gateway", "via", "dev", "table", "protocol", "scope", "metric",
                              "prefsrc", "nhid", "flags", "nexthops"})
_JSON_NH_KEYS = frozenset({"gateway", "via", "dev", "weight", "flags"})
_JSON_METRIC_NAMES = {"congestion": "congctl", "sstresh": "ssthresh"}


def _json_extra(key: str, value: Any, out: _Extra, where: str) -> None:
    if key == "metrics":
        items = value if isinstance(value, list) else [value]
        for m in items:
            if not isinstance(m, dict):
                out.append(("metrics", extra_value(m)))
                continue
            for mk, mv in m.items():
                if mv is None and mk not in _METRICS:  # features: {"ecn": null}
                    out.append(("features", mk))
                else:
                    out.append((_JSON_METRIC_NAMES.get(mk, mk), extra_value(mv)))
        return
    if key == "flow" and isinstance(value, dict):
        if "from" in value:
            out.append(("realms", f"{value.get('from')}/{value.get('to')}"))
        else:
            out.append(("realm", extra_value(value.get("to"))))
        return
    if key == "cache" and isinstance(value, list) and all(isinstance(c, str) for c in value):
        out.append(("cache", ",".join(value)))
        return
    if key == "newdst":
        out.append(("as", extra_value(value)))
        return
    if key == "nh_info" and isinstance(value, dict):
        from anycast_tui.parse.nexthop import entry_from_json, format_entry

        try:
            out.append(("nh_info", format_entry(entry_from_json(value, 0))))
        except ParseError as exc:
            raise ParseError(0, f"{where}: bad nh_info: {exc.reason}", KIND_JSON) from None
        return
    out.append((key, extra_value(value)))


def _json_gateway(obj: dict, where: str) -> tuple[str | None, int | None, int | None]:
    gw = obj.get("gateway")
    if gw is not None:
        if not isinstance(gw, str):
            raise ParseError(0, f"{where}: bad gateway {shown(gw)}", KIND_JSON)
        try:
            g, fam = address(gw)
        except BadValue as exc:
            raise ParseError(0, f"{where}: bad gateway: {exc}", KIND_JSON) from None
        return g, fam, None
    via = obj.get("via")
    if via is None:
        return None, None, None
    if not isinstance(via, dict) or not isinstance(via.get("host"), str):
        raise ParseError(0, f"{where}: bad via {shown(via)}", KIND_JSON)
    vfam = via.get("family")
    explicit = _FAMILY_WORDS.get(vfam) if isinstance(vfam, str) else None
    try:
        g, fam = address(via["host"])
    except BadValue as exc:
        raise ParseError(0, f"{where}: bad via: {exc}", KIND_JSON) from None
    return g, fam, explicit if explicit is not None else fam


def _flags(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise ParseError(0, f"{where}: bad flags {shown(value)}", KIND_JSON)
    return tuple(value)


def _str(obj: dict, key: str, default: Any, where: str) -> Any:
    v = obj.get(key, default)
    if v is default or type(v) is str:
        return v
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ParseError(0, f"{where}: bad {key} {shown(v)}", KIND_JSON)
    return str(v)


def _json_nexthops(items: Any, idx: int, cache: dict) -> tuple[list[Nexthop], list[int | None]]:
    """Next hops of a multipath route; identical next hops are parsed once and shared."""
    if type(items) is not list:
        raise ParseError(0, f"route {idx}: bad nexthops {shown(items)}", KIND_JSON)
    out: list[Nexthop] = []
    fams: list[int | None] = []
    for n, nh in enumerate(items):
        if type(nh) is dict:
            # The key set is part of the key: an entry is cached only when it has no other keys
            # than _JSON_NH_KEYS (below), so a next hop carrying anything else never hits.
            try:
                flags = nh.get("flags")
                key = (tuple(nh), nh.get("gateway"), nh.get("dev"), nh.get("weight"), type(nh.get("weight")),
                       tuple(flags) if type(flags) is list else flags)
                got = cache.get(key)
            except TypeError:  # unhashable garbage: the slow path says what is wrong
                key = got = None
            if got is not None:
                out.append(got[0])
                fams.append(got[1])
                continue
        else:
            key = None
        rec, fam = _json_nexthop(nh, f"route {idx} nexthop {n}")
        if key is not None and nh.keys() <= _JSON_NH_KEYS:
            cache[key] = (rec, fam)
        out.append(rec)
        fams.append(fam)
    return out, fams


def _json_nexthop(nh: Any, w: str) -> tuple[Nexthop, int | None]:
    if not isinstance(nh, dict):
        raise ParseError(0, f"{w}: expected an object", KIND_JSON)
    dev = nh.get("dev")
    gw, gfam, explicit = _json_gateway(nh, w)
    if dev is not None and not isinstance(dev, str):
        raise ParseError(0, f"{w}: bad dev {shown(dev)}", KIND_JSON)
    try:
        weight = bounded(nh.get("weight", 1), "weight", ROUTE_WEIGHT)
    except BadValue as exc:
        raise ParseError(0, f"{w}: {exc}", KIND_JSON) from None
    extra: _Extra = []
    for k, v in nh.items():
        if k not in _JSON_NH_KEYS:
            _json_extra(k, v, extra, w)
    rec = Nexthop(gw, dev, weight, _flags(nh.get("flags"), w), explicit, tuple(extra))
    return rec, (gfam if explicit is None else None)


def _json_route(obj: dict, idx: int, family: int | None, cache: dict) -> Route:
    get = obj.get
    dst_raw = get("dst")
    if type(dst_raw) is not str:
        raise ParseError(0, f"route {idx}: missing or bad dst {shown(dst_raw)}", KIND_JSON)
    rtype = get("type", "unicast")
    if type(rtype) is not str:
        raise ParseError(0, f"route {idx}: bad type {shown(rtype)}", KIND_JSON)
    fam: int | None = None
    if dst_raw != "default":
        try:
            dst, fam = prefix(dst_raw)
        except BadValue as exc:
            raise ParseError(0, f"route {idx}: bad dst: {exc}", KIND_JSON) from None
    if "gateway" in obj or "via" in obj:
        gw, gfam, explicit = _json_gateway(obj, f"route {idx}")
    else:
        gw = gfam = explicit = None
    dev = get("dev")
    if dev is not None and type(dev) is not str:
        raise ParseError(0, f"route {idx}: bad dev {shown(dev)}", KIND_JSON)
    prefsrc = get("prefsrc")
    if prefsrc is not None:
        if type(prefsrc) is not str:
            raise ParseError(0, f"route {idx}: bad prefsrc {shown(prefsrc)}", KIND_JSON)
        try:
            prefsrc = address(prefsrc)[0]
        except BadValue as exc:
            raise ParseError(0, f"route {idx}: bad prefsrc: {exc}", KIND_JSON) from None
    metric = get("metric", 0)
    nhid = get("nhid")
    if type(metric) is not int or not 0 <= metric <= METRIC[1] or (
            nhid is not None and (type(nhid) is not int or not 0 < nhid <= NH_ID[1])):
        try:
            metric = bounded(metric, "metric", METRIC)
            if nhid is not None:
                nhid = bounded(nhid, "nhid", NH_ID)
        except BadValue as exc:
            raise ParseError(0, f"route {idx}: {exc}", KIND_JSON) from None
    flags = get("flags")
    flags = () if flags is None or flags == [] else _flags(flags, f"route {idx}")
    extra: _Extra = []
    if not obj.keys() <= _JSON_ROUTE_KEYS:
        for k, v in obj.items():
            if k not in _JSON_ROUTE_KEYS:
                _json_extra(k, v, extra, f"route {idx}")
    mp = get("nexthops")
    mp_fams: list[int | None] = []
    if mp is not None:
        nhs_list, mp_fams = _json_nexthops(mp, idx, cache)
    if fam is None:
        if gfam is not None:
            fam = gfam if explicit is None else 10 - explicit
        elif prefsrc is not None:
            fam = address(prefsrc)[1]
        else:
            fam = next((f for f in mp_fams if f is not None), None)
        if fam is None:
            fam = 6 if "pref" in obj else (family or 4)
        dst = prefix("default", fam)[0]
    route_flags = flags
    if mp is not None:
        nhs = tuple(nhs_list)
        if None in mp_fams:  # some next hop named its family (``via``): drop it where it equals the route's
            nhs = tuple(nh if nh.gateway_family != fam else _drop_family(nh, cache) for nh in nhs)
        nhs = cache.setdefault(("nexthops", nhs), nhs)  # routes over the same next hops share one tuple
    elif gw is not None or dev is not None:
        if flags:
            route_flags = tuple(f for f in flags if f in ROUTE_ONLY_FLAGS)
            nh_flags = tuple(f for f in flags if f not in ROUTE_ONLY_FLAGS)
        else:
            nh_flags = flags
        gw_family = explicit if explicit != fam else None
        key = ("single", gw, dev, nh_flags, gw_family)
        nh = cache.get(key)
        if nh is None:
            nh = cache[key] = Nexthop(gw, dev, 1, nh_flags, gw_family)
        nhs = (nh,)
    else:
        nhs = ()
    table = get("table", "main")
    protocol = get("protocol", "boot")
    scope = get("scope", "global")
    if type(table) is not str or type(protocol) is not str or type(scope) is not str:
        where = f"route {idx}"
        table, protocol, scope = (_str(obj, "table", "main", where), _str(obj, "protocol", "boot", where),
                                  _str(obj, "scope", "global", where))
    return Route(dst, fam, _shared(cache, rtype), _shared(cache, table), _shared(cache, protocol), _shared(cache, scope),
                 metric, prefsrc, nhid, nhs, route_flags, tuple(extra))


def _drop_family(nh: Nexthop, cache: dict) -> Nexthop:
    return Nexthop(nh.gateway, nh.dev, nh.weight, nh.flags, None, nh.extra)


def parse_ip_route_json(text: Text, *, family: int | None = None) -> list[Route]:
    """Parse ``ip -j [-d] route show`` (a JSON array, or one object as some tools print)."""
    cache: dict = {}
    return [_json_route(obj, i, family, cache) for i, obj in enumerate(json_items(text, KIND_JSON))]
