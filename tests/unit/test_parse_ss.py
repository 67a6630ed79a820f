"""``ss`` output -> Socket records: column forms, addresses, info, continuation lines, errors, mutations."""

from __future__ import annotations

import pytest
from frr_ss_seeds import FUZZ, corpus_seeds, only_parse_errors
from mutations import mutated_text
from hypothesis import given

from anycast_tui.model.types import Flow
from anycast_tui.parse.detect import detect_kind
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.ss import KIND, parse_ss

# ss -Htn state established -e -m -o -i  (no Netid, no State column; tab-indented info lines)
ESTABLISHED = (
    "0      0      192.0.2.53:53 203.0.113.7:40001 timer:(keepalive,119min,0) uid:0 ino:454167 sk:100c "
    "cgroup:/ <->\n"
    "\t skmem:(r0,rb131072,t0,tb3939840,f0,w0,o0,bl0,d0) ts sack bbr wscale:10,10 rto:204 rtt:1.839/3.243 "
    "bbr:(bw:25521229248bps,mrtt:0.013) send 2706166395bps pacing_rate 416204775192bps app_limited minrtt:0.013\n"
    "0      60     [2001:db8::53]:443 [2001:db8:1::7]:50000 users:((\"nginx: worker\",pid=7,fd=12))\n"
)
UDP = """\
State  Recv-Q Send-Q      Local Address:Port  Peer Address:Port Process
UNCONN 0      0       192.0.2.53%anycast:53        0.0.0.0:*
UNCONN 0      0       [fe80::1]%eth0:546              [::]:*
ESTAB  0      0             192.0.2.53:53      203.0.113.9:5353
"""


def test_established_tcp_without_netid_and_state_columns():
    socks = parse_ss(ESTABLISHED, netid="tcp", state="ESTAB")
    assert len(socks) == 2
    a, b = socks
    assert (a.netid, a.state, a.recv_q, a.send_q, a.local, a.local_port, a.peer, a.peer_port) == (
        "tcp", "ESTAB", 0, 0, "192.0.2.53", 53, "203.0.113.7", 40001)
    e = dict(a.extra)
    assert (e["timer"], e["uid"], e["shutdown"], e["rtt"], e["send"], e["pacing_rate"], e["app_limited"]) == (
        "keepalive,119min,0", "0", "<->", "1.839/3.243", "2706166395bps", "416204775192bps", "")
    assert e["skmem"].startswith("r0,rb131072") and e["bbr"] == "bw:25521229248bps,mrtt:0.013"
    assert a.flow() == Flow(6, "203.0.113.7", 40001, "192.0.2.53", 53) and a.family == 4
    assert (b.local, b.peer, b.send_q, b.family) == ("2001:db8::53", "2001:db8:1::7", 60, 6)
    assert ("users", '("nginx: worker",pid=7,fd=12)') in b.extra


def test_header_scopes_and_wildcards():
    socks = parse_ss(UDP, netid="udp")
    assert [(s.local, s.local_dev, s.local_port, s.peer, s.peer_port) for s in socks] == [
        ("192.0.2.53", "anycast", 53, "0.0.0.0", None), ("fe80::1", "eth0", 546, "::", None),
        ("192.0.2.53", None, 53, "203.0.113.9", 5353)]
    assert socks[0].flow() is None and socks[2].flow() == Flow(17, "203.0.113.9", 5353, "192.0.2.53", 53)


def test_netid_column_and_non_ip_sockets():
    text = ("Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
            "u_str ESTAB  0      0      /run/x.sock 1234 * 1233\n"
            "nl    UNCONN 0      0      rtnl:kernel *\n"
            "tcp   LISTEN 0      128    *:ssh *:*\n")
    u, nl, tcp = parse_ss(text)
    assert (u.netid, u.local, u.peer, u.local_port, dict(u.extra)["local_inode"]) == (
        "u_str", "/run/x.sock", "*", None, "1234")
    assert (nl.local, nl.peer, nl.family) == ("rtnl:kernel", "*", None)
    assert (tcp.local, tcp.local_port, ("local_service", "ssh") in tcp.extra) == ("*", None, True)


def test_detection():
    assert detect_kind(ESTABLISHED) == KIND and detect_kind(UDP) == KIND
    assert detect_kind("tcp ESTAB 0 0 192.0.2.53:53 203.0.113.7:40001\n") == KIND


@pytest.mark.parametrize("text, line, reason", [
    ("ESTAB x 0 192.0.2.53:53 203.0.113.7:1\n", 1, "Recv-Q and Send-Q"),
    ("ESTAB 0 0 192.0.2.53:53\n", 1, "local and peer"),
    ("ESTAB 0 0 192.0.2.53:53 203.0.113.7:1\nESTAB 0 0 300.0.0.1:53 203.0.113.7:1\n", 2, "bad local address"),
    ("ESTAB 0 0 192.0.2.53:99999 203.0.113.7:1\n", 1, "out of range"),
    ("ESTAB 0 0 192.0.2.53 203.0.113.7:1\n", 1, "no port"),
    ("ESTAB 0 0 [::1:53 [::1]:1\n", 1, "bad local address"),
    ("ESTAB 0 0 192.0.2.53%:53 203.0.113.7:1\n", 1, "empty scope"),
    ("State Recv-Q Send-Q Local Peer\n\tskmem:(r0)\n", 2, "before any socket"),
    ("u_str ESTAB 0 0 /x 1\n", 1, "path and inode"),
])
def test_errors_carry_the_line(text, line, reason):
    with pytest.raises(ParseError) as info:
        parse_ss(text)
    assert (info.value.line, info.value.kind) == (line, KIND) and reason in info.value.reason


SEEDS = {"established": ESTABLISHED, "udp": UDP, **corpus_seeds("ss-")}


@FUZZ
@given(mutated_text(SEEDS))
def test_mutated_ss_raises_only_parse_error(text):
    only_parse_errors(text)
    try:
        parse_ss(text, netid="tcp", state="ESTAB")
    except ParseError:
        pass
