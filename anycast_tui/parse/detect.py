"""Which command produced a text, dispatch to its parser, and JSON-friendly output of records."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from typing import Any, Callable

from anycast_tui.model.types import HashSettings, NexthopTable
from anycast_tui.parse._common import BadValue, prefix, shown, words
from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json
from anycast_tui.parse.nexthop import (
    parse_ip_nexthop,
    parse_ip_nexthop_bucket,
    parse_ip_nexthop_bucket_json,
    parse_ip_nexthop_json,
)
from anycast_tui.parse.route import ROUTE_TYPES, parse_ip_route, parse_ip_route_json
from anycast_tui.parse.sysctl import parse_hash_sysctls
from anycast_tui.parse import conntrack, frr, ss  # noqa: E402  (FRR, ss, conntrack kinds)

PARSERS: dict[str, Callable[[str], Any]] = {
    "ip-route": parse_ip_route,
    "ip-route-json": parse_ip_route_json,
    "ip-link": parse_ip_link,
    "ip-link-json": parse_ip_link_json,
    "ip-addr": parse_ip_addr,
    "ip-addr-json": parse_ip_addr_json,
    "ip-nexthop": parse_ip_nexthop,
    "ip-nexthop-json": parse_ip_nexthop_json,
    "ip-nexthop-bucket": parse_ip_nexthop_bucket,
    "ip-nexthop-bucket-json": parse_ip_nexthop_bucket_json,
    "sysctl-values": parse_hash_sysctls,
    frr.KIND_JSON: frr.parse_frr_route_json,
    frr.KIND_TEXT: frr.parse_frr_route,
    frr.KIND_BGP: frr.parse_frr_bgp_json,
    ss.KIND: ss.parse_ss,
    conntrack.KIND: conntrack.parse_conntrack,
}
_OTHER_DETECTORS = (frr.detect, conntrack.detect, ss.detect)
KINDS: tuple[str, ...] = tuple(PARSERS)

Records = list[Any] | NexthopTable | HashSettings

_UNSURE = "cannot tell what command produced this; use --as KIND"
_IFACE_HEADER = re.compile(r"\d+:\s+\S+:\s+<")
_SYSCTL_LINE = re.compile(r"(?:net[./]ipv[46][./]\S+\s*=\s*)?-?(?:0x[0-9a-fA-F]+|[0-9]+)")


def _detect_json(text: str) -> str:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        keys = data[0].keys()
        if "ifname" in keys:
            return "ip-addr-json" if any(isinstance(d, dict) and "addr_info" in d for d in data) else "ip-link-json"
        if "bucket" in keys:
            return "ip-nexthop-bucket-json"
        if "dst" in keys:
            return "ip-route-json"
        if "id" in keys:
            return "ip-nexthop-json"
        raise ParseError(0, _UNSURE)
    if data is not None:
        raise ParseError(0, _UNSURE)
    # Broken JSON: guess from the keys so that its parser can say where it breaks.
    for key, kind in (('"addr_info"', "ip-addr-json"), ('"ifname"', "ip-link-json"),
                      ('"bucket"', "ip-nexthop-bucket-json"), ('"dst"', "ip-route-json"), ('"id"', "ip-nexthop-json")):
        if key in text:
            return kind
    raise ParseError(0, _UNSURE)


def _is_route_line(toks: list[str]) -> bool:
    head = toks[0]
    if head in ROUTE_TYPES and len(toks) > 1:
        head = toks[1]
    if head == "default":
        return True
    try:
        prefix(head)
    except BadValue:
        return False
    return True


def detect_kind(text: str) -> str:
    """The parser kind for ``text`` (one of KINDS); ParseError(0, ...) when unsure."""
    if not isinstance(text, str):
        raise ParseError(0, "input is not text")
    body = text.strip()
    if not body:
        raise ParseError(0, "empty input: " + _UNSURE)
    for other in _OTHER_DETECTORS:
        found = other(body)
        if found is not None:
            return found
    if body[0] in "[{":
        return _detect_json(body)
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    first = lines[0]
    if _IFACE_HEADER.match(first):
        if any(ln.startswith(("inet ", "inet6 ")) for ln in lines):
            return "ip-addr"
        return "ip-link" if " mode " in first else "ip-addr"
    toks = words(first)
    if toks[0] == "id":
        return "ip-nexthop-bucket" if " index " in first and " nhid " in first else "ip-nexthop"
    if all(_SYSCTL_LINE.fullmatch(ln) for ln in lines):
        return "sysctl-values"
    if _is_route_line(toks):
        return "ip-route"
    raise ParseError(0, _UNSURE)


def parse_as(text: str, kind: str) -> Records:
    """Parse ``text`` with the parser of ``kind``."""
    parser = PARSERS.get(kind)
    if parser is None:
        raise ParseError(0, f"unknown kind {shown(kind)} (one of: {', '.join(KINDS)})")
    return parser(text)


def to_jsonable(records: Any) -> Any:
    """Records as plain JSON values: dataclasses as dicts in field order, ``extra`` as ``[key, value]`` pairs."""
    if dataclasses.is_dataclass(records) and not isinstance(records, type):
        out = {}
        for f in dataclasses.fields(records):
            v = getattr(records, f.name)
            if f.name == "extra":
                out[f.name] = [[k, val] for k, val in v]
            else:
                out[f.name] = to_jsonable(v)
        return out
    if isinstance(records, enum.Enum):
        return records.value
    if isinstance(records, (list, tuple)):
        return [to_jsonable(r) for r in records]
    if isinstance(records, dict):
        return {str(k): to_jsonable(v) for k, v in records.items()}
    return records
