"""sFlow v5 decoding: real pmacct sfprobe datagrams against what was sent through the router, hand-built
datagrams (from the spec) for every encoding pmacct does not produce, and mutations of the real ones."""

from __future__ import annotations

import ipaddress
import json
import struct
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import sflow_build as b
from byte_mutations import mutated_bytes
from anycast_tui.model.samples import ExportDatagram, ExportKind
from anycast_tui.parse.errors import ExportDecodeError, ParseError
from anycast_tui.parse.pcap import iter_udp
from anycast_tui.parse.sflow import decode_sflow

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "export"
META = json.loads((FIX / "sent.json").read_text())
REAL = [u for u in iter_udp(FIX / "sflow.pcap")]
REAL6 = [u for u in iter_udp(FIX / "sflow6.pcap")]  # the same sfprobe with an IPv6 agent, exported over IPv6
CLIENT, SERVER = "203.0.113.10", "192.0.2.53"


def text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def tuple_of(s) -> tuple:
    return s.proto, text(s.src), s.sport, text(s.dst), s.dport


# --- the real exporter ------------------------------------------------------------------------------------------

def test_real_sfprobe_datagrams_carry_every_packet_sent_with_the_router_output_port():
    sent = {(f["proto"], f["src"], f["sport"], f["dst"], f["dport"]): f for f in META["flows"]}
    assert len(REAL) >= 3
    seen: dict[tuple, list] = {k: [] for k in sent}
    seqs = []
    for u in REAL:
        dg = decode_sflow(u.payload, received=u.time)
        assert dg.kind is ExportKind.SFLOW and dg.exporter == META["sflow_agent"] and dg.sub_agent == META["sflow_sub_agent"]
        assert dg.skipped == () and dg.drops == 0
        seqs.append(dg.sequence)
        for s in dg.samples:
            assert s.received == u.time and s.sampling_rate == 1 and s.exporter == META["sflow_agent"]
            if tuple_of(s) in seen:
                seen[tuple_of(s)].append(s)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one agent, datagram sequence without a gap
    r1 = META["router_ifindex"]["r1"]
    for key, f in sent.items():
        got = seen[key]
        # sampling 1:1 on what left r1: every packet of the flow is a sample, leaving by r1's ifIndex
        assert got, key
        assert {s.output_if for s in got} == {r1} and not any(s.output_discarded or s.output_multiple for s in got)
        assert {s.input_if for s in got} == {None}  # pmacct sends 0x3FFFFFFF: internal to the agent
        assert {s.family for s in got} == {4 if ":" not in f["src"] else 6}
        assert {(s.vlan_in, s.vlan_out) for s in got} == {(0, 0)}  # its extended switch record
        if f["proto"] == 17:
            assert len(got) == f["packets"]
            i = f["sport"] % 100
            ip = 20 if ":" not in f["src"] else 40
            assert {s.octets for s in got} == {14 + ip + 8 + 20 + i + 4}  # frame length with the stripped FCS
        else:
            flags = [s.tcp_flags for s in got]
            assert flags[0] == 0x02  # SYN first
            assert any(x & 0x01 for x in flags) and all(x & 0x10 for x in flags[1:])  # a FIN; ACK after the SYN


def test_real_ipv6_agent_over_ipv6_and_its_malformed_first_datagram():
    sent = {(f["proto"], f["src"], f["sport"], f["dst"], f["dport"]): f for f in META["flows"]}
    counts: dict[tuple, int] = {k: 0 for k in sent}
    bad = []
    for u in REAL6:
        assert u.src == META["sflow6_agent"] and ":" in u.dst
        try:
            dg = decode_sflow(u.payload)
        except ExportDecodeError as exc:
            bad.append(exc.reason)
            continue
        assert (dg.exporter, dg.sub_agent) == (META["sflow6_agent"], META["sflow6_sub_agent"])
        for s in dg.samples:
            if tuple_of(s) in counts:
                counts[tuple_of(s)] += 1
                assert s.output_if == META["router_ifindex"]["r1"]
    # pmacct 1.7.7's sfprobe sends its first IPv6 datagram without the flow sample's length word (tshark reads
    # "Sample length (byte): 1" there too): one line saying so, the rest decode
    assert bad in ([], ["sample 1: flow sample of 1 bytes (at least 32)"])
    assert all(counts[k] == f["packets"] for k, f in sent.items() if f["proto"] == 17)
    assert all(counts[k] >= 4 for k, f in sent.items() if f["proto"] == 6)


