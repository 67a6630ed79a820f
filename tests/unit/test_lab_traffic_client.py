"""The lab's traffic client without namespaces: real sockets on 127.0.0.0/8 (the lab's client range swapped for
loopback), a local service that answers some flows and leaves others hanging; port choice; the resets listing."""

from __future__ import annotations

import io
import ipaddress
import random
import selectors
import socket
import threading

import pytest

from anycast_tui.lab import traffic

LOOP = ipaddress.ip_network("127.0.0.0/8")


class Service:
    """TCP and UDP on 127.0.0.1: answers "srvA" to flows whose source port is even, never to odd ones;
    logs what it sees in order: ("ask", sport) per question, ("eof", sport) when the client closed."""

    def __init__(self) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.log: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.tcp, selectors.EVENT_READ, "accept")
        sel.register(self.udp, selectors.EVENT_READ, "udp")
        while not self._stop.is_set():
            for key, _ in sel.select(0.05):
                if key.data == "accept":
                    conn, _ = self.tcp.accept()
                    sel.register(conn, selectors.EVENT_READ, "conn")
                elif key.data == "udp":
                    data, addr = self.udp.recvfrom(256)
                    self.log.append(("ask", addr[1]))
                    if addr[1] % 2 == 0:
                        self.udp.sendto(b"srvA\n", addr)
                else:
                    conn = key.fileobj
                    sport = conn.getpeername()[1]
                    data = conn.recv(256)
                    if not data:
                        self.log.append(("eof", sport))
                        sel.unregister(conn)
                        conn.close()
                        continue
                    for _ in range(data.count(b"\n")):
                        self.log.append(("ask", sport))
                        if sport % 2 == 0:
                            conn.sendall(b"srvA\n")
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._t.join()
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def service():
    s = Service()
    yield s
    s.close()


def _flows(proto: int, n: int, first: int) -> list[traffic.LabFlow]:
    return [traffic.LabFlow(proto, "127.0.0.2", first + i) for i in range(n)]


def _free_base(n: int) -> int:
    """A run of ``n`` free source ports on 127.0.0.2 (checked by binding them)."""
    for _ in range(50):
        base = random.randrange(30000, 60000 - n, 2)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.2", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def test_dead_tcp_flows_are_waited_for_together_not_one_after_another(service):
    base = _free_base(8)
    flows = _flows(6, 8, base)  # even source ports answered, odd ones hang
    progress = io.StringIO()
    res = traffic.run_client(flows, 2, dst="127.0.0.1", port=service.port, progress=progress, timeout_s=1.0,
                             client_net=LOOP)
    live = [r for r in res if r.flow.sport % 2 == 0]
    dead = [r for r in res if r.flow.sport % 2 == 1]
    assert all(r.answers == ["srvA", "srvA"] and r.error is None for r in live)
    assert all(r.answers == [None, None] and r.died_round == 0 and "timed out" in (r.error or "") for r in dead)
    # every hanging flow was asked before the client gave up on (closed) any of them: waited for at once
    service.close()
    order = service.log
    first_eof = min(i for i, (what, _) in enumerate(order) if what == "eof")
    assert {sp for what, sp in order[:first_eof] if what == "ask"} >= {r.flow.sport for r in dead}
    lines = progress.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("round 1/2 (") and "4 of 8 flows answered, 4 died, 4 open" in lines[0]
    assert "4 of 8 flows answered, 0 died, 4 open" in lines[1]


def test_udp_without_answer_is_none_and_stays_asked(service):
    base = _free_base(6)
    res = traffic.run_client(_flows(17, 6, base), 3, dst="127.0.0.1", port=service.port, timeout_s=0.3,
                             client_net=LOOP)
    for r in res:
        assert r.error is None
        assert r.answers == (["srvA"] * 3 if r.flow.sport % 2 == 0 else [None] * 3)


def test_refused_connections_fail_at_connect(service):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now: refused
    base = _free_base(3)
    res = traffic.run_client(_flows(6, 3, base), 1, dst="127.0.0.1", port=port, timeout_s=0.3, client_net=LOOP)
    assert all(r.died_round == 0 and r.error.startswith("connect: ConnectionRefusedError") for r in res)


def test_the_lab_range_still_binds_the_client():
    with pytest.raises(ValueError):
        traffic.run_client([traffic.LabFlow(6, "127.0.0.2", 40000)], 1)  # default: 203.0.113.0/24 only


def test_each_run_picks_fresh_bounded_ports_and_sources():
    runs = [traffic.make_flows(30, 20, seed=s) for s in range(20)]
    for flows in runs:
        assert [f.proto for f in flows] == [6] * 30 + [17] * 20
        assert len({(f.src, f.sport) for f in flows}) == 50
        assert all(ipaddress.ip_address(f.src) in traffic.CLIENT_NET for f in flows)
        assert all(traffic.PORTS[0] <= f.sport < traffic.PORTS[1] for f in flows)
        assert [f.sport for f in flows] == list(range(flows[0].sport, flows[0].sport + 50))
    assert len({flows[0].sport for flows in runs}) > 15  # not the same 5-tuples run after run
    assert traffic.make_flows(3, 2, seed=7) == traffic.make_flows(3, 2, seed=7)
    unseeded = {traffic.make_flows(2, 0)[0].sport for _ in range(5)}
    assert len(unseeded) > 1
    big = traffic.make_flows(traffic.MAX_FLOWS, 0)
    assert big[-1].sport < traffic.PORTS[1]
    assert traffic.make_flows(1, 1, first_port=20000)[1].sport == 20001
    with pytest.raises(ValueError):
        traffic.make_flows(1, 1, first_port=traffic.PORTS[1] - 1)


def test_resets_listed_all_or_the_first_and_how_many_more():
    flows = [{"src": "203.0.113.10", "sport": 20000 + i, "died_round": 1, "error": f"ConnectionResetError: {i}"}
             for i in range(25)] + [{"src": "203.0.113.11", "sport": 1, "died_round": None, "error": None}]
    assert len(traffic.reset_lines(flows[:20] + flows[25:])) == 20
    lines = traffic.reset_lines(flows)
    assert lines[0] == "  reset 203.0.113.10:20000 in round 1: ConnectionResetError: 0"
    assert len(lines) == 21 and lines[-1] == "  … and 5 more"
    assert traffic.reset_lines(flows, limit=100)[-1].endswith("ConnectionResetError: 24")
