"""UDP datagrams out of a tcpdump capture file: classic pcap and pcapng, read block by block.

Classic pcap in either byte order, microsecond (``a1b2c3d4``) or nanosecond (``a1b23c4d``) timestamps; pcapng
sections (either byte order) with their interfaces (IDB: link type, ``if_tsresol``, ``if_tsoffset``), enhanced
(EPB), simple (SPB) and obsolete (OPB) packet blocks; other blocks are skipped by their length.  Link types:
Ethernet (802.1Q/QinQ tags), Linux cooked SLL and SLL2, raw IP (101, 228, 229), BSD loopback (0).  IPv4 and
IPv6 (extension headers walked); UDP only.  Not returned but counted in ``skipped``: other protocols, other
link types, fragments (no reassembly), frames cut before the UDP header.

A file that is not a capture, a block or record whose length lies, a file cut mid-record: ``ExportDecodeError``
(a ``ParseError``) naming the byte offset.  Memory stays bounded by one block: a length is checked against
the bytes left in the file before anything is read.  No pure-Python pcapng reader is among the dependencies
(scapy and dpkt are large; pypcapng is unmaintained), hence this one.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from anycast_tui.parse.errors import ExportDecodeError

KIND = "pcap"
MAX_RECORD = 1 << 24  # no capture record is larger (snaplen is at most 256 KiB in libpcap)
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def is_capture(head: bytes) -> bool:
    """Whether ``head`` (a file's first 4 bytes or more) starts a pcap or pcapng file."""
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    time: float  # UNIX seconds of the capture
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def _err(offset: int, reason: str) -> ExportDecodeError:
    return ExportDecodeError(f"offset {offset}: {reason}", KIND)


def _count(skipped: dict[str, int] | None, what: str) -> None:
    if skipped is not None:
        skipped[what] = skipped.get(what, 0) + 1


def _udp(frame: bytes, link: int, skipped: dict[str, int] | None) -> tuple[str, int, str, int, bytes] | None:
    """(src, sport, dst, dport, payload) of a UDP frame of link type ``link``, else None (counted)."""
    q, n = 0, len(frame)
    if link == 1:  # Ethernet
        if n < 14:
            return _count(skipped, "cut frame")
        et, q = frame[12] << 8 | frame[13], 14
        while et in (0x8100, 0x88A8, 0x9100) and n - q >= 4:
            et, q = frame[q + 2] << 8 | frame[q + 3], q + 4
    elif link == 113:  # Linux cooked SLL: protocol at 14
        if n < 16:
            return _count(skipped, "cut frame")
        et, q = frame[14] << 8 | frame[15], 16
    elif link == 276:  # SLL2: protocol at 0, 20-byte header
        if n < 20:
            return _count(skipped, "cut frame")
        et, q = frame[0] << 8 | frame[1], 20
    elif link in (101, 12, 14, 228, 229):  # raw IP
        et = 0x0800 if n and frame[0] >> 4 == 4 else 0x86DD
    elif link == 0:  # BSD loopback: 4-byte address family, host order
        if n < 4:
            return _count(skipped, "cut frame")
        et, q = (0x0800 if frame[0] == 2 or frame[3] == 2 else 0x86DD), 4
    else:
        return _count(skipped, f"link type {link}")
    if et == 0x0800:
        if n - q < 20 or frame[q] >> 4 != 4:
            return _count(skipped, "cut frame" if n - q < 20 else "bad IP header")
        if (frame[q + 6] & 0x3F) or frame[q + 7]:  # more fragments, or an offset
            return _count(skipped, "IP fragment")
        proto = frame[q + 9]
        src, dst = socket.inet_ntop(socket.AF_INET, frame[q + 12:q + 16]), socket.inet_ntop(socket.AF_INET, frame[q + 16:q + 20])
        q += (frame[q] & 15) * 4
    elif et == 0x86DD:
        if n - q < 40 or frame[q] >> 4 != 6:
            return _count(skipped, "cut frame" if n - q < 40 else "bad IP header")
        proto = frame[q + 6]
        src, dst = socket.inet_ntop(socket.AF_INET6, frame[q + 8:q + 24]), socket.inet_ntop(socket.AF_INET6, frame[q + 24:q + 40])
        q += 40
        for _ in range(16):
            if proto in (0, 43, 60) and n - q >= 2:
                proto, q = frame[q], q + (frame[q + 1] + 1) * 8
            elif proto == 44:
                return _count(skipped, "IP fragment")
            else:
                break
    else:
        return _count(skipped, "not IP")
    if proto != 17:
        return _count(skipped, f"IP protocol {proto}")
    if n - q < 8:
        return _count(skipped, "cut frame")
    sport, dport, ulen = struct.unpack_from("!HHH", frame, q)
    end = q + ulen if 8 <= ulen <= n - q else n  # a UDP length that lies: what was captured
    return src, sport, dst, dport, frame[q + 8:end]


def _read(fh: BinaryIO, size: int, offset: int, left: int, what: str) -> bytes:
    if size > left:
        raise _err(offset, f"{what} of {size} bytes runs past the end of the file ({left} bytes left)")
    data = fh.read(size)
    if len(data) != size:
        raise _err(offset, f"{what} cut short")
    return data


def iter_udp(path: str | os.PathLike[str] | BinaryIO, skipped: dict[str, int] | None = None) -> Iterator[UdpDatagram]:
    """The UDP datagrams of the capture at ``path`` (or a seekable binary file), in file order; what is not a
    UDP datagram is counted in ``skipped``."""
    if not isinstance(path, (str, os.PathLike)):  # a binary file
        yield from _iter(path, skipped)
        return
    with open(path, "rb") as fh:
        yield from _iter(fh, skipped)


def _iter(fh: BinaryIO, skipped: dict[str, int] | None) -> Iterator[UdpDatagram]:
    start = fh.tell()
    total = fh.seek(0, os.SEEK_END) - start
    fh.seek(start)
    head = fh.read(4)
    if head in PCAP_MAGICS:
        yield from _classic(fh, head, total, skipped)
    elif head == PCAPNG_MAGIC:
        yield from _pcapng(fh, head, total, skipped)
    else:
        raise _err(0, "not a pcap or pcapng capture (magic " + head.hex() + ")")


def _classic(fh: BinaryIO, head: bytes, total: int, skipped: dict[str, int] | None) -> Iterator[UdpDatagram]:
    order, unit = PCAP_MAGICS[head]
    rest = _read(fh, 20, 4, total - 4, "file header")
    link = struct.unpack(order + "HHiIII", rest)[5] & 0xFFFF
    rec = struct.Struct(order + "IIII")
    off = 24
    while off < total:
        sec, frac, incl, _orig = rec.unpack(_read(fh, 16, off, total - off, "record header"))
        if incl > MAX_RECORD:
            raise _err(off, f"record length {incl} is larger than any capture record ({MAX_RECORD})")
        frame = _read(fh, incl, off, total - off - 16, "record")
        got = _udp(frame, link, skipped)
        if got is not None:
            yield UdpDatagram(sec + frac * unit, *got)
        off += 16 + incl


def _pcapng(fh: BinaryIO, head: bytes, total: int, skipped: dict[str, int] | None) -> Iterator[UdpDatagram]:
    order = "<"
    ifaces: list[tuple[int, float, int]] = []  # (link type, seconds per tick, offset seconds)
    off = 0
    while off < total:
        lead = head if off == 0 else _read(fh, 4, off, total - off, "block type")
        length_raw = _read(fh, 4, off + 4, total - off - 4, "block length")
        if lead == PCAPNG_MAGIC:  # a section: its byte order comes with it
            bom = _read(fh, 4, off + 8, total - off - 8, "section header")
            if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                raise _err(off, "section header without the byte-order magic")
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
            (length,) = struct.unpack(order + "I", length_raw)
            if length < 28 or length % 4 or length > min(MAX_RECORD, total - off):
                raise _err(off, f"section header length {length} (file has {total - off} bytes left)")
            body = bom + _read(fh, length - 12, off + 12, total - off - 12, "section header")
        else:
            (btype,) = struct.unpack(order + "I", lead)
            (length,) = struct.unpack(order + "I", length_raw)
            if length < 12 or length % 4 or length > total - off or length > MAX_RECORD:
                raise _err(off, f"block length {length} (file has {total - off} bytes left)")
            body = _read(fh, length - 8, off + 8, total - off - 8, "block")
            if body[-4:] != length_raw:
                raise _err(off, "block's trailing length differs from its leading one")
            if btype == 1:  # interface description
                ifaces.append(_interface(body[:-4], order, off))
            elif btype in (6, 3, 2):
                got = _packet(btype, body[:-4], order, ifaces, off)
                if got is not None:
                    link, t, frame = got
                    udp = _udp(frame, link, skipped)
                    if udp is not None:
                        yield UdpDatagram(t, *udp)
        off += length


def _interface(body: bytes, order: str, off: int) -> tuple[int, float, int]:
    if len(body) < 8:
        raise _err(off, "interface block cut short")
    link = struct.unpack_from(order + "H", body, 0)[0]
    unit, tsoff, p = 1e-6, 0, 8
    while len(body) - p >= 4:
        code, olen = struct.unpack_from(order + "HH", body, p)
        p += 4
        if code == 0 or olen > len(body) - p:
            break
        if code == 9 and olen >= 1:  # if_tsresol: 10^-v, or 2^-v with the top bit
            v = body[p]
            unit = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        elif code == 14 and olen >= 8:
            tsoff = struct.unpack_from(order + "q", body, p)[0]
        p += (olen + 3) & ~3
    return link, unit, tsoff


def _packet(btype: int, body: bytes, order: str, ifaces: list, off: int) -> tuple[int, float, bytes] | None:
    if btype == 3:  # simple packet: interface 0, no timestamp
        if not ifaces or len(body) < 4:
            raise _err(off, "simple packet block before any interface" if not ifaces else "simple packet block cut short")
        (orig,) = struct.unpack_from(order + "I", body, 0)
        return ifaces[0][0], 0.0, body[4:4 + min(orig, len(body) - 4)]
    if len(body) < 20:
        raise _err(off, "packet block cut short")
    if btype == 6:
        iface, hi, lo, cap, _orig = struct.unpack_from(order + "IIIII", body, 0)
    else:
        iface, _drops, hi, lo, cap, _orig = struct.unpack_from(order + "HHIIII", body, 0)
    if iface >= len(ifaces):
        raise _err(off, f"packet of interface {iface}, which no interface block described")
    if cap > len(body) - 20:
        raise _err(off, f"captured length {cap} exceeds the block ({len(body) - 20} bytes)")
    link, unit, tsoff = ifaces[iface]
    return link, (hi << 32 | lo) * unit + tsoff, body[20:20 + cap]