def test_real_sample_sequences_count_the_samples_between_datagrams():
    last = None
    for u in REAL:
        dg = decode_sflow(u.payload)
        flow_samples = len(dg.samples) + sum(n for _w, n in dg.skipped)
        if not dg.sample_seqs:
            assert flow_samples == 0
            continue
        ((source, seq, count),) = dg.sample_seqs
        assert count == flow_samples
        if last is not None:
            assert seq - last == count  # no sample lost on the way
        last = seq


def test_real_ipv6_hop_by_hop_header_is_walked():
    # the kernel's own MLD reports left r1 too: IPv6 with a hop-by-hop header (router alert) before ICMPv6
    mld = [s for u in REAL for s in decode_sflow(u.payload).samples if s.family == 6 and text(s.dst) == "ff02::16"]
    assert mld and {s.proto for s in mld} == {58}


# --- hand-built: what pmacct did not send -----------------------------------------------------------------------

def one(sample: bytes, **kw) -> ExportDatagram:
    return decode_sflow(b.datagram([sample], **kw))


def v4_udp(sport=1234, dport=53, **kw) -> bytes:
    return b.ipv4(CLIENT, SERVER, 17, b.udp(sport, dport), **kw)


def test_expanded_sample_discarded_multiple_and_internal_outputs():
    frame = b.ether(v4_udp(), 0x0800)
    rec = [b.raw_header(frame)]
    s = one(b.expanded_sample(rec, stype=0, sidx=0x123456, out_fmt=1, out=257, inp=7)).samples[0]
    assert (s.source_id, s.input_if, s.output_if, s.output_discarded, s.output_multiple) == (0x123456, 7, None, True, 0)
    s = one(b.expanded_sample(rec, out_fmt=2, out=3)).samples[0]
    assert (s.output_if, s.output_multiple, s.output_discarded) == (None, 3, False)
    s = one(b.expanded_sample(rec, out_fmt=2, out=0)).samples[0]
    assert s.output_multiple == -1  # "an unknown number of interfaces (greater than 1)"
    s = one(b.expanded_sample(rec, inp=0x3FFFFFFF, out=0x3FFFFFFF)).samples[0]
    assert (s.input_if, s.output_if) == (None, None)
    s = one(b.expanded_sample(rec, inp=0, out=0)).samples[0]
    assert (s.input_if, s.output_if) == (None, None)  # 0: not known
    s = one(b.expanded_sample(rec, stype=2, sidx=5, rate=1000)).samples[0]
    assert (s.source_id, s.sampling_rate, s.estimated_packets) == (2 << 24 | 5, 1000, 1000)


def test_compact_output_encodings():
    rec = [b.raw_header(b.ether(v4_udp(), 0x0800))]
    assert one(b.flow_sample(rec, out=1 << 30 | 257)).samples[0].output_discarded
    s = one(b.flow_sample(rec, out=2 << 30 | 4)).samples[0]
    assert (s.output_if, s.output_multiple) == (None, 4)
    s = one(b.flow_sample(rec, out=17, inp=0x3FFFFFFF)).samples[0]
    assert (s.input_if, s.output_if) == (None, 17)
    dg = one(b.flow_sample(rec, out=1 << 30 | 1))
    assert dg.extra["output_discarded"] == 1


@pytest.mark.parametrize("vlans", [(), (100,), (100, 200), (10, 20, 30)])
def test_vlan_tags_are_skipped(vlans):
    frame = b.ether(b.ipv4(CLIENT, SERVER, 6, b.tcp(40000, 443, flags=0x12)), 0x0800, vlans)
    s = one(b.flow_sample([b.raw_header(frame)])).samples[0]
    assert tuple_of(s) == (6, CLIENT, 40000, SERVER, 443) and s.tcp_flags == 0x12


