"""Capture files: tcpdump's classic pcap (Ethernet µs, Linux SLL2 ns) and dumpcap's pcapng of the same export
datagrams agree; re-encodings (byte orders, resolutions, link types, block kinds) written from the file-format
specs read back the same; bad and lying files are one typed error naming the offset, in bounded memory."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from byte_mutations import mutated_bytes
from anycast_tui.parse.errors import ExportDecodeError, ParseError
from anycast_tui.parse.pcap import UdpDatagram, iter_udp

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "export"


def frames(path: Path) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(link type, [(seconds, microseconds, frame)]) of a little-endian µs classic pcap, read here by the spec."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    link = struct.unpack_from("<I", data, 20)[0]
    out, off = [], 24
    while off < len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, off)
        out.append((sec, usec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return link, out


def classic(records: list[tuple[int, int, bytes]], link: int, *, order: str = "<", nano: bool = False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, link)
    for sec, frac, frame in records:
        out += struct.pack(order + "IIII", sec, frac, len(frame), len(frame)) + frame
    return out


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def pcapng(records: list[tuple[int, int, bytes]], link: int, *, order: str = "<", tsresol: int | None = None,
           kind: str = "epb") -> bytes:
    shb = block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(order + "HH", 0, 0)
    out = shb + block(order, 1, struct.pack(order + "HHI", link, 0, 0) + opts)
    for sec, usec, frame in records:
        if tsresol is None:
            ts = sec * 10**6 + usec
        elif tsresol & 0x80:
            ts = int((sec + usec / 1e6) * 2 ** (tsresol & 0x7F))
        else:
            ts = (sec * 10**6 + usec) * 10 ** (tsresol - 6)
        if kind == "epb":
            out += block(order, 6, struct.pack(order + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame)
        elif kind == "opb":
            out += block(order, 2, struct.pack(order + "HHIIII", 0, 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame)
        else:
            out += block(order, 3, struct.pack(order + "I", len(frame)) + frame)
    out += block(order, 5, b"\0" * 12)  # an interface statistics block: skipped
    return out


def read(data: bytes, skipped: dict | None = None) -> list[UdpDatagram]:
    return list(iter_udp(io.BytesIO(data), skipped))


LINK, SFLOW = frames(FIX / "sflow.pcap")
WANT = list(iter_udp(FIX / "sflow.pcap"))


def test_fixture_formats_are_what_the_tools_wrote():
    assert LINK == 1
    head = (FIX / "ipfix.pcap").read_bytes()[:24]
    assert head[:4] == b"\x4d\x3c\xb2\xa1" and struct.unpack_from("<I", head, 20)[0] == 276  # ns, SLL2
    ng = (FIX / "export.pcapng").read_bytes()
    assert ng[:4] == b"\x0a\x0d\x0d\x0a"


def test_tcpdump_pcap_and_dumpcap_pcapng_agree():
    ng = list(iter_udp(FIX / "export.pcapng"))
    ng_sflow = [u for u in ng if u.dport == 6343]
    assert [u.payload for u in ng_sflow] == [u.payload for u in WANT]
    assert all(abs(a.time - b.time) < 0.01 for a, b in zip(ng_sflow, WANT))
    assert {(u.src, u.dst, u.dport) for u in WANT} == {("198.18.0.1", "198.18.0.2", 6343)}
    ipfix = list(iter_udp(FIX / "ipfix.pcap"))  # tcpdump on "any": SLL2, nanoseconds
    ng_ipfix = [u for u in ng if u.dport == 4739]  # dumpcap on "any": SLL
    assert ipfix and [u.payload for u in ng_ipfix] == [u.payload for u in ipfix]
    assert all(abs(a.time - b.time) < 0.01 for a, b in zip(ng_ipfix, ipfix))


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_byte_orders_and_resolutions(order, nano):
    recs = [(s, u * 1000 if nano else u, f) for s, u, f in SFLOW]
    got = read(classic(recs, 1, order=order, nano=nano))
    assert [g.payload for g in got] == [w.payload for w in WANT]
    assert [round(g.time, 6) for g in got] == [round(w.time, 6) for w in WANT]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("tsresol, kind", [(None, "epb"), (9, "epb"), (0x80 | 20, "epb"), (6, "opb"), (None, "spb")])
def test_pcapng_orders_resolutions_and_block_kinds(order, tsresol, kind):
    got = read(pcapng(SFLOW, 1, order=order, tsresol=tsresol, kind=kind))
    assert [g.payload for g in got] == [w.payload for w in WANT]
    if kind != "spb":  # a simple packet block has no timestamp
        assert all(abs(g.time - w.time) < 1e-5 for g, w in zip(got, WANT))


def reframe(frame: bytes, link: int) -> bytes:
    ip = frame[14:]
    if link in (101, 228):
        return ip
    if link == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\2" * 8, 0x0800) + ip
    if link == 276:
        return struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\2" * 8) + ip
    if link == 0:
        return struct.pack("<I", 2) + ip
    if link == 1:  # QinQ
        return frame[:12] + struct.pack("!HHHH", 0x88A8, 10, 0x8100, 20) + frame[12:]
    raise AssertionError(link)


@pytest.mark.parametrize("link", [101, 228, 113, 276, 0, 1])
def test_link_types(link):
    got = read(classic([(s, u, reframe(f, link)) for s, u, f in SFLOW], link))
    assert [g.payload for g in got] == [w.payload for w in WANT]


def udp4(payload: bytes, *, frag: int = 0) -> bytes:
    udp = struct.pack("!HHHH", 1000, 6343, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, frag, 64, 17, 0, b"\xc6\x12\0\1",
                       b"\xc6\x12\0\2") + udp


def test_fragments_other_protocols_and_ipv6_udp():
    v6udp = struct.pack("!HHHH", 1, 2, 13, 0) + b"hello"
    v6 = struct.pack("!IHBB16s16s", 6 << 28, len(v6udp), 17, 64, b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\1",
                     b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\2") + v6udp
    v6frag = struct.pack("!IHBB16s16s", 6 << 28, 8 + len(v6udp), 44, 64, b"\0" * 16, b"\0" * 16) + \
        bytes([17, 0, 0, 1, 0, 0, 0, 1]) + v6udp
    tcp = bytearray(udp4(b"x"))
    tcp[9] = 6
    skipped: dict[str, int] = {}
    got = read(classic([(1, 0, udp4(b"a", frag=0x2000)), (1, 0, udp4(b"b", frag=3)), (1, 0, bytes(tcp)),
                        (1, 0, v6), (1, 0, v6frag), (1, 0, udp4(b"ok"))], 101), skipped)
    assert [(g.src, g.sport, g.dport, g.payload) for g in got] == [("2001:db8::1", 1, 2, b"hello"),
                                                                   ("198.18.0.1", 1000, 6343, b"ok")]
    assert skipped == {"IP fragment": 3, "IP protocol 6": 1}


# --- bad files ---------------------------------------------------------------------------------------------------

def test_bad_files_name_the_offset(tmp_path):
    with pytest.raises(ExportDecodeError, match=r"^pcap: offset 0: not a pcap or pcapng capture"):
        read(b"hello world, this is no capture")
    good = classic(SFLOW[:2], 1)
    cut = good[:-5]
    with pytest.raises(ExportDecodeError) as ei:
        read(cut)
    assert ei.value.reason == f"offset {24 + 16 + len(SFLOW[0][2])}: record of {len(SFLOW[1][2])} bytes runs past " \
                              f"the end of the file ({len(SFLOW[1][2]) - 5} bytes left)"
    assert isinstance(ei.value, ParseError)
    lying = good[:24 + 8] + struct.pack("<I", 0xFFFFFFFF) + good[24 + 12:]
    with pytest.raises(ExportDecodeError, match=r"offset 24: record length 4294967295 is larger than any"):
        read(lying)
    ng = pcapng(SFLOW[:2], 1)
    epb = ng.index(struct.pack("<I", 6))
    with pytest.raises(ExportDecodeError, match=rf"offset {epb}: block length 4294967292"):
        read(ng[:epb + 4] + struct.pack("<I", 0xFFFFFFFC) + ng[epb + 8:])
    with pytest.raises(ExportDecodeError, match=rf"offset {epb}: block length 13"):
        read(ng[:epb + 4] + struct.pack("<I", 13) + ng[epb + 8:])
    with pytest.raises(ExportDecodeError, match=r"trailing length differs"):
        read(ng[:epb + 4] + struct.pack("<I", 32) + ng[epb + 8:])
    f = tmp_path / "x.pcap"
    f.write_bytes(cut)
    with pytest.raises(ExportDecodeError):
        list(iter_udp(f))


def test_lying_length_allocates_nothing_big():
    ng = pcapng(SFLOW[:1], 1)
    big = ng + struct.pack("<II", 6, 0x7FFFFFFC) + b"\0" * 64
    tracemalloc.start()
    try:
        with pytest.raises(ExportDecodeError):
            read(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


SEEDS = [(FIX / "sflow.pcap").read_bytes()[:3000], (FIX / "export.pcapng").read_bytes()[:4000],
         (FIX / "ipfix.pcap").read_bytes()]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_bytes(SEEDS, [0, 4, 12, 13, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 20], fmt="<I", splice=False, max_ops=3))
def test_mutated_captures_only_raise_the_typed_error(data):
    tracemalloc.start()
    try:
        try:
            read(data)
        except ExportDecodeError as exc:
            assert exc.reason.startswith("offset ") and "\n" not in str(exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024 + 4 * len(data)
