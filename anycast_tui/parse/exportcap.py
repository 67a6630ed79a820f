"""A capture file of export datagrams (sFlow v5, IPFIX, NetFlow v9) -> the samples and per-exporter counts.

What ``anycast-tui parse --as sflow|ipfix CAPTURE`` prints and what ``calc``/``whatif --flows CAPTURE`` place.
Each UDP datagram of the capture (``parse/pcap.py``, any port) is told by its first bytes: sFlow version 5
(``00 00 00 05``), IPFIX (``00 0a``), NetFlow v9 (``00 09``); ``kind`` keeps only one family (``sflow``, or
``ipfix`` for IPFIX and v9).  A datagram that does not decode is counted per exporter with its reason, never
stops the reading.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from anycast_tui.model.samples import ExportDatagram, FlowSample
from anycast_tui.parse.errors import ExportDecodeError, ParseError
from anycast_tui.parse.ipfix import ExportDecoder
from anycast_tui.parse.pcap import is_capture, iter_udp
from anycast_tui.parse.sflow import decode_sflow

if TYPE_CHECKING:
    from anycast_tui.model.flows import FlowMeta
    from anycast_tui.model.flowarray import FlowArray

KINDS = ("sflow", "ipfix")
MAX_REASONS = 20  # distinct malformed reasons kept per exporter; the rest are counted as "other"


def is_capture_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` starts like a pcap or pcapng capture (False when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return is_capture(fh.read(4))
    except OSError:
        return False


def export_kind(payload: bytes) -> str | None:
    """``sflow``, ``ipfix``, ``netflow9`` or None: what a UDP payload looks like by its version field."""
    if len(payload) >= 4 and payload[:4] == b"\0\0\0\x05":
        return "sflow"
    if len(payload) >= 2 and payload[0] == 0:
        return "ipfix" if payload[1] == 10 else "netflow9" if payload[1] == 9 else None
    return None


@dataclass
class ExporterCounts:
    exporter: str  # sFlow: the agent address; IPFIX / v9: the datagram's source address
    kind: str
    datagrams: int = 0
    samples: int = 0
    counter_samples: int = 0
    drops: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)

    def bad(self, reason: str) -> None:
        if reason not in self.malformed and len(self.malformed) >= MAX_REASONS:
            reason = "other"
        self.malformed[reason] = self.malformed.get(reason, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"exporter": self.exporter, "kind": self.kind, "datagrams": self.datagrams, "samples": self.samples,
                "counter_samples": self.counter_samples, "drops": self.drops, "skipped": dict(self.skipped),
                "malformed": dict(self.malformed)}


@dataclass
class CaptureExport:
    samples: list[FlowSample]
    exporters: list[ExporterCounts]
    udp_datagrams: int = 0  # UDP datagrams in the capture
    other_datagrams: int = 0  # UDP datagrams that are not of the kind asked for (DNS, ...)
    capture_skipped: dict[str, int] = field(default_factory=dict)  # frames that are no UDP datagram


def _open(path: str | os.PathLike[str]) -> str | os.PathLike[str] | BinaryIO:
    return io.BytesIO(sys.stdin.buffer.read()) if str(path) in ("-", "/dev/stdin") else path


def read_capture(path: str | os.PathLike[str] | BinaryIO, kind: str | None = None) -> CaptureExport:
    """Decode every export datagram of the capture at ``path`` (``-``: stdin); ``kind``: ``sflow`` or ``ipfix``
    (IPFIX and NetFlow v9) only, None: both.  Raises ParseError on a capture file that cannot be read."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    decoder = ExportDecoder()
    out = CaptureExport([], [])
    counts: dict[tuple[str, str], ExporterCounts] = {}
    source = _open(path) if isinstance(path, (str, os.PathLike)) else path
    for udp in iter_udp(source, out.capture_skipped):
        out.udp_datagrams += 1
        k = export_kind(udp.payload)
        if k is None or (kind == "sflow" and k != "sflow") or (kind == "ipfix" and k == "sflow"):
            out.other_datagrams += 1
            continue
        try:
            if k == "sflow":
                dg: ExportDatagram = decode_sflow(udp.payload, received=udp.time)
            else:
                dg = decoder.decode(udp.payload, udp.src, udp.time)
        except ExportDecodeError as exc:
            c = counts.get((udp.src, k)) or counts.setdefault((udp.src, k), ExporterCounts(udp.src, k))
            c.bad(exc.reason)
            continue
        key = (dg.exporter, dg.kind.value)
        c = counts.get(key) or counts.setdefault(key, ExporterCounts(*key))
        c.datagrams += 1
        c.samples += len(dg.samples)
        c.counter_samples += dg.counter_samples
        c.drops += dg.drops
        for what, n in dg.skipped:
            c.skipped[what] = c.skipped.get(what, 0) + n
        out.samples.extend(dg.samples)
    out.exporters = list(counts.values())
    return out


def samples_to_flows(samples: list[FlowSample]) -> tuple[FlowArray, FlowMeta]:
    """The distinct flows (5-tuple and IPv6 flow label) of ``samples``, in the order first seen."""
    from anycast_tui.model.flows import FlowMeta
    from anycast_tui.model.sampled import flow_array

    first: dict[tuple, FlowSample] = {}
    for s in samples:
        first.setdefault((s.family, s.proto, s.src, s.dst, s.sport, s.dport, s.flowlabel if s.family == 6 else 0), s)
    return flow_array(list(first.values())), FlowMeta()


def capture_flows(path: str | os.PathLike[str]) -> tuple[FlowArray, FlowMeta]:
    """``calc``/``whatif --flows CAPTURE``: the distinct flows the capture's export datagrams sampled.

    ParseError when the capture cannot be read or holds no sample at all (saying what it held instead)."""
    got = read_capture(path)
    if not got.samples:
        bad = sum(sum(c.malformed.values()) for c in got.exporters)
        raise ParseError(0, f"no flow samples in the capture ({got.udp_datagrams} UDP datagrams, "
                            f"{sum(c.datagrams for c in got.exporters)} export datagrams decoded, {bad} malformed)",
                         "capture")
    return samples_to_flows(got.samples)
