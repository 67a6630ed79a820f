"""Live flows read on anycast servers (``ss``, ``conntrack -L``) -> Flow records to the anycast prefixes."""

from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping

from anycast_tui.model.types import Flow
from anycast_tui.parse.conntrack import parse_conntrack
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.ss import parse_ss

_PARSE = {
    "flows_tcp": lambda text: [s.flow() for s in parse_ss(text, netid="tcp", state="ESTAB")],
    "flows_udp": lambda text: [s.flow() for s in parse_ss(text, netid="udp")],
    "flows_ct": lambda text: [e.flow() for e in parse_conntrack(text)],
}
FLOW_IDS: tuple[str, ...] = tuple(_PARSE)


def _networks(prefixes: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p) for p in prefixes]


def flows_from_outputs(outputs: Mapping[str, str], prefixes: Iterable[str]) -> tuple[Flow, ...]:
    """Flows whose destination is in ``prefixes`` (all flows when there are none), deduplicated, in order.

    A ParseError names the command id (``flows_tcp: ...``).
    """
    nets = _networks(prefixes)
    seen: dict[Flow, None] = {}
    for cid in FLOW_IDS:
        text = outputs.get(cid)
        if not text or not text.strip():
            continue
        try:
            flows = _PARSE[cid](text)
        except ParseError as exc:
            raise ParseError(exc.line, f"{cid}: {exc.reason}", exc.kind, exc.text) from None
        for f in flows:
            if f is None:
                continue
            if nets:
                dst = ipaddress.ip_address(f.dst)
                if not any(dst.version == n.version and dst in n for n in nets):
                    continue
            seen.setdefault(f, None)
    return tuple(seen)
