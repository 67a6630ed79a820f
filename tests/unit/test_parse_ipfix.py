"""IPFIX / NetFlow v9 decoding: real pmacct nfprobe messages against the flows sent through the router,
hand-built messages (RFC 7011 / RFC 3954) for templates per domain, withdrawals, data before its template and
the records ``netflow`` cannot take, and mutations of the real messages."""

from __future__ import annotations

import ipaddress
import json
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycast_tui.model.samples import ExportKind
from byte_mutations import mutated_bytes
from anycast_tui.parse.errors import ExportDecodeError
from anycast_tui.parse.ipfix import ExportDecoder
from anycast_tui.parse.pcap import iter_udp

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "export"
META = json.loads((FIX / "sent.json").read_text())
REAL = {"ipfix": [u for u in iter_udp(FIX / "ipfix.pcap")], "netflow9": [u for u in iter_udp(FIX / "netflow9.pcap")]}
EXPORTER = "198.18.0.1"


def text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


# --- the real exporter ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, domain", [("ipfix", META["ipfix_domain"]), ("netflow9", META["netflow9_source_id"])])
def test_real_nfprobe_records_are_the_flows_sent(kind, domain):
    dec = ExportDecoder()
    got: dict[tuple, list] = {}
    for u in REAL[kind]:
        assert u.src == EXPORTER
        dg = dec.decode(u.payload, u.src, u.time)
        assert dg.kind is ExportKind(kind) and dg.sub_agent == domain and dg.skipped == ()
        for s in dg.samples:
            assert (s.exporter, s.source_id, s.received) == (EXPORTER, domain, u.time)
            got.setdefault((s.proto, text(s.src), s.sport, text(s.dst), s.dport), []).append(s)
    r1 = META["router_ifindex"]["r1"]
    for f in META["flows"]:
        recs = got[(f["proto"], f["src"], f["sport"], f["dst"], f["dport"])]
        assert {s.output_if for s in recs} == {r1}  # nfprobe_ifindex: r1's ifIndex, out
        assert {s.sampling_rate for s in recs} == {1}  # from the options data record (samplerRandomInterval)
        assert {s.family for s in recs} == {6 if ":" in f["src"] else 4}
        if f["proto"] == 17:
            ip = 40 if ":" in f["src"] else 20
            assert sum(s.packets for s in recs) == f["packets"]
            assert sum(s.octets for s in recs) == f["packets"] * (ip + 8 + 20 + f["sport"] % 100)
        else:
            flags = 0
            for s in recs:
                flags |= s.tcp_flags
            assert flags & 0x13 == 0x13  # SYN, ACK and FIN over the connection
            assert sum(s.packets for s in recs) >= 4


@pytest.mark.parametrize("kind", ["ipfix", "netflow9"])
def test_data_before_its_template_is_counted_not_an_error(kind):
    dec = ExportDecoder()
    later = REAL[kind][-1]  # data sets only
    dg = dec.decode(later.payload, later.src)
    assert dg.samples == () and dict(dg.skipped)["no template yet"] >= 1
    dec.decode(REAL[kind][0].payload, EXPORTER)  # templates (and options) arrive
    assert dec.decode(later.payload, later.src).samples


def test_templates_are_per_exporter_and_domain():
    dec = ExportDecoder()
    first = REAL["ipfix"][0].payload
    dec.decode(first, EXPORTER)
    data = REAL["ipfix"][-1].payload
    assert dec.decode(data, EXPORTER).samples
    assert dict(dec.decode(data, "198.18.0.99").skipped)["no template yet"] >= 1  # another exporter
    other_domain = data[:12] + struct.pack("!I", 7) + data[16:]
    assert dict(dec.decode(other_domain, EXPORTER).skipped)["no template yet"] >= 1


# --- hand-built messages -----------------------------------------------------------------------------------------

def ipfix_msg(sets: list[bytes], *, domain: int = 1, seq: int = 0) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), 1_700_000_000, seq, domain) + body


