"""Raw outputs of one poll (command id -> stdout) -> ``DeviceState``."""

from __future__ import annotations

from typing import Mapping

from anycast_tui.model.types import Device, DeviceState, HashSettings, Health, Interface, NexthopTable, Route
from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json
from anycast_tui.parse.nexthop import attach_buckets, parse_ip_nexthop_bucket_json, parse_ip_nexthop_json
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json
from anycast_tui.parse.sysctl import parse_hash_sysctls

REQUIRED: tuple[str, ...] = ("routes4", "routes6")


def _is_json(text: str) -> bool:
    return text.lstrip()[:1] in ("[", "{")


def _annotated(command_id: str, exc: ParseError) -> ParseError:
    return ParseError(exc.line, f"{command_id}: {exc.reason}", exc.kind, exc.text)


def _routes(command_id: str, text: str, family: int) -> list[Route]:
    if _is_json(text):
        return parse_ip_route_json(text, family=family)
    return parse_ip_route(text, family=family)  # LINUX_POLL_TEXT fallback


def build_device_state(device: Device, outputs: Mapping[str, str], *, collected_at_ms: int,
                       health: Health) -> DeviceState:
    """Parse the LINUX_POLL outputs of one device.

    ``routes4`` and ``routes6`` must be present (empty text = empty table);
    ``addrs`` (preferred: it carries the link fields too) or ``links`` give the
    interfaces; ``nexthops``, ``buckets`` and ``sysctl`` may be missing or empty
    (old iproute2 / kernel: no nexthop objects; defaults for the sysctls).
    Route outputs may be JSON or the text fallback.  Every ParseError names the
    command id: ``routes4: bad dst ...``.
    """
    for cid in REQUIRED:
        if cid not in outputs:
            raise ParseError(0, f"{cid}: output missing")
    current = ""
    try:
        current = "routes4"
        routes = _routes(current, outputs["routes4"], 4)
        current = "routes6"
        routes += _routes(current, outputs["routes6"], 6)
        interfaces: list[Interface] = []
        if outputs.get("addrs", "").strip():
            current = "addrs"
            text = outputs["addrs"]
            interfaces = parse_ip_addr_json(text) if _is_json(text) else parse_ip_addr(text)
        elif outputs.get("links", "").strip():
            current = "links"
            text = outputs["links"]
            interfaces = parse_ip_link_json(text) if _is_json(text) else parse_ip_link(text)
        current = "nexthops"
        table = parse_ip_nexthop_json(outputs.get("nexthops", "")) if outputs.get("nexthops", "").strip() \
            else NexthopTable()
        current = "buckets"
        if outputs.get("buckets", "").strip():
            table = attach_buckets(table, parse_ip_nexthop_bucket_json(outputs["buckets"]))
        current = "sysctl"
        hash_settings = parse_hash_sysctls(outputs["sysctl"]) if "sysctl" in outputs else HashSettings()
    except ParseError as exc:
        raise _annotated(current, exc) from None
    return DeviceState(
        device=device,
        routes=tuple(routes),
        nexthops=table,
        interfaces=tuple(interfaces),
        hash=hash_settings,
        collected_at_ms=collected_at_ms,
        health=health,
    )
