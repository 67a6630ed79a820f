"""Live flows you can trust, on real sockets in a namespace: a connection that keeps talking is a live flow, one
that went quiet beyond the window is a leftover, counted apart; with conntrack, UDP streams are seen too.

The "server" (192.0.2.53) and its clients (203.0.113.7: active, every 0.5 s; 203.0.113.8: idle after its
first exchanges) live in one namespace, on ``lo``.  The test reads the poll's own flow command lines
(FLOW_COMMANDS) until the idle flows have been quiet for longer than LIVE_WINDOW_S, as the kernel reports
it, and hands those outputs to the collector's flow builder.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from anycast_tui.collect.commands import FLOW_COMMANDS
from anycast_tui.collect.flows import CT_TIMEOUT_S, LIVE_WINDOW_S, flows_from_outputs
from anycast_tui.lab import netns as nsx
from anycast_tui.model.types import Flow
from anycast_tui.parse.conntrack import parse_conntrack
from anycast_tui.parse.ss import parse_ss

from nsdevice import python_in

pytestmark = pytest.mark.kernel

ANY = "192.0.2.53"
TCP_ACTIVE, TCP_IDLE = Flow(6, "203.0.113.7", 40001, ANY, 8053), Flow(6, "203.0.113.8", 40002, ANY, 8053)
UDP_ACTIVE, UDP_IDLE = Flow(17, "203.0.113.7", 40003, ANY, 8053), Flow(17, "203.0.113.8", 40004, ANY, 8053)
COMMANDS = {c.id: c for cs in FLOW_COMMANDS.values() for c in cs}
WAIT_BOUND_S = 120.0  # bound on waiting for the kernel to report the idle flows quiet (not an assertion)

# TCP: one connection asked every 0.5 s, one asked once.  UDP to an unconnected server socket (as DNS
# servers and the lab's service answer): one client every 0.5 s, one asked twice 2.5 s apart (a stream,
# so conntrack marks it ASSURED: a reply seen and traffic 2 s after the first packet) and quiet since.
HELPER = """
import socket, sys, threading, time
ANY = ("192.0.2.53", 8053)
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); lst.bind(ANY); lst.listen()
usrv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); usrv.bind(ANY)
def udp_server():
    while True:
        data, peer = usrv.recvfrom(64)
        usrv.sendto(b"srv", peer)