def ipfix_set(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def template(tid: int, fields: list[tuple[int, int]]) -> bytes:
    return struct.pack("!HH", tid, len(fields)) + b"".join(struct.pack("!HH", i, n) for i, n in fields)


V4_FIELDS = [(8, 4), (12, 4), (4, 1), (7, 2), (11, 2), (10, 4), (14, 4), (2, 8), (1, 8), (34, 4), (15, 4)]


def v4_record(src="203.0.113.7", dst="192.0.2.53", proto=6, sport=40000, dport=443, i=2, o=5, pk=3, oc=180,
              rate=100, nh="198.18.1.2") -> bytes:
    return struct.pack("!4s4sBHHIIQQI4s", ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed, proto,
                       sport, dport, i, o, pk, oc, rate, ipaddress.ip_address(nh).packed)


def test_hand_built_ipfix_record_fields():
    dec = ExportDecoder()
    dg = dec.decode(ipfix_msg([ipfix_set(2, template(256, V4_FIELDS)), ipfix_set(256, v4_record() + v4_record(o=0))],
                              domain=42, seq=17), "192.0.2.1", 5.0)
    a, b_ = dg.samples
    assert (a.proto, text(a.src), a.sport, text(a.dst), a.dport) == (6, "203.0.113.7", 40000, "192.0.2.53", 443)
    assert (a.input_if, a.output_if, a.packets, a.octets, a.sampling_rate) == (2, 5, 3, 180, 100)
    assert (a.estimated_packets, text(a.nexthop), a.source_id, a.received) == (300, "198.18.1.2", 42, 5.0)
    assert b_.output_if is None  # egressInterface 0: not known
    assert dg.sample_seqs == ((42, 17, 2),) and dg.sequence == 17


def test_ipv6_record_flow_label_and_tcp_flags():
    fields = [(27, 16), (28, 16), (4, 1), (7, 2), (11, 2), (31, 4), (6, 2)]
    rec = struct.pack("!16s16sBHHIH", ipaddress.ip_address("2001:db8::1").packed,
                      ipaddress.ip_address("2001:db8::53").packed, 17, 5000, 53, 0xABCDE, 0)
    s = ExportDecoder().decode(ipfix_msg([ipfix_set(2, template(300, fields)), ipfix_set(300, rec)]), "x").samples[0]
    assert (s.family, text(s.src), s.flowlabel, s.sport, s.dport, s.sampling_rate) == (6, "2001:db8::1", 0xABCDE, 5000, 53, 0)


def test_template_withdrawal_and_same_id_in_two_domains():
    dec = ExportDecoder()
    dec.decode(ipfix_msg([ipfix_set(2, template(256, V4_FIELDS))], domain=1), "x")
    dec.decode(ipfix_msg([ipfix_set(2, template(256, [(8, 4), (12, 4)]))], domain=2), "x")
    small = struct.pack("!4s4s", b"\xc0\0\x02\x01", b"\xc0\0\x02\x02")
    assert len(dec.decode(ipfix_msg([ipfix_set(256, v4_record())], domain=1), "x").samples) == 1
    s = dec.decode(ipfix_msg([ipfix_set(256, small)], domain=2), "x").samples[0]
    assert (text(s.src), s.proto, s.sport) == ("192.0.2.1", 0, 0)
    dec.decode(ipfix_msg([ipfix_set(2, struct.pack("!HH", 256, 0))], domain=1), "x")  # withdrawn
    assert dict(dec.decode(ipfix_msg([ipfix_set(256, v4_record())], domain=1), "x").skipped) == {"no template yet": 1}


@pytest.mark.parametrize("fields, why", [
    ([(8, 4), (12, 4), (82, 65535)], "variable-length field (netflow cannot decode it)"),
    ([(8, 4), (12, 4), (0x8000 | 1, 4)], "enterprise-specific field (netflow cannot decode it)"),
    ([(8, 4), (12, 4), (1, 3)], "3-byte unsigned64 field (netflow cannot decode it)"),
    ([(8, 0), (12, 0)], "0-byte address field"),
])
def test_templates_netflow_cannot_take_are_skipped_with_the_reason(fields, why):
    tpl = struct.pack("!HH", 400, len(fields)) + b"".join(
        struct.pack("!HHI", i, n, 9) if i & 0x8000 else struct.pack("!HH", i, n) for i, n in fields)
    dg = ExportDecoder().decode(ipfix_msg([ipfix_set(2, tpl), ipfix_set(400, b"\1" * 16)]), "x")
    assert dg.samples == () and dict(dg.skipped) == {f"template 400: {why}": 1}


def v9_msg(flowsets: list[bytes], *, source_id: int = 9, seq: int = 1) -> bytes:
    return struct.pack("!HHIIII", 9, len(flowsets), 1000, 1_700_000_000, seq, source_id) + b"".join(flowsets)


def test_v9_guards_empty_records_and_odd_address_lengths(capsys):
    dec = ExportDecoder()
    # a template whose records are 0 bytes long would make netflow loop for ever on its data
    dg = dec.decode(v9_msg([ipfix_set(0, template(256, [])), ipfix_set(256, b"\0" * 8)]), "x")
    assert dict(dg.skipped) == {"template 256: template of empty records": 1}
    # a 5-byte IPv4 address: netflow would print to stdout and drop it
    dg = dec.decode(v9_msg([ipfix_set(0, template(257, [(8, 5), (12, 4)])), ipfix_set(257, b"\1" * 9 + b"\0" * 3)]), "x")
    assert dict(dg.skipped) == {"template 257: 5-byte address field": 1}
    assert capsys.readouterr().out == ""
    dg = dec.decode(v9_msg([ipfix_set(0, template(258, [(7, 2)])), ipfix_set(258, b"\0\1\0\2")]), "x")
    assert dict(dg.skipped) == {"template 258: records under 4 bytes (netflow drops the last of them)": 1}


def test_v9_sampling_interval_from_options():
    opt = struct.pack("!HHH", 260, 4, 8) + struct.pack("!HH", 1, 4) + struct.pack("!HHHH", 48, 1, 34, 4)
    opt_data = struct.pack("!IBI", 0, 3, 512) + b"\0" * 3
    data_tpl = template(261, [(8, 4), (12, 4), (48, 1)])
    rec = struct.pack("!4s4sB", b"\xcb\0\x71\x01", b"\xc0\0\x02\x35", 3) + b"\0" * 3
    dg = ExportDecoder().decode(v9_msg([ipfix_set(1, opt), ipfix_set(260, opt_data), ipfix_set(0, data_tpl),
                                        ipfix_set(261, rec)]), "x")
    assert [s.sampling_rate for s in dg.samples] == [512]


@pytest.mark.parametrize("msg, reason", [
    (ipfix_msg([ipfix_set(2, template(256, V4_FIELDS))])[:-1] + b"", "message length"),
    (ipfix_msg([struct.pack("!HH", 256, 0)]), "set 1: length 0 does not fit the message (4 bytes left)"),
    (ipfix_msg([struct.pack("!HH", 256, 400) + b"\0" * 4]), "set 1: length 400 does not fit the message (8 bytes left)"),
    (b"\0\x05" + b"\0" * 30, "not IPFIX (10) or NetFlow v9 (version 5)"),
    (b"\0\x0a\0\0", "message of 4 bytes is shorter than the IPFIX header (16)"),
])
def test_bad_messages_one_line_reasons(msg, reason):
    with pytest.raises(ExportDecodeError) as ei:
        ExportDecoder().decode(msg, "x")
    assert reason in ei.value.reason and "\n" not in str(ei.value)


def test_bounded_templates_and_domains():
    dec = ExportDecoder(max_templates=4, max_domains=3)
    dec.decode(ipfix_msg([ipfix_set(2, b"".join(template(256 + i, V4_FIELDS) for i in range(10)))]), "x")
    assert dict(dec.decode(ipfix_msg([ipfix_set(256, v4_record())]), "x").skipped) == {"no template yet": 1}
    assert len(dec.decode(ipfix_msg([ipfix_set(265, v4_record())]), "x").samples) == 1
    for d in range(10):
        dec.decode(ipfix_msg([], domain=100 + d), "x")
    assert dec.domains == 3 and dec.evicted >= 6 + 8


def test_library_exceptions_become_the_typed_error():
    # a data set shorter than one record of its template but longer than its padding: netflow raises struct.error
    dec = ExportDecoder()
    dec.decode(ipfix_msg([ipfix_set(2, template(256, V4_FIELDS))]), "x")
    with pytest.raises(ExportDecodeError) as ei:
        dec.decode(ipfix_msg([ipfix_set(256, b"\1" * 20)]), "x")
    assert ei.value.reason.startswith("set 1 (id 256): ")


# --- mutations of the real messages ------------------------------------------------------------------------------

SEEDS = [u.payload for k in REAL for u in REAL[k]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_bytes(SEEDS, [0, 1, 3, 4, 5, 255, 256, 0x8000, 65535], fmt="!H", splice=False),
                min_size=1, max_size=4))
def test_mutations_only_raise_the_typed_error(datagrams):
    dec = ExportDecoder()
    for k in REAL:
        dec.decode(REAL[k][0].payload, EXPORTER)  # the real templates known
    tracemalloc.start()
    try:
        for data in datagrams:
            try:
                dec.decode(data, EXPORTER)
            except ExportDecodeError as exc:
                assert exc.reason and "\n" not in str(exc)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


def test_sampler_intervals_are_bounded_per_domain():
    opt = template(500, [(48, 2), (50, 4)])
    opt = struct.pack("!HHH", 500, 2, 1) + opt[4:]  # an options template: samplerId (scope), interval
    dec = ExportDecoder()
    recs = b"".join(struct.pack("!HI", i, 10 + i) for i in range(1000))
    dec.decode(ipfix_msg([ipfix_set(3, opt), ipfix_set(500, recs)]), "x")
    sampling = dec.sampler_intervals("x", 1)
    assert len(sampling) <= 256 and sampling[999] == 1009
