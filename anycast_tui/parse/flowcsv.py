"""The flows CSV (format: ``model/flows.py``) -> a ``FlowArray`` and its ``FlowMeta``.

Blank lines and lines starting with ``#`` are comments; every other malformed line is a ``ParseError``
naming its line number: nothing is skipped silently.
"""

from __future__ import annotations

import csv
import ipaddress
import os
from pathlib import Path

from anycast_tui.model.flows import OPTIONAL, REQUIRED, FlowMeta, flows_to_array, proto_number
from anycast_tui.model.hashing import FlowArray
from anycast_tui.model.types import Flow
from anycast_tui.parse.errors import ParseError, shown

KIND = "flows-csv"


def _port(text: str, name: str) -> int:
    t = text.strip()
    if not t.isdigit() or len(t) > 5 or not 0 <= int(t) <= 65535:
        raise ValueError(f"{name} must be a port number 0-65535, not {shown(text)}")
    return int(t)


def _addr(text: str, name: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{name} is not an IP address: {shown(text)}") from None


def parse_flows_csv(text: str) -> tuple[FlowArray, FlowMeta]:
    """Parse CSV text (see module doc); raises ParseError with the 1-based line number."""
    lines = text.splitlines()
    header: list[str] | None = None
    flows: list[Flow] = []
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            cells = next(csv.reader([raw]))
        except csv.Error as exc:
            raise ParseError(lineno, f"bad CSV: {exc}", KIND, raw) from None
        cells = [c.strip() for c in cells]
        if header is None:
            header = [c.lower() for c in cells]
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
            if missing:
                raise ParseError(lineno, f"header lacks column(s) {', '.join(missing)} "
                                 f"(need {','.join(REQUIRED)})", KIND, raw)
            if unknown:
                raise ParseError(lineno, f"unknown column(s) {shown(', '.join(unknown), 60)}", KIND, raw)
            if len(set(header)) != len(header):
                raise ParseError(lineno, "duplicate column in header", KIND, raw)
            continue
        if len(cells) != len(header):
            raise ParseError(lineno, f"expected {len(header)} fields, got {len(cells)}", KIND, raw)
        row = dict(zip(header, cells))
        try:
            src = _addr(row["src"], "src")
            dst = _addr(row["dst"], "dst")
            if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
                raise ValueError("src and dst are of different address families")
            flow = Flow(proto=proto_number(row["proto"]), src=src, sport=_port(row["sport"], "sport"),
                        dst=dst, dport=_port(row["dport"], "dport"),
                        ingress=row.get("ingress") or None, group=row.get("group") or None)
        except ValueError as exc:
            raise ParseError(lineno, str(exc), KIND, raw) from None
        flows.append(flow)
    if header is None:
        raise ParseError(0, f"empty flow file (need a header {','.join(REQUIRED)})", KIND)
    return flows_to_array(flows)


def read_flows_csv(source: str | os.PathLike[str]) -> tuple[FlowArray, FlowMeta]:
    """Read a flows CSV from a path, or parse it when ``source`` is CSV text (contains a newline or comma)."""
    if isinstance(source, str) and ("\n" in source or "," in source):
        return parse_flows_csv(source)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ParseError(0, "not a text file", KIND) from None
    return parse_flows_csv(text)
