"""The flows CSV (format: ``model/flows.py``) -> a ``FlowArray`` and its ``FlowMeta``.

Blank lines and lines starting with ``#`` are comments; every other malformed line is a ``ParseError``
naming its line number: nothing is skipped silently.

Read vectorised (500,000 flows in a fraction of a second): lines, commas and cells are found with numpy on
the file's bytes, ports and dotted quads parsed in bulk, protocols, IPv6 addresses and labels once per
distinct value (``parse/flowcols.py``).  The rules are those of the per-row reference code kept here
(:func:`row_flow`, :func:`parse_lines`: each line read by ``csv.reader``, cells stripped): a line the fast
path cannot take as it is — quotes, a NUL, a cell that is not plain (bad, or padded with other whitespace
than spaces and tabs), a line starting with non-ASCII — is handed to it, so every error is the reference's,
on the first bad line.  A file with a line break other than ``\\n``, ``\\r\\n`` or ``\\r`` (form feed, vertical
tab, U+2028 …, which ``str.splitlines`` also breaks at) is read by the reference code entirely.
"""

from __future__ import annotations

import csv
import ipaddress
import os
from pathlib import Path
from typing import Any

import numpy as np

from anycast_tui.model.flows import OPTIONAL, REQUIRED, FlowMeta, flows_to_array, proto_number
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.types import Flow
from anycast_tui.parse import flowcols
from anycast_tui.parse.errors import ParseError, shown

KIND = "flows-csv"
_ODD_BREAKS = b"\x0b\x0c\x1c\x1d\x1e"  # line breaks to str.splitlines besides \n and \r
_ODD_BREAKS_TEXT = ("\x85", "\u2028", "\u2029")


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


def header_of(cells: list[str], lineno: int, raw: str | None, *, kind: str = KIND,
              ignored: tuple[str, ...] = ()) -> list[str]:
    """The header's column names (stripped, lower case); ParseError when one is missing, unknown (and not
    ``ignored``) or twice."""
    header = [c.strip().lower() for c in cells]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL + ignored]
    if missing:
        raise ParseError(lineno, f"header lacks column(s) {', '.join(missing)} "
                         f"(need {','.join(REQUIRED)})", kind, raw)
    if unknown:
        raise ParseError(lineno, f"unknown column(s) {shown(', '.join(unknown), 60)}", kind, raw)
    if len(set(header)) != len(header):
        raise ParseError(lineno, "duplicate column in header", kind, raw)
    return header


def row_flow(row: dict[str, str]) -> Flow:
    """One row's cells (stripped) by column name → its Flow; ValueError with the one-line reason."""
    src = _addr(row["src"], "src")
    dst = _addr(row["dst"], "dst")
    if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
        raise ValueError("src and dst are of different address families")
    return Flow(proto=proto_number(row["proto"]), src=src, sport=_port(row["sport"], "sport"),
                dst=dst, dport=_port(row["dport"], "dport"),
                ingress=row.get("ingress") or None, group=row.get("group") or None)


def _cells(raw: str, lineno: int) -> list[str]:
    try:
        cells = next(csv.reader([raw]))
    except csv.Error as exc:
        raise ParseError(lineno, f"bad CSV: {exc}", KIND, raw) from None
    return [c.strip() for c in cells]


def _line_flow(header: list[str], raw: str, lineno: int) -> Flow:
    cells = _cells(raw, lineno)
    if len(cells) != len(header):
        raise ParseError(lineno, f"expected {len(header)} fields, got {len(cells)}", KIND, raw)
    try:
        return row_flow(dict(zip(header, cells)))
    except ValueError as exc:
        raise ParseError(lineno, str(exc), KIND, raw) from None


def _skipped(raw: str) -> bool:
    return not raw.strip() or raw.lstrip().startswith("#")