def test_ipv4_options_and_fragments():
    s = one(b.flow_sample([b.raw_header(b.ether(v4_udp(5555, 53, options=b"\x01" * 8), 0x0800))])).samples[0]
    assert tuple_of(s) == (17, CLIENT, 5555, SERVER, 53)
    s = one(b.flow_sample([b.raw_header(b.ether(v4_udp(5555, 53, frag=185), 0x0800))])).samples[0]
    assert tuple_of(s) == (17, CLIENT, 0, SERVER, 0)  # a later fragment carries no ports
    s = one(b.flow_sample([b.raw_header(b.ether(v4_udp(5555, 53, frag=0x2000), 0x0800))])).samples[0]
    assert (s.sport, s.dport) == (5555, 53)  # the first fragment (more fragments set) has them


def ext(nh: int, size8: int = 1) -> bytes:
    """An IPv6 extension header of ``size8`` 8-byte units: next header, length, padding."""
    return bytes([nh, size8 - 1]) + b"\x01\x00" * (size8 * 4 - 1)


def test_ipv6_extension_headers_and_flow_label():
    c6, s6 = "2001:db8:c::10", "2001:db8:53::53"
    chain = ext(43) + bytes([60, 2, 0, 0, 0, 0, 0, 0]) + b"\0" * 16 + ext(44, 2)  # HBH, routing 24 B, dest-opts 16 B
    frag = bytes([17, 0, 0, 0, 0, 0, 0, 1])  # fragment header: UDP next, offset 0
    pkt = b.ipv6(c6, s6, 0, chain + frag + b.udp(7000, 53), label=0xABCDE)
    s = one(b.flow_sample([b.raw_header(b.ether(pkt, 0x86DD))])).samples[0]
    assert (s.family, tuple_of(s), s.flowlabel) == (6, (17, c6, 7000, s6, 53), 0xABCDE)
    later = bytes([17, 0, 0x05, 0x40, 0, 0, 0, 1])  # offset 168: a later fragment
    s = one(b.flow_sample([b.raw_header(b.ether(b.ipv6(c6, s6, 44, later + b"\0" * 16), 0x86DD))])).samples[0]
    assert tuple_of(s) == (17, c6, 0, s6, 0)
    ah = bytes([6, 4]) + b"\0" * 22  # AH: (4 + 2) * 4 = 24 bytes, TCP next
    s = one(b.flow_sample([b.raw_header(b.ipv6(c6, s6, 51, ah + b.tcp(1, 2, 0x10)), proto=12)])).samples[0]
    assert tuple_of(s) == (6, c6, 1, s6, 2) and s.tcp_flags == 0x10


def test_truncated_headers_keep_what_is_there():
    frame = b.ether(b.ipv4(CLIENT, SERVER, 6, b.tcp(40000, 443)), 0x0800)
    s = one(b.flow_sample([b.raw_header(frame[:14 + 20 + 2])])).samples[0]
    assert tuple_of(s) == (6, CLIENT, 0, SERVER, 0)  # cut inside the ports
    s = one(b.flow_sample([b.raw_header(frame[:14 + 20 + 4])])).samples[0]
    assert tuple_of(s) == (6, CLIENT, 40000, SERVER, 443) and s.tcp_flags == 0  # ports, flags cut
    dg = one(b.flow_sample([b.raw_header(frame[:14 + 16])]))
    assert dg.samples == () and dg.skipped == (("truncated header", 1),)  # cut before the destination
    c6, s6 = "2001:db8:c::10", "2001:db8:53::53"
    pkt = b.ipv6(c6, s6, 0, ext(17) + b.udp(1, 2))
    s = one(b.flow_sample([b.raw_header(b.ether(pkt, 0x86DD)[:14 + 40 + 1])])).samples[0]
    assert (s.family, s.proto, s.sport) == (6, 0, 0)  # cut inside the chain: the last header known


