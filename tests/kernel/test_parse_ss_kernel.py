"""``ss`` on real sockets in a namespace: the parser finds the live flows with the right direction."""

from __future__ import annotations

import subprocess
import sys

import pytest

from anycast_tui.lab import netns as nsx
from anycast_tui.model.types import Flow
from anycast_tui.parse.detect import detect_kind
from anycast_tui.parse.ss import parse_ss

pytestmark = pytest.mark.kernel

# An anycast "server" on 192.0.2.53 with two clients (TCP and connected UDP), held open until stdin closes.
SERVER = """
import socket, sys
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("192.0.2.53", 53)); lst.listen()
c = socket.socket(); c.bind(("203.0.113.7", 40001)); c.connect(("192.0.2.53", 53))
s, _ = lst.accept()
lst6 = socket.socket(socket.AF_INET6); lst6.bind(("2001:db8::53", 53)); lst6.listen()
c6 = socket.socket(socket.AF_INET6); c6.bind(("2001:db8:1::7", 40002)); c6.connect(("2001:db8::53", 53))
s6, _ = lst6.accept()
u_srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u_srv.bind(("192.0.2.53", 53))
u_srv.connect(("203.0.113.8", 5353))
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def server(netns):
    ns = netns.add("s")
    nsx.sysctl(ns, "net.ipv6.conf.all.accept_dad", 0)
    nsx.sysctl(ns, "net.ipv6.conf.default.accept_dad", 0)
    for addr in ("192.0.2.53/32", "203.0.113.7/32", "203.0.113.8/32"):
        nsx.ip(ns, "addr", "add", addr, "dev", "lo")
    for addr in ("2001:db8::53/128", "2001:db8:1::7/128"):
        nsx.ip(ns, "addr", "add", addr, "dev", "lo", "nodad")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield ns
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_established_tcp_flows(server):
    text = nsx.run(server, "ss", "-Htn", "state", "established").stdout
    socks = parse_ss(text, netid="tcp", state="ESTAB")
    flows = {s.flow() for s in socks}
    assert Flow(6, "203.0.113.7", 40001, "192.0.2.53", 53) in flows  # the server's socket: client -> anycast
    assert Flow(6, "192.0.2.53", 53, "203.0.113.7", 40001) in flows  # the client's socket, seen from its end
    assert Flow(6, "2001:db8:1::7", 40002, "2001:db8::53", 53) in flows
    assert len(socks) == 4


def test_extended_output_and_detection(server):
    text = nsx.run(server, "ss", "-tnaemoi").stdout
    assert detect_kind(text) == "ss"
    socks = parse_ss(text)
    listener = [s for s in socks if s.state == "LISTEN" and s.local == "192.0.2.53"]
    assert len(listener) == 1 and listener[0].local_port == 53 and listener[0].peer_port is None
    estab = [s for s in socks if s.state == "ESTAB"]
    assert len(estab) == 4 and all("rtt" in dict(s.extra) and "ino" in dict(s.extra) for s in estab)


def test_udp_connected_socket(server):
    socks = parse_ss(nsx.run(server, "ss", "-Hun", "-a").stdout, netid="udp")
    assert [s.flow() for s in socks if s.state == "ESTAB"] == [Flow(17, "203.0.113.8", 5353, "192.0.2.53", 53)]
