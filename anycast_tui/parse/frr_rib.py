"""FRR ``vtysh`` JSON -> ``Rib``: every RIB entry with zebra's flags, and BGP multipath state.

``show ip|ipv6 route [vrf all] json`` is validated and mapped by
:func:`anycast_tui.parse.frr.parse_frr_route_json` (``fib_only=False``: every
entry, every next hop); the per-next-hop flags that mapping folds away
(``fib``, ``active``, ``recursive``) are read from the same JSON, entry by
entry and next hop by next hop in the same order (a FIB blackhole next hop
gives the entry its type and no next hop, as there).  ``show bgp ipv4|ipv6
unicast json`` gives one ``BgpMultipath`` per prefix, without the per-path
JSON the parser keeps in ``extra`` (it would double the RIB's size).  The
poller reads all four in one vtysh (``frr_rib``): :func:`split_frr_rib`.

Errors are the parsers' ParseErrors, named by command id by the caller.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Mapping

from anycast_tui.model.types import BgpMultipath, Rib, RibNexthop, RibRoute
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.frr import (KIND_JSON, _blackhole_type, frr_route_tables, frr_routes_of, load_frr_route_json,
                                   parse_frr_bgp_json)

ROUTE_IDS: tuple[str, ...] = ("frr_routes4", "frr_routes6")
BGP_IDS: tuple[str, ...] = ("frr_bgp4", "frr_bgp6")
RIB_PARTS: tuple[str, ...] = ROUTE_IDS + BGP_IDS  # the documents of FRR_RIB's output, in order
FRR_RIB_ID = "frr_rib"


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_rib_json(text: str) -> list[RibRoute]:
    """``show ip|ipv6 route [vrf all] json`` -> every RIB entry, in input order."""
    top = load_frr_route_json(text)  # one JSON parse for the Routes and the raw flags beside them
    if top is None:
        return []
    routes = frr_routes_of(top, fib_only=False)
    if not routes:
        return []
    raw = [entry for _vrf, table in frr_route_tables(top) for entries in table.values() for entry in entries]
    if len(raw) != len(routes):  # parse_frr_route_json returns one Route per entry with fib_only=False
        raise ParseError(0, f"{len(raw)} RIB entries but {len(routes)} routes", KIND_JSON)
    out: list[RibRoute] = []
    for r, entry in zip(routes, raw):
        kept = iter(r.nexthops)
        nhs: list[RibNexthop] = []
        for nh in entry.get("nexthops", []):
            fib = nh.get("fib") is True
            if fib and _blackhole_type(nh) is not None:
                continue  # the route's type, no next hop (as in parse_frr_route_json)
            k = next(kept)
            nhs.append(RibNexthop(k.gateway, k.dev, k.weight, fib, nh.get("active") is True,
                                  nh.get("recursive") is True, dict(k.extra).get("resolves"), tuple(k.flags)))
        out.append(RibRoute(r.dst, r.family, r.protocol, r.table, entry.get("selected") is True,
                            entry.get("installed") is True, _int(entry.get("distance")), r.metric, r.type,
                            tuple(nhs)))
    return out


def parse_bgp_multipath(text: str) -> list[BgpMultipath]:
    """``show bgp ... json`` -> multipath state per prefix, without the per-path JSON."""
    return [replace(b, extra=tuple(kv for kv in b.extra if kv[0] != "path")) for b in parse_frr_bgp_json(text)]


def split_frr_rib(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``frr_rib``'s output (``vtysh -c ... -c ...``: up to four JSON documents, in RIB_PARTS order) ->
    ({part id: its JSON text, prefixed with blank lines so line numbers stay the output's}, {part id: why
    it is missing}).

    vtysh prints ``% ...`` for a command it refuses (no bgpd: ``% Unknown command: show bgp ...``) and
    stops there: the parts after the documents it printed are missing, with that line as the reason.
    """
    dec = json.JSONDecoder()
    parts: dict[str, str] = {}
    note: str | None = None
    i, n = 0, len(text)
    while len(parts) < len(RIB_PARTS):
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if text[i] == "%":
            end = text.find("\n", i)
            end = n if end < 0 else end
            note = _note(text[i:min(end, i + _NOTE)])
            i = end
            continue
        try:
            _obj, j = dec.raw_decode(text, i)
        except (ValueError, RecursionError) as exc:
            pos = getattr(exc, "pos", i)
            why = getattr(exc, "msg", None) or str(exc)
            raise ParseError(text.count("\n", 0, pos) + 1, f"not a vtysh JSON document: {why}", "frr-rib-json",
                             text[i:i + 80].split("\n", 1)[0]) from None
        parts[RIB_PARTS[len(parts)]] = "\n" * text.count("\n", 0, i) + text[i:j]
        i = j
    rest = text[i:].strip()
    if rest and not rest.startswith("%"):
        raise ParseError(text.count("\n", 0, i) + 1, f"text after the {len(RIB_PARTS)} JSON documents",
                         "frr-rib-json", rest[:80].split("\n", 1)[0])
    if rest:
        note = _note(rest[:_NOTE].split("\n", 1)[0])
    missing = {pid: f"vtysh: {note}" if note else "vtysh printed nothing for it"
               for pid in RIB_PARTS if pid not in parts}
    return parts, missing


_NOTE = 80  # characters of a vtysh ``% ...`` line kept as the reason a part is missing


def _note(line: str) -> str:
    return " ".join(line.split())


def rib_from_outputs(outputs: Mapping[str, str]) -> tuple[Rib | None, dict[str, str]]:
    """The Rib of one poll's outputs (None when FRR's routes were not read) and, per part whose output
    did not parse or is missing, a one-line reason (that part's data is left out).

    ``frr_rib`` (one vtysh, see collect.commands.FRR_RIB) is split into its parts; separate
    ``frr_routes4`` / ``frr_routes6`` / ``frr_bgp4`` / ``frr_bgp6`` outputs are read as well.
    ``{}`` from ``show bgp`` (no BGP instance) is no BGP data, not an error.
    """
    errors: dict[str, str] = {}
    texts = {cid: outputs[cid] for cid in RIB_PARTS if outputs.get(cid) is not None}
    combined = outputs.get(FRR_RIB_ID)
    if combined is not None:
        try:
            parts, missing = split_frr_rib(combined)
        except ParseError as exc:
            return None, {FRR_RIB_ID: _reason(exc)}
        texts.update(parts)
        errors.update(missing)
    routes: list[RibRoute] = []
    bgp: list[BgpMultipath] = []
    answered = False
    for cid in RIB_PARTS:
        text = texts.get(cid)
        if text is None:
            continue
        if not text.strip() or text.strip() == "{}":
            answered = answered or cid in ROUTE_IDS
            continue
        try:
            if cid in ROUTE_IDS:
                routes += parse_rib_json(text)
                answered = True
            else:
                bgp += parse_bgp_multipath(text)
        except ParseError as exc:
            errors[cid] = _reason(exc)
    return (Rib(tuple(routes), tuple(bgp)) if answered else None), errors


def _reason(exc: ParseError) -> str:
    where = f"line {exc.line}: " if exc.line else ""
    return " ".join(f"{where}{exc.reason}".split())
