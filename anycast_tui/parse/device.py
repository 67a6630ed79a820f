"""Raw outputs of one poll (command id -> stdout) -> ``DeviceState``."""

from __future__ import annotations

from typing import Mapping

from anycast_tui.model.types import Device, DeviceState, HashSettings, Health, Interface, NexthopTable, Route
from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
from anycast_tui.parse.errors import ParseError, with_command
from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json
from anycast_tui.parse.longtext import LongText, Text, first_char, is_blank
from anycast_tui.parse.nexthop import attach_buckets, parse_ip_nexthop_bucket_json, parse_ip_nexthop_json
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json
from anycast_tui.parse.sysctl import parse_hash_sysctls

REQUIRED: tuple[str, ...] = ("routes4", "routes6")


def _is_json(text: Text) -> bool:
    return first_char(text) in ("[", "{")


def _routes(command_id: str, text: Text, family: int) -> list[Route]:
    if _is_json(text):
        return parse_ip_route_json(text, family=family)
    return parse_ip_route(text, family=family)  # LINUX_POLL_TEXT fallback


def build_device_state(device: Device, outputs: Mapping[str, Text], *, collected_at_ms: int,
                       health: Health) -> DeviceState:
    """Parse the LINUX_POLL outputs of one device.

    ``routes4`` and ``routes6`` must be present (empty text = empty table);
    ``addrs`` (preferred: it carries the link fields too) or ``links`` give the
    interfaces; ``nexthops``, ``buckets`` and ``sysctl`` may be missing or empty
    (old iproute2 / kernel: no nexthop objects; defaults for the sysctls).
    Route outputs may be JSON or the text fallback.  Every ParseError names the
    command id: ``routes4: bad dst ...``.  An output may be a LongText (read a block at a time).
    """
    for cid in REQUIRED:
        if outputs.get(cid) is None:
            raise ParseError(0, "output missing", command=cid)
    out = {cid: text for cid, text in outputs.items() if isinstance(text, (str, LongText))}
    for cid, text in outputs.items():
        if text is not None and not isinstance(text, (str, LongText)):
            raise ParseError(0, "output is not text", command=cid)
    current = ""
    try:
        current = "routes4"
        routes = _routes(current, out["routes4"], 4)
        current = "routes6"
        routes += _routes(current, out["routes6"], 6)
        interfaces: list[Interface] = []
        if not is_blank(out.get("addrs")):
            current = "addrs"
            text = out["addrs"]
            interfaces = parse_ip_addr_json(text) if _is_json(text) else parse_ip_addr(text)
        elif not is_blank(out.get("links")):
            current = "links"
            text = out["links"]
            interfaces = parse_ip_link_json(text) if _is_json(text) else parse_ip_link(text)
        current = "nexthops"
        table = parse_ip_nexthop_json(out["nexthops"]) if not is_blank(out.get("nexthops")) else NexthopTable()
        current = "buckets"
        if not is_blank(out.get("buckets")):
            table = attach_buckets(table, parse_ip_nexthop_bucket_json(out["buckets"]))
        current = "sysctl"
        hash_settings = parse_hash_sysctls(out["sysctl"]) if not is_blank(out.get("sysctl")) else HashSettings()
    except ParseError as exc:
        raise with_command(exc, current) from None
    return DeviceState(
        device=device,
        routes=tuple(routes),
        nexthops=table,
        interfaces=tuple(interfaces),
        hash=hash_settings,
        collected_at_ms=collected_at_ms,
        health=health,
    )