def parse_lines(text: str) -> tuple[FlowArray, FlowMeta]:
    """The per-row reference: the rules every reader keeps (one Python step per line)."""
    header: list[str] | None = None
    flows: list[Flow] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if _skipped(raw):
            continue
        if header is None:
            header = header_of(_cells(raw, lineno), lineno, raw)
            continue
        flows.append(_line_flow(header, raw, lineno))
    if header is None:
        raise ParseError(0, f"empty flow file (need a header {','.join(REQUIRED)})", KIND)
    return flows_to_array(flows)


def parse_flows_csv(text: str) -> tuple[FlowArray, FlowMeta]:
    """Parse CSV text (see module doc); raises ParseError with the 1-based line number."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only the reference reads them
        return parse_lines(text)
    return parse_flows_bytes(data)


def parse_flows_bytes(data: bytes) -> tuple[FlowArray, FlowMeta]:
    """Parse the CSV file's bytes (UTF-8; ParseError "not a text file" otherwise), vectorised."""
    if not data.isascii():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(0, "not a text file", KIND) from None
        if any(c in text for c in _ODD_BREAKS_TEXT):
            return parse_lines(text)
    if any(b in data for b in (bytes([c]) for c in _ODD_BREAKS)):
        return parse_lines(data.decode("utf-8"))
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # str.splitlines' line numbers
    if not data.endswith(b"\n"):
        data += b"\n"
    return _parse_fast(data)


def _line_text(data: bytes, s: int, e: int) -> str:
    return data[s:e].decode("utf-8")


def _parse_fast(data: bytes) -> tuple[FlowArray, FlowMeta]:
    buf = flowcols.padded(data)
    pos_t = np.int32 if len(buf) < 2**31 - 64 else np.int64  # byte offsets: half the memory below 2 GiB
    ends = np.flatnonzero(buf == 10).astype(pos_t)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(pos_t)
    # the first byte of each line that is not a space or tab
    first, _ = flowcols.trim(buf, starts, ends, lead_only=True)
    lead = buf[first]
    skipped = (first == ends) | (lead == 35)
    odd = np.flatnonzero((lead >= 128) | (lead == 0x1F))  # Unicode or other whitespace first: ask str
    for i in odd:
        skipped[i] = _skipped(_line_text(data, int(starts[i]), int(ends[i])))
    content = np.flatnonzero(~skipped)
    if content.size == 0:
        raise ParseError(0, f"empty flow file (need a header {','.join(REQUIRED)})", KIND)
    h = int(content[0])
    raw = _line_text(data, int(starts[h]), int(ends[h]))
    header = header_of(_cells(raw, h + 1), h + 1, raw)
    rows = content[1:]  # line index of each data row
    k = len(header) - 1
    commas = np.flatnonzero(buf == 44).astype(pos_t)
    c0 = np.searchsorted(commas, starts[rows])
    count = np.searchsorted(commas, ends[rows]) - c0
    special = np.flatnonzero((buf[: len(data)] == 34) | (buf[: len(data)] == 0))  # quotes, NULs: csv.reader's
    has_special = np.zeros(len(rows), bool)
    if special.size:
        has_special = np.searchsorted(special, ends[rows]) > np.searchsorted(special, starts[rows])
    slow = (count != k) | has_special | np.isin(rows, odd)
    fast = np.flatnonzero(~slow)
    cpos = commas[c0[fast][:, None] + np.arange(k)]
    del commas, c0
    cols = {}
    for j, name in enumerate(header):
        s = starts[rows[fast]] if j == 0 else cpos[:, j - 1] + 1
        e = np.ascontiguousarray(cpos[:, j]) if j < k else ends[rows[fast]]
        cols[name] = flowcols.trim(buf, s, e)
    del cpos
    got = columns(buf, cols)
    if got.bad.any():
        slow[fast[got.bad]] = True
        fast = fast[~got.bad]
        got = got.take(~got.bad)
    slow_rows = np.flatnonzero(slow)
    slow_flows = [_line_flow(header, _line_text(data, int(starts[rows[i]]), int(ends[rows[i]])), int(rows[i]) + 1)
                  for i in slow_rows]
    return got.merge(len(rows), fast, slow_rows, slow_flows)


