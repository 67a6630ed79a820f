"""``conntrack -L`` -> ConntrackEntry records: directions, flags, families, errors, mutations."""

from __future__ import annotations

import pytest
from frr_ss_seeds import FUZZ, corpus_seeds, only_parse_errors
from mutations import mutated_text
from hypothesis import given

from anycast_tui.model.types import Flow
from anycast_tui.parse.conntrack import KIND, parse_conntrack
from anycast_tui.parse.detect import detect_kind
from anycast_tui.parse.errors import ParseError

TABLE = """\
tcp      6 431999 ESTABLISHED src=203.0.113.7 dst=192.0.2.53 sport=40001 dport=53 packets=3 bytes=180 src=192.0.2.53 dst=203.0.113.7 sport=53 dport=40001 packets=2 bytes=120 [ASSURED] mark=7 zone=3 use=1
udp      17 29 src=2001:db8:1::7 dst=2001:db8::53 sport=5353 dport=53 [UNREPLIED] src=2001:db8::53 dst=2001:db8:1::7 sport=53 dport=5353 mark=0 use=1 id=12345
icmp     1 29 src=203.0.113.7 dst=192.0.2.53 type=8 code=0 id=41 src=192.0.2.53 dst=203.0.113.7 type=0 code=0 id=41 mark=0 use=1
ipv4     2 tcp      6 117 TIME_WAIT src=203.0.113.8 dst=192.0.2.53 sport=40002 dport=443 src=192.0.2.53 dst=203.0.113.8 sport=443 dport=40002 [ASSURED] mark=0 zone=0 use=2
unknown  112 599 src=198.18.0.1 dst=224.0.0.18 [UNREPLIED] src=224.0.0.18 dst=198.18.0.1 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.
"""


def test_entries():
    tcp, udp, icmp, ext, vrrp = parse_conntrack(TABLE)
    assert (tcp.proto, tcp.proto_num, tcp.timeout, tcp.state, tcp.family) == ("tcp", 6, 431999, "ESTABLISHED", 4)
    assert (tcp.src, tcp.dst, tcp.sport, tcp.dport) == ("203.0.113.7", "192.0.2.53", 40001, 53)
    assert (tcp.reply_src, tcp.reply_dst, tcp.reply_sport, tcp.reply_dport) == ("192.0.2.53", "203.0.113.7", 53,
                                                                                40001)
    assert (tcp.flags, tcp.mark, tcp.zone) == (("ASSURED",), 7, 3)
    assert tcp.extra == (("orig_packets", "3"), ("orig_bytes", "180"), ("reply_packets", "2"),
                         ("reply_bytes", "120"), ("use", "1"))
    assert tcp.flow() == Flow(6, "203.0.113.7", 40001, "192.0.2.53", 53)
    assert (udp.family, udp.state, udp.flags, udp.src) == (6, None, ("UNREPLIED",), "2001:db8:1::7")
    assert ("id", "12345") in udp.extra
    assert icmp.flow() is None and ("orig_type", "8") in icmp.extra and ("reply_id", "41") in icmp.extra
    assert (ext.family, ext.state, ext.zone, ext.dport) == (4, "TIME_WAIT", 0, 443)
    assert (vrrp.proto, vrrp.proto_num, vrrp.reply_src) == ("112", 112, "224.0.0.18")


def test_detection_and_events():
    assert detect_kind(TABLE) == KIND
    (e,) = parse_conntrack(" [DESTROY] tcp 6 src=203.0.113.7 dst=192.0.2.53 sport=1 dport=2 src=192.0.2.53 "
                           "dst=203.0.113.7 sport=2 dport=1 [ASSURED]\n")
    assert (e.timeout, e.state, ("event", "DESTROY") in e.extra) == (None, None, True)


@pytest.mark.parametrize("text, line, reason", [
    ("src=1.2.3.4 dst=1.2.3.5\n", 1, "protocol name and number"),
    ("tcp 6 10 ESTABLISHED sport=1 dport=2\n", 1, "missing src="),
    ("tcp 6 10 ESTABLISHED src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2\ntcp 6 10 X src=1.2.3.4 dst=nope\n", 2,
     "not an address"),
    ("tcp 6 10 ESTABLISHED src=1.2.3.4 dst=2001:db8::1 sport=1 dport=2\n", 1, "is not IPv4"),
    ("tcp 6 10 ESTABLISHED src=1.2.3.4 dst=1.2.3.5 sport=70000 dport=2\n", 1, "bad sport"),
    ("tcp 6 10 ESTABLISHED src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 mark=x\n", 1, "bad mark"),
    ("tcp 6 10 ESTABLISHED src=1.2.3.4 dst=1.2.3.5 sport=1 dport=2 stray\n", 1, "unexpected word"),
])
def test_errors_carry_the_line(text, line, reason):
    with pytest.raises(ParseError) as info:
        parse_conntrack(text)
    assert (info.value.line, info.value.kind) == (line, KIND) and reason in info.value.reason


SEEDS = {"table": TABLE, **corpus_seeds("conntrack-")}


@FUZZ
@given(mutated_text(SEEDS))
def test_mutated_conntrack_raises_only_parse_error(text):
    only_parse_errors(text)
