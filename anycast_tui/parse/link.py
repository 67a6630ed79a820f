"""``ip link show`` / ``ip addr show`` (text and JSON) -> ``Interface`` records.

Canonical form: unmodelled attributes go to ``extra`` under the JSON key names
(``link_index``, ``qdisc``, ``linkmode``, ``group``, ``txqlen``, ``broadcast``,
``permaddr``, ``link_netnsid``, ``ifalias``, ``altnames``...), scalar values as
text, lists/objects/booleans JSON-encoded.  Text-only forms keep their own keys:
``link_netns`` (the peer namespace name text prints instead of the id),
``details`` (a ``-d`` detail line), ``rx``/``tx``/``rx_errors``/``tx_errors``
(``-s`` counters as ``name=value`` words).  ``v1@if2`` gives ``link_index`` 2;
``eth0.10@eth0`` gives ``link`` ``eth0``.  Address lifetimes are seconds, with
``forever`` = 4294967295 as JSON prints it.  Indentation of text is ignored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from anycast_tui.model.types import Address, Interface
from anycast_tui.parse._common import (BadValue, address, extra_value, integer, json_items, lines_of, pair, pieces,
                                       shown, words)
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import Text

KIND_LINK_TEXT = "ip-link"
KIND_LINK_JSON = "ip-link-json"
KIND_ADDR_TEXT = "ip-addr"
KIND_ADDR_JSON = "ip-addr-json"

FOREVER = "4294967295"
ADDR_FLAGS = frozenset({"secondary", "temporary", "nodad", "optimistic", "dadfailed", "home", "deprecated",
                        "tentative", "permanent", "dynamic", "mngtmpaddr", "noprefixroute", "autojoin",
                        "stable-privacy"})
_FAMILIES = {"inet": 4, "inet6": 6}
_HEADER = re.compile(r"([0-9]+):\s+([^\s:]+(?:@[^\s:]*)?):\s+<([^>]*)>(.*)")
_HEADER_KEYS = {"mtu": "mtu", "qdisc": "qdisc", "master": "master", "state": "operstate", "mode": "linkmode",
                "group": "group", "qlen": "txqlen"}
_LINK_KEYS = {"brd": "broadcast", "peer": "broadcast", "permaddr": "permaddr", "link-netns": "link_netns",
              "link-netnsid": "link_netnsid", "promiscuity": "promiscuity", "allmulti": "allmulti",
              "minmtu": "min_mtu", "maxmtu": "max_mtu"}
_STATS = {"RX:": "rx", "TX:": "tx", "RX errors:": "rx_errors", "TX errors:": "tx_errors"}


# --------------------------------------------------------------------------- JSON

_JSON_LINK_KNOWN = frozenset({"ifindex", "ifname", "flags", "mtu", "operstate", "link_type", "address", "master",
                              "link", "addr_info"})
_JSON_ADDR_KNOWN = frozenset({"family", "local", "prefixlen", "scope", "label"})


def _json_address(a: Any, where: str) -> Address:
    if not isinstance(a, dict):
        raise BadValue(f"{where}: expected an address object")
    family = a.get("family")
    fam = _FAMILIES.get(family) if isinstance(family, str) else None
    local = a.get("local")
    if fam is None or not isinstance(local, str):
        raise BadValue(f"{where}: bad family/local {shown(a.get('family'))} {shown(local)}")
    local = address(local)[0]
    plen = integer(a.get("prefixlen"), "prefixlen")
    scope = a.get("scope")
    label = a.get("label")
    if scope is not None and not isinstance(scope, str) or label is not None and not isinstance(label, str):
        raise BadValue(f"{where}: bad scope/label")
    flags = []
    extra = []
    for k, v in a.items():
        if k in _JSON_ADDR_KNOWN:
            continue
        if v is True:
            flags.append(k)
        else:
            extra.append((k, extra_value(v)))
    return Address(fam, local, plen, scope, label, tuple(flags), tuple(extra))


def _json_interface(obj: dict, idx: int, kind: str) -> Interface:
    where = f"interface {idx}"
    try:
        name = obj.get("ifname")
        if not isinstance(name, str):
            raise BadValue(f"{where}: missing ifname")
        ifindex = obj.get("ifindex")
        ifindex = integer(ifindex, "ifindex") if ifindex is not None else None
        mtu = obj.get("mtu")
        mtu = integer(mtu, "mtu") if mtu is not None else None
        flags = obj.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise BadValue(f"{where}: bad flags {shown(flags)}")
        strs = {}
        for k in ("operstate", "link_type", "address", "master", "link"):
            v = obj.get(k)
            if v is not None and not isinstance(v, str):
                raise BadValue(f"{where}: bad {k} {shown(v)}")
            strs[k] = v
        addrs = obj.get("addr_info", [])
        if not isinstance(addrs, list):
            raise BadValue(f"{where}: bad addr_info")
        addresses = tuple(_json_address(a, f"{where} address {n}") for n, a in enumerate(addrs))
        extra = tuple((k, extra_value(v)) for k, v in obj.items() if k not in _JSON_LINK_KNOWN)
    except BadValue as exc:
        msg = str(exc)
        raise ParseError(0, msg if msg.startswith(where) else f"{where}: {msg}", kind) from None
    return Interface(name, ifindex, tuple(flags), strs["operstate"] or "UNKNOWN", mtu, strs["link_type"],
                     strs["address"], strs["master"], strs["link"], addresses, extra)


def parse_ip_link_json(text: Text) -> list[Interface]:
    """Parse ``ip -j [-d] [-s] link show``."""
    return [_json_interface(o, i, KIND_LINK_JSON) for i, o in enumerate(json_items(text, KIND_LINK_JSON))]


def parse_interfaces_json(text: Text, kind: str) -> list[Interface]:
    return [_json_interface(o, i, kind) for i, o in enumerate(json_items(text, kind))]


# --------------------------------------------------------------------------- text


def _lifetime(v: str) -> str:
    if v == "forever":
        return FOREVER
    return v[:-3] if v.endswith("sec") else v


class _Iface:
    __slots__ = ("name", "ifindex", "flags", "operstate", "mtu", "link_type", "mac", "master", "link", "addresses",
                 "extra", "altnames")

    def build(self) -> Interface:
        extra = list(self.extra)
        if self.altnames:
            extra.append(("altnames", json.dumps(self.altnames, separators=(",", ":"))))
        return Interface(self.name, self.ifindex, self.flags, self.operstate, self.mtu, self.link_type, self.mac,
                         self.master, self.link, tuple(self.addresses), tuple(extra))


def _header(m: re.Match[str]) -> _Iface:
    it = _Iface()
    it.ifindex = integer(m.group(1), "ifindex")
    name, _, link = m.group(2).partition("@")
    it.name = name
    it.link = None
    it.extra = []
    if link:
        if link.startswith("if") and link[2:].isdigit():
            it.extra.append(("link_index", link[2:]))
        else:
            it.link = link
    it.flags = tuple(f for f in m.group(3).split(",") if f)
    it.operstate = "UNKNOWN"
    it.mtu = it.link_type = it.mac = it.master = None
    it.addresses = []
    it.altnames = []
    toks = words(m.group(4))
    i = 0
    while i < len(toks):
        key = toks[i]
        if i + 1 >= len(toks):
            it.extra.append((key, ""))
            break
        val = toks[i + 1]
        i += 2
        field = _HEADER_KEYS.get(key, key)
        if field == "mtu":
            it.mtu = integer(val, "mtu")
        elif field == "master":
            it.master = val
        elif field == "operstate":
            it.operstate = val
        else:
            it.extra.append(pair(field, val))
    return it


def _link_line(it: _Iface, toks: list[str]) -> None:
    it.link_type = toks[0][5:]
    i = 1
    if i < len(toks) and toks[i] not in _LINK_KEYS:
        it.mac = toks[i]
        i += 1
    while i < len(toks):
        key = toks[i]
        if i + 1 >= len(toks):
            it.extra.append((key, ""))
            break
        val = toks[i + 1]
        i += 2
        if key == "peer":
            it.extra.append(("link_pointtopoint", "true"))
        it.extra.append(pair(_LINK_KEYS.get(key, key), val))


def _addr_line(toks: list[str]) -> Address:
    fam = _FAMILIES[toks[0]]
    if len(toks) < 2:
        raise BadValue(f"'{toks[0]}' without an address")
    local, slash, plen = toks[1].partition("/")
    extra: list[tuple[str, str]] = []
    i = 2
    if i + 1 < len(toks) and toks[i] == "peer":
        peer, slash, plen = toks[i + 1].partition("/")
        extra.append(("address", address(peer)[0]))
        i += 2
    local = address(local)[0]
    prefixlen = integer(plen, "prefix length") if slash else (32 if fam == 4 else 128)
    scope = label = None
    flags: list[str] = []
    while i < len(toks):
        key = toks[i]
        i += 1
        if key in ADDR_FLAGS:
            flags.append(key)
        elif key in ("scope", "brd", "any", "metric") and i < len(toks):
            val = toks[i]
            i += 1
            if key == "scope":
                scope = val
            else:
                extra.append(({"brd": "broadcast", "any": "anycast"}.get(key, key), val))
        elif i >= len(toks) and fam == 4:
            label = key
        else:
            flags.append(key)
    return Address(fam, local, prefixlen, scope, label, tuple(flags), tuple(extra))


def _parse_text(text: Text, kind: str) -> list[Interface]:
    out: list[_Iface] = []
    cur: _Iface | None = None
    pending_stats: tuple[str, list[str]] | None = None
    for lineno, raw in enumerate(lines_of(text, kind), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            # ``ip -o``: one interface a line, continuation parts after a backslash.
            for seg in (pieces(line, "\\") if "\\" in line else (line,)):
                seg = seg.strip()
                if not seg:
                    continue
                m = _HEADER.fullmatch(seg)
                if m:
                    cur = _header(m)
                    out.append(cur)
                    pending_stats = None
                    continue
                if cur is None:
                    raise BadValue(f"unexpected line before any interface: {shown(seg.split(None, 1)[0])}")
                toks = words(seg)
                if pending_stats is not None:
                    key, names = pending_stats
                    pending_stats = None
                    if len(names) == len(toks):
                        cur.extra.append((key, " ".join(f"{n}={v}" for n, v in zip(names, toks))))
                        continue
                stat = next((k for k in _STATS if seg.startswith(k)), None)
                if stat is not None:
                    pending_stats = (_STATS[stat], words(seg[len(stat):]))
                    continue
                head = toks[0]
                if head.startswith("link/"):
                    _link_line(cur, toks)
                elif head in _FAMILIES:
                    cur.addresses.append(_addr_line(toks))
                elif head == "valid_lft" and cur.addresses:
                    a = cur.addresses[-1]
                    ex = list(a.extra)
                    for j in range(0, len(toks) - 1, 2):
                        k = {"valid_lft": "valid_life_time", "preferred_lft": "preferred_life_time"}.get(toks[j], toks[j])
                        ex.append((k, _lifetime(toks[j + 1])))
                    cur.addresses[-1] = Address(a.family, a.local, a.prefixlen, a.scope, a.label, a.flags, tuple(ex))
                elif head == "alias":
                    cur.extra.append(("ifalias", seg[len("alias"):].strip()))
                elif head == "altname" and len(toks) == 2:
                    cur.altnames.append(toks[1])
                else:
                    cur.extra.append(pair("details", seg))
        except BadValue as exc:
            raise ParseError(lineno, str(exc), kind, raw) from None
    return [it.build() for it in out]


def parse_ip_link(text: Text) -> list[Interface]:
    """Parse ``ip [-d] [-s] [-o] link show`` text."""
    return _parse_text(text, KIND_LINK_TEXT)


def parse_interfaces_text(text: Text, kind: str) -> list[Interface]:
    return _parse_text(text, kind)