class Columns:
    """What the vectorised column parsers made of the rows given (one entry per row), and which were bad."""

    def __init__(self, flows: FlowArray, labels: dict[str, tuple[list[str | None], np.ndarray]], bad: np.ndarray):
        self.flows, self.labels, self.bad = flows, labels, bad

    def take(self, keep: np.ndarray) -> "Columns":
        return Columns(self.flows.take(keep), {c: (v, codes[keep]) for c, (v, codes) in self.labels.items()},
                       self.bad[keep])

    def merge(self, n: int, fast: np.ndarray, slow: np.ndarray, slow_flows: list[Flow]) -> tuple[FlowArray, FlowMeta]:
        """All ``n`` rows: these at positions ``fast``, ``slow_flows`` (from the reference code) at ``slow``."""
        if not slow_flows:
            return self.flows, _meta(self.labels)
        extra, _ = flows_to_array(slow_flows)
        cols = {}
        for c in ("family", "proto", "src", "dst", "sport", "dport", "flowlabel"):
            a, b = getattr(self.flows, c), getattr(extra, c)
            out = np.zeros((n,) + a.shape[1:], a.dtype)
            out[fast], out[slow] = a, b
            cols[c] = out
        flows = FlowArray(**cols)
        labels = {}
        for c, (values, codes) in self.labels.items():
            values = list(values)
            all_codes = np.zeros(n, np.int32)
            all_codes[fast] = codes
            all_codes[slow] = np.arange(len(values), len(values) + len(slow_flows))
            values += [getattr(f, c) for f in slow_flows]
            labels[c] = (values, all_codes)
        return flows, _meta(labels)


def _meta(labels: dict[str, tuple[list[str | None], np.ndarray]]) -> FlowMeta:
    out: dict[str, object] = {}
    for c in OPTIONAL:
        if c not in labels:
            continue
        values, codes = labels[c]
        table = np.empty(len(values), dtype=object)
        table[:] = values
        used = np.zeros(len(values), bool)
        used[codes] = True
        if any(v is not None for v, u in zip(values, used) if u):  # as flows_to_array: None when all empty
            out[c] = table[codes]
            out[f"{c}_factors"] = (tuple(values), codes)
    return FlowMeta(**out)  # type: ignore[arg-type]


def columns(buf: np.ndarray, spans: dict[str, tuple[np.ndarray, np.ndarray]],
            given: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Columns:
    """The flows of trimmed cell spans of ``buf`` by column name (the CSV's cells); ``given``: columns already
    parsed, as the ``flowcols`` parser of the column returns them (Parquet's)."""
    given = given or {}

    def col(name: str, parser: Any) -> Any:
        return given[name] if name in given else parser(buf, *spans[name])

    proto, bad = col("proto", flowcols.protos)
    fam_s, src, bad_s = col("src", flowcols.addrs)
    fam_d, dst, bad_d = col("dst", flowcols.addrs)
    sport, bad_sp = col("sport", flowcols.ports)
    dport, bad_dp = col("dport", flowcols.ports)
    bad = bad | bad_s | bad_d | bad_sp | bad_dp | (fam_s != fam_d)
    labels = {}
    for c in OPTIONAL:
        if c in spans or c in given:
            values, codes, bad_l = col(c, flowcols.labels)
            labels[c] = (values, codes)
            bad |= bad_l
    fam = np.where(bad, 4, fam_s)
    return Columns(FlowArray.from_columns(fam, proto, src, dst, sport, dport), labels, bad)


def read_flows_csv(source: str | os.PathLike[str]) -> tuple[FlowArray, FlowMeta]:
    """Read a flows CSV from a path, or parse it when ``source`` is CSV text (contains a newline or comma)."""
    if isinstance(source, str) and ("\n" in source or "," in source):
        return parse_flows_csv(source)
    return parse_flows_bytes(Path(source).read_bytes())