def test_non_ip_and_unknown_formats_are_skipped_and_counted():
    arp = b.ether(b"\0\x01\x08\0\x06\x04\0\x01" + b"\0" * 20, 0x0806)
    good = b.flow_sample([b.raw_header(b.ether(v4_udp(), 0x0800)), b.record(1003, b"\0" * 8),
                          b.record(5, b"\xff" * 12, enterprise=4300)])
    dg = decode_sflow(b.datagram([b.flow_sample([b.raw_header(arp)]), good, b"\0\0\x11\x3d\0\0\0\x04abcd",
                                  b.counter_sample(2), b.counter_sample(4)]))
    assert len(dg.samples) == 1 and dg.counter_samples == 2
    assert dict(dg.skipped) == {"non-IP frame": 1, "flow record 0:1003": 1, "flow record 4300:5": 1,
                                "sample format 1:317": 1}


def test_sampled_ipv4_ipv6_records_and_extended_router():
    sip4 = struct.pack("!II4s4sIIII", 1500, 6, ipaddress.ip_address(CLIENT).packed, ipaddress.ip_address(SERVER).packed,
                       40000, 443, 0x18, 0)
    router = struct.pack("!I4sII", 1, ipaddress.ip_address("198.18.1.2").packed, 24, 32)
    s = one(b.flow_sample([b.record(3, sip4), b.record(1002, router)])).samples[0]
    assert tuple_of(s) == (6, CLIENT, 40000, SERVER, 443) and s.octets == 1500 and s.tcp_flags == 0x18
    assert text(s.nexthop) == "198.18.1.2"
    c6, s6 = ipaddress.ip_address("2001:db8:c::10"), ipaddress.ip_address("2001:db8:53::53")
    sip6 = struct.pack("!II16s16sIIII", 1200, 17, c6.packed, s6.packed, 5000, 53, 0, 0)
    s = one(b.flow_sample([b.record(4, sip6)])).samples[0]
    assert (s.family, tuple_of(s), s.octets) == (6, (17, str(c6), 5000, str(s6), 53), 1200)
    # the raw header wins over the sampled record when both come
    s = one(b.flow_sample([b.raw_header(b.ether(v4_udp(9, 10), 0x0800)), b.record(3, sip4)])).samples[0]
    assert (s.sport, s.dport) == (9, 10)


def test_ipv6_agent_raw_ip_headers_and_source_bookkeeping():
    pkt4 = v4_udp(1, 2)
    pkt6 = b.ipv6("2001:db8:c::10", "2001:db8:53::53", 17, b.udp(3, 4))
    dg = decode_sflow(b.datagram([b.flow_sample([b.raw_header(pkt4, proto=11)], seq=10, source=3, drops=5),
                                  b.flow_sample([b.raw_header(pkt6, proto=12)], seq=11, source=3, drops=2),
                                  b.flow_sample([b.raw_header(pkt4, proto=11)], seq=70, source=4)],
                                 agent="2001:db8::1", sub_agent=3, seq=99, uptime=12345))
    assert (dg.exporter, dg.sub_agent, dg.sequence, dg.uptime_ms, dg.drops) == ("2001:db8::1", 3, 99, 12345, 7)
    assert [(s.sport, s.family) for s in dg.samples] == [(1, 4), (3, 6), (1, 4)]
    assert dg.sample_seqs == ((3, 11, 2), (4, 70, 1))
    assert {s.exporter for s in dg.samples} == {"2001:db8::1"}


def test_header_protocol_other_than_ethernet_or_ip_is_skipped():
    dg = one(b.flow_sample([b.raw_header(b"\0" * 40, proto=7)]))
    assert dg.samples == () and dg.skipped == (("header protocol 7", 1),)


# --- errors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, reason", [
    (b"", "datagram of 0 bytes is shorter than an sFlow v5 header (28)"),
    (struct.pack("!II", 4, 1) + b"\0" * 24, "not sFlow version 5 (version 4)"),
    (struct.pack("!II", 5, 3) + b"\0" * 24, "agent address type 3 (1 = IPv4, 2 = IPv6)"),
    (b.datagram([])[:-4] + struct.pack("!I", 1000), "1000 samples cannot fit in the datagram (0 bytes left)"),
])
def test_bad_datagrams_one_line_reasons(data, reason):
    with pytest.raises(ExportDecodeError) as ei:
        decode_sflow(data)
    assert ei.value.reason == reason and str(ei.value) == "sflow: " + reason
    assert isinstance(ei.value, ParseError)