threading.Thread(target=udp_server, daemon=True).start()
def tcp(src, port):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind((src, port)); c.connect(ANY); s, _ = lst.accept(); return c, s
def udp(src, port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((src, port)); u.settimeout(5); return u
def ask(pair):
    c, s = pair
    c.sendall(b"?"); s.recv(8); s.sendall(b"!"); c.recv(8)
def uask(u):
    u.sendto(b"?", ANY); u.recv(8)
active, idle = tcp("203.0.113.7", 40001), tcp("203.0.113.8", 40002)
uactive, uidle = udp("203.0.113.7", 40003), udp("203.0.113.8", 40004)
ask(idle); uask(uidle)
t0 = time.monotonic()
while time.monotonic() - t0 < 2.5:
    ask(active); uask(uactive); time.sleep(0.5)
uask(uidle)
def keep_talking():
    while True:
        ask(active); uask(uactive); time.sleep(0.5)
threading.Thread(target=keep_talking, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def _tools_for_conntrack() -> str | None:
    missing = [t for t in ("conntrack", "nft") if shutil.which(t) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


@pytest.fixture
def server(netns, request):
    ct = getattr(request, "param", False)
    why = _tools_for_conntrack() if ct else None
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"conntrack test cannot run in CI: {why}")
        pytest.skip(why)
    ns = netns.add("s")
    nsx.ip(ns, "link", "set", "lo", "up")
    for addr in ("192.0.2.53/32", "203.0.113.7/32", "203.0.113.8/32"):
        nsx.ip(ns, "addr", "add", addr, "dev", "lo")
    if ct:
        # conntrack tracks a namespace only once a rule there needs it: one ct match does
        nsx.run(ns, "nft", "add", "table", "inet", "atui")
        nsx.run(ns, "nft", "add", "chain", "inet", "atui", "inp", "{ type filter hook input priority 0; }")
        nsx.run(ns, "nft", "add", "rule", "inet", "atui", "inp", "ct", "state", "established", "counter")
    with python_in(ns, HELPER):
        yield ns


def _run(ns: str, cid: str) -> str:
    return nsx.run(ns, *COMMANDS[cid].argv).stdout


def _idle_tcp_quiet(ss_text: str) -> bool:
    """The kernel says the idle connection's server end heard nothing (data or ACK) for longer than the window."""
    for s in parse_ss(ss_text, netid="tcp", state="ESTAB"):
        if s.flow() == TCP_IDLE:
            extra = dict(s.extra)
            return min(int(extra.get("lastrcv", 0)), int(extra.get("lastack", 0))) > LIVE_WINDOW_S * 1000
    raise AssertionError(f"the idle connection's server socket is missing from ss:\n{ss_text}")


def _idle_ct_quiet(ct_text: str) -> bool:
    """conntrack's timeouts of the idle flows are more than the window below the protocol's (a packet resets it)."""
    left = {e.flow(): (e.timeout, e.proto) for e in parse_conntrack(ct_text)}
    if TCP_IDLE not in left or UDP_IDLE not in left:
        return False
    return all(t is not None and CT_TIMEOUT_S[p] - t > LIVE_WINDOW_S + 1 for t, p in (left[TCP_IDLE], left[UDP_IDLE]))


def _wait(ns: str, ids: tuple[str, ...], quiet) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_BOUND_S
    while True:
        outputs = {cid: _run(ns, cid) for cid in ids}
        if quiet(outputs):
            return outputs
        if time.monotonic() > deadline:
            raise AssertionError(f"the idle flows never went quiet: {outputs}")
        time.sleep(0.5)


def test_active_connection_counts_idle_one_is_a_leftover(server):
    outputs = _wait(server, ("flows_tcp", "flows_udp"), lambda o: _idle_tcp_quiet(o["flows_tcp"]))
    read = flows_from_outputs(outputs, (f"{ANY}/32",))
    assert read.flows == (TCP_ACTIVE,)  # the client ends (to 203.0.113.x) are not anycast flows
    assert read.stale == 1  # the idle connection's server socket, still ESTABLISHED
    assert read.udp_known is False  # UDP to an unconnected server socket: ss shows no flow, unknown
    if shutil.which("conntrack") is not None:
        # no rule in this namespace needs conntrack: the kernel tracks nothing, conntrack answers an empty
        # table, and that is not "no UDP flow"
        with_ct = dict(outputs, flows_ct=_run(server, "flows_ct"))
        assert with_ct["flows_ct"].strip() == ""
        assert flows_from_outputs(with_ct, (f"{ANY}/32",)).udp_known is False


@pytest.mark.parametrize("server", [True], indirect=True, ids=["conntrack"])
def test_conntrack_sees_alive_udp_streams_and_leftovers(server):
    outputs = _wait(server, ("flows_tcp", "flows_udp", "flows_ct"),
                    lambda o: _idle_tcp_quiet(o["flows_tcp"]) and _idle_ct_quiet(o["flows_ct"]))
    assert {e.flow(): "ASSURED" in e.flags for e in parse_conntrack(outputs["flows_ct"])}[UDP_IDLE]
    read = flows_from_outputs(outputs, (f"{ANY}/32",))
    assert set(read.flows) == {TCP_ACTIVE, UDP_ACTIVE}
    assert read.stale == 2  # the idle TCP connection (socket and entry: one flow) and the quiet UDP stream
    assert read.udp_known is True
    without = flows_from_outputs({k: v for k, v in outputs.items() if k != "flows_ct"}, (f"{ANY}/32",))
    assert without.flows == (TCP_ACTIVE,) and without.stale == 1 and without.udp_known is False
