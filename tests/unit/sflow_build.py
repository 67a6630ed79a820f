"""Hand-built sFlow v5 datagrams, written from the spec (sflow.org/sflow_version_5.txt), for the encodings a
real exporter in the lab did not produce: expanded samples, discarded / multiple outputs, 802.1Q, IPv6
extension headers, truncated headers, counter samples, an IPv6 agent.  Shared by the tests and the bench."""

from __future__ import annotations

import ipaddress
import struct


def xdr_opaque(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def record(fmt: int, body: bytes, enterprise: int = 0) -> bytes:
    body = xdr_opaque(body)
    return struct.pack("!II", enterprise << 12 | fmt, len(body)) + body


def raw_header(frame: bytes, *, proto: int = 1, frame_length: int | None = None, stripped: int = 4) -> bytes:
    fl = len(frame) + stripped if frame_length is None else frame_length
    return record(1, struct.pack("!IIII", proto, fl, stripped, len(frame)) + frame)


def flow_sample(records: list[bytes], *, seq: int = 1, source: int = 3, rate: int = 400, pool: int = 4000,
                drops: int = 0, inp: int = 2, out: int = 3) -> bytes:
    body = struct.pack("!8I", seq, source, rate, pool, drops, inp, out, len(records)) + b"".join(records)
    return struct.pack("!II", 1, len(body)) + body


def expanded_sample(records: list[bytes], *, seq: int = 1, stype: int = 0, sidx: int = 3, rate: int = 400,
                    pool: int = 4000, drops: int = 0, in_fmt: int = 0, inp: int = 2, out_fmt: int = 0,
                    out: int = 3) -> bytes:
    body = struct.pack("!11I", seq, stype, sidx, rate, pool, drops, in_fmt, inp, out_fmt, out, len(records))
    body += b"".join(records)
    return struct.pack("!II", 3, len(body)) + body


def counter_sample(fmt: int = 2) -> bytes:
    ifc = struct.pack("!IIQIIQIIIIIIQIIIIIII", 3, 6, 10**9, 1, 3, 12345, 10, 0, 0, 0, 0, 0, 23456, 11, 0, 0, 0, 0, 0, 0)
    if fmt == 2:
        body = struct.pack("!III", 7, 3, 1) + record(1, ifc)
    else:
        body = struct.pack("!IIII", 7, 0, 3, 1) + record(1, ifc)
    return struct.pack("!II", fmt, len(body)) + body


def datagram(samples: list[bytes], *, agent: str = "198.18.0.1", sub_agent: int = 0, seq: int = 1,
             uptime: int = 1000) -> bytes:
    a = ipaddress.ip_address(agent)
    head = struct.pack("!II", 5, 1 if a.version == 4 else 2) + a.packed
    return head + struct.pack("!IIII", sub_agent, seq, uptime, len(samples)) + b"".join(samples)


def ether(payload: bytes, ethertype: int, vlans: tuple[int, ...] = ()) -> bytes:
    out = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02"
    tpids = [0x88A8] * (len(vlans) - 1) + [0x8100] if vlans else []
    for tpid, vid in zip(tpids, vlans):
        out += struct.pack("!HH", tpid, vid)  # the tag: TPID, then the TCI (priority 0, the VLAN id)
    return out + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, l4: bytes, *, options: bytes = b"", frag: int = 0) -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(l4)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed) + options + l4


def ipv6(src: str, dst: str, nh: int, payload: bytes, *, label: int = 0) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28 | label, len(payload), nh, 64, ipaddress.ip_address(src).packed,
                       ipaddress.ip_address(dst).packed) + payload


def udp(sport: int, dport: int, data: bytes = b"x" * 20) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp(sport: int, dport: int, flags: int = 0x18, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 5 << 4 | (flags >> 8), flags & 0xFF, 65535, 0, 0) + data


def hsflowd_like(n_samples: int = 8, header_bytes: int = 128, seq: int = 1) -> bytes:
    """A datagram like hsflowd sends: ``n_samples`` flow samples, each a 128-byte Ethernet/IPv4/TCP header
    cut (frames of 1514 bytes) plus an extended switch record."""
    samples = []
    for i in range(n_samples):
        frame = ether(ipv4(f"203.0.113.{1 + i}", "192.0.2.53", 6, tcp(40000 + i, 443, data=b"\0" * 1460)), 0x0800)
        samples.append(flow_sample([record(1001, struct.pack("!IIII", 10, 0, 10, 0)),
                                    raw_header(frame[:header_bytes], frame_length=1518)],
                                   seq=seq * n_samples + i, rate=400, pool=(seq * n_samples + i) * 400))
    return datagram(samples, seq=seq)