def test_lying_lengths_name_where():
    rec = b.raw_header(b.ether(v4_udp(), 0x0800))
    sample = b.flow_sample([rec])
    dg = b.datagram([sample, sample, sample])
    off = len(b.datagram([sample, sample])) + 4  # the third sample's length field
    bad = dg[:off] + struct.pack("!I", 4000000) + dg[off + 4:]
    with pytest.raises(ExportDecodeError, match=r"^sflow: sample 3: length 4000000 exceeds the datagram \(\d+ bytes left\)$"):
        decode_sflow(bad)
    roff = len(b.datagram([])) + 8 + 32 + 4  # the first record's length field
    bad = dg[:roff] + struct.pack("!I", 0xFFFFFFF0) + dg[roff + 4:]
    with pytest.raises(ExportDecodeError, match=r"sample 1: record length 4294967280 exceeds the sample"):
        decode_sflow(bad)
    noff = len(b.datagram([])) + 8 + 28  # the first sample's record count
    bad = dg[:noff] + struct.pack("!I", 0x7FFFFFFF) + dg[noff + 4:]
    with pytest.raises(ExportDecodeError, match=r"sample 1: 2147483647 records cannot fit"):
        decode_sflow(bad)
    hoff = roff + 4 + 12  # the raw header's header length
    bad = dg[:hoff] + struct.pack("!I", 9999) + dg[hoff + 4:]
    with pytest.raises(ExportDecodeError, match=r"sample 1 record 1: header length 9999 exceeds the record"):
        decode_sflow(bad)


# --- mutations of the real datagrams: only the typed error escapes, memory stays bounded ---------------------------

SEEDS = [u.payload for u in REAL + REAL6] + [b.hsflowd_like(4), b.datagram([b.counter_sample(2), b.expanded_sample(
    [b.raw_header(b.ether(b.ipv6("2001:db8::1", "2001:db8::2", 0, ext(17) + b.udp(1, 2)), 0x86DD, (5,)))])],
    agent="2001:db8::9")]
LIES = [0, 1, 3, 4, 7, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x3FFFFFFF, 65535, 1 << 24]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_bytes(SEEDS, LIES))
def test_mutations_only_raise_the_typed_error(data):
    try:
        dg = decode_sflow(data)
    except ExportDecodeError as exc:
        assert "\n" not in str(exc) and exc.reason
        return
    assert len(dg.samples) <= len(data) // 8  # never more samples than the bytes could hold
    assert sum(n for _w, n in dg.skipped) <= len(data) // 8


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_bytes(SEEDS, LIES))
def test_mutations_allocate_no_more_than_the_datagram_warrants(data):
    tracemalloc.start()
    try:
        try:
            decode_sflow(data)
        except ExportDecodeError:
            pass
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 + 200 * len(data)


def test_counts_of_every_real_datagram_add_up():
    kinds = Counter()
    for u in REAL:
        dg = decode_sflow(u.payload)
        kinds["samples"] += len(dg.samples)
        kinds["counters"] += dg.counter_samples
    assert kinds["samples"] >= sum(f.get("packets", 4) for f in META["flows"])


def test_samples_are_whole_frozen_flowsamples():
    # the decoder builds samples through their slots (faster than __init__): every field set, equal to and hashed
    # like the same sample built by the dataclass, still frozen
    import dataclasses

    from anycast_tui.model.samples import FlowSample
    for u in REAL[:3]:
        for s in decode_sflow(u.payload, received=u.time).samples:
            again = FlowSample(**dataclasses.asdict(s))
            assert again == s and hash(again) == hash(s)
            with pytest.raises(dataclasses.FrozenInstanceError):
                s.sport = 1  # type: ignore[misc]
