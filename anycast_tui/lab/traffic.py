"""Real TCP and UDP flows to the lab's anycast address, and the service that answers them.

``serve`` runs inside each server namespace: on 192.0.2.53:PORT (TCP and UDP) it
answers every line / datagram with the server's name.  ``run_client`` runs
inside the client namespace: it opens the given flows (fixed source address and
port each, so each is one 5-tuple; ``make_flows`` picks fresh ports each run),
asks every flow ``rounds`` times, all at once, and reports per flow which
server answered each round, and when a TCP connection died (a line per round
on stderr meanwhile).  Everything is bounded (flow count, rounds, timeouts); only lab addresses.

Run as ``python3 -m anycast_tui.lab.traffic serve NAME``, ``... nohash IF..``
(see below) or ``... client`` (flows as JSON on one stdin line; ``ready N`` on
stdout after round N, and a line on stdin before each further round; the
report is one JSON object on stdout).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import random
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, TextIO

from anycast_tui.lab.nslab import ANYCAST

PORT = 8053
MAX_FLOWS = 4096
TIMEOUT_S = 1.0
CLIENT_NET = ipaddress.ip_network("203.0.113.0/24")


@dataclass(frozen=True, slots=True)
class LabFlow:
    proto: int  # 6 or 17
    src: str
    sport: int


PORTS = (20000, 60000)  # source ports of the lab's flows: [low, high)


def make_flows(tcp: int, udp: int, *, first_port: int | None = None, seed: int | None = None) -> list[LabFlow]:
    """``tcp`` then ``udp`` flows, sources 203.0.113.10..209 in turn, source ports ``first_port``, +1, ...

    Without ``first_port`` each run picks its own range at random (seeded by the time, or ``seed``) within
    ``PORTS``, and its own first source: the 5-tuples of the last run (TCP ones maybe in TIME_WAIT) are
    not reused."""
    n = tcp + udp
    if n > MAX_FLOWS or tcp < 0 or udp < 0:
        raise ValueError(f"0..{MAX_FLOWS} flows")
    rng = random.Random(time.time_ns() if seed is None else seed)
    if first_port is None:
        first_port = rng.randrange(PORTS[0], PORTS[1] - n + 1)
    if not (PORTS[0] <= first_port and first_port + n <= PORTS[1]):
        raise ValueError(f"source ports {first_port}..{first_port + n - 1}: outside {PORTS[0]}..{PORTS[1] - 1}")
    first_src = rng.randrange(200)
    return [LabFlow(6 if i < tcp else 17, f"203.0.113.{10 + (first_src + i) % 200}", first_port + i)
            for i in range(n)]


@dataclass
class FlowResult:
    flow: LabFlow
    answers: list[str | None] = field(default_factory=list)  # server per round (None: no answer)
    error: str | None = None  # TCP: why the connection died
    died_round: int | None = None


# --------------------------------------------------------------------------- wire realism

# Locally generated TCP (and connected UDP) carries the socket's random txhash
# (skb->l4_hash) across a veth, and policy 1 then uses it instead of the seeded
# 5-tuple hash.  A real wire carries no such hash, so the client's egress runs a
# three-instruction tc BPF program: bpf_set_hash_invalid(skb); return TC_ACT_OK.
_BPF_CLEAR_HASH = bytes([
    0x85, 0x00, 0x00, 0x00, 41, 0, 0, 0,  # call bpf_set_hash_invalid (helper 41)
    0xB7, 0x00, 0x00, 0x00, 0, 0, 0, 0,  # r0 = 0 (TC_ACT_OK)
    0x95, 0x00, 0x00, 0x00, 0, 0, 0, 0,  # exit
])


def _bpf_load_clear_hash() -> int:
    """Load the program (BPF_PROG_TYPE_SCHED_CLS) and return its fd."""
    import ctypes
    import os
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(_BPF_CLEAR_HASH, len(_BPF_CLEAR_HASH))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = bytearray(128)  # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license
    struct.pack_into("=IIQQ", attr, 0, 3, len(_BPF_CLEAR_HASH) // 8, ctypes.addressof(insns), ctypes.addressof(lic))
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    fd = libc.syscall(321, 5, buf, len(attr))  # SYS_bpf (x86_64), BPF_PROG_LOAD
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_PROG_LOAD: {os.strerror(err)}")
    return int(fd)


def clear_hash_on_egress(ifnames: Iterable[str]) -> None:
    """Attach the hash-clearing program to each interface's egress (current namespace)."""
    from pyroute2 import IPRoute

    fd = _bpf_load_clear_hash()
    with IPRoute() as ipr:
        for name in ifnames:
            idx = ipr.link_lookup(ifname=name)[0]
            try:
                ipr.tc("add", "clsact", idx)
            except Exception:  # noqa: BLE001 - pyroute2 raises NetlinkError(EEXIST) when it is already there
                pass
            ipr.tc("add-filter", "bpf", idx, ":1", fd=fd, name="atui-nohash", parent="ffff:fff3",
                   classid=1, direct_action=True)


# --------------------------------------------------------------------------- server


def serve(name: str, port: int = PORT, host: str = ANYCAST) -> None:
    """Answer TCP lines and UDP datagrams with ``name`` until killed."""
    import asyncio

    reply = (name + "\n").encode()

    async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    class Udp(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.t.sendto(reply, addr)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await asyncio.start_server(on_tcp, host, port, reuse_address=True)
        await loop.create_datagram_endpoint(Udp, local_addr=(host, port))
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- client


def _check(flow: LabFlow, net: ipaddress.IPv4Network = CLIENT_NET) -> None:
    if ipaddress.ip_address(flow.src) not in net or not 1024 <= flow.sport <= 65535:
        raise ValueError(f"flow outside the lab's client range: {flow}")
    if flow.proto not in (6, 17):
        raise ValueError(f"protocol {flow.proto} (only 6, 17)")


class _Conn:
    """One flow's socket, non-blocking: the client waits on all of them at once (``_wait``)."""

    def __init__(self, flow: LabFlow, dst: str, port: int):
        self.flow = flow
        typ = socket.SOCK_STREAM if flow.proto == 6 else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, typ)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.setblocking(False)
            self.sock.bind((flow.src, flow.sport))
        except OSError:
            self.sock.close()
            raise
        self.dst = (dst, port)
        self.buf = b""

    def start_connect(self) -> bool:
        """TCP: begin the handshake (True: still under way).  UDP stays unconnected: no socket txhash (see above)."""
        if self.flow.proto != 6:
            return False
        err = self.sock.connect_ex(self.dst)
        if err in (errno.EINPROGRESS, errno.EALREADY):
            return True
        if err:
            raise OSError(err, os.strerror(err))
        return False

    def connected(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))

    def send(self) -> None:
        if self.flow.proto == 17:
            self.sock.sendto(b"?", self.dst)
        else:
            self.sock.sendall(b"?\n")  # 2 bytes into an empty send buffer: never partial

    def receive(self) -> str | None:
        """The answer when it is complete (None: not yet); OSError when the connection died."""
        if self.flow.proto == 17:
            return self.sock.recv(256).decode(errors="replace").strip()
        chunk = self.sock.recv(256)
        if not chunk:
            raise ConnectionResetError("connection closed by peer")
        self.buf += chunk
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").strip()


def _died(exc: OSError) -> str:
    return type(exc).__name__ + ": " + (str(exc) or "timed out")


def _wait(conns: dict[int, _Conn], event: int, step: Callable[[int, _Conn], bool], timeout_s: float) -> dict[int, str]:
    """Wait on every flow of ``conns`` at once, at most ``timeout_s`` in all: ``step(i, conn)`` on each that is
    ready (True: done with it).  The flows not done in time, or whose ``step`` raised, with why."""
    failed: dict[int, str] = {}
    left = dict(conns)
    with selectors.DefaultSelector() as sel:
        for i, c in left.items():
            sel.register(c.sock, event, i)
        deadline = time.monotonic() + timeout_s
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            for key, _ in sel.select(wait):
                i = key.data
                try:
                    done = step(i, left[i])
                except OSError as exc:
                    failed[i], done = _died(exc), True
                if done:
                    sel.unregister(key.fileobj)
                    del left[i]
    failed.update({i: _died(TimeoutError("timed out")) for i in left})
    return failed


def run_client(flows: Iterable[LabFlow], rounds: int, *, dst: str = ANYCAST, port: int = PORT,
               ready: TextIO | None = None, go: TextIO | None = None, progress: TextIO | None = None,
               timeout_s: float = TIMEOUT_S, client_net: ipaddress.IPv4Network = CLIENT_NET) -> list[FlowResult]:
    """Open every flow, ask each ``rounds`` times; between rounds wait for a line on ``go``.

    All flows are asked at once and answered as they come, so a round lasts at most ``timeout_s``
    however many flows are dead (a TCP flow without an answer in time died; a UDP one just got none);
    the connections are made the same way.  One line per round on ``progress``."""
    flows = list(flows)
    if len(flows) > MAX_FLOWS or not 1 <= rounds <= 100:
        raise ValueError("too many flows or rounds")
    for f in flows:
        _check(f, client_net)
    results = [FlowResult(f) for f in flows]
    conns: dict[int, _Conn] = {}

    def kill(i: int, why: str, rnd: int) -> None:
        r = results[i]
        r.error, r.died_round = why, rnd
        c = conns.pop(i, None)
        if c is not None:
            c.sock.close()

    connecting = {}
    for i, r in enumerate(results):
        try:
            conns[i] = c = _Conn(r.flow, dst, port)
            if c.start_connect():
                connecting[i] = c
        except OSError as exc:
            kill(i, f"connect: {exc}", 0)
    for i, why in _wait(connecting, selectors.EVENT_WRITE, lambda i, c: c.connected() is None, timeout_s).items():
        kill(i, f"connect: {why}", 0)
    t0 = time.monotonic()
    for rnd in range(rounds):
        if rnd and go is not None:
            if not go.readline():
                break
        answers: dict[int, str | None] = {}
        asked = {}
        for i, c in list(conns.items()):
            try:
                c.send()
                asked[i] = c
            except OSError as exc:
                kill(i, _died(exc), rnd)

        def answered(i: int, c: _Conn) -> bool:
            a = c.receive()
            if a is not None:
                answers[i] = a
            return a is not None

        for i, why in _wait(asked, selectors.EVENT_READ, answered, timeout_s).items():
            if results[i].flow.proto == 6 or not why.startswith("TimeoutError"):
                kill(i, why, rnd)
        for i, r in enumerate(results):
            r.answers.append(answers.get(i))
        if progress is not None:
            dead = sum(1 for r in results if r.died_round == rnd)
            progress.write(f"round {rnd + 1}/{rounds} ({time.monotonic() - t0:.1f} s): {len(answers)} of "
                           f"{len(results)} flows answered, {dead} died, {len(conns)} open\n")
            progress.flush()
        if ready is not None:
            ready.write(f"ready {rnd}\n")
            ready.flush()
    for c in conns.values():
        c.sock.close()
    return results


def reset_lines(flows: list[dict], limit: int = 20) -> list[str]:
    """The report's flows that died (``report()`` dicts), one line each, the first ``limit`` and how many more."""
    dead = [f for f in flows if f["error"]]
    out = [f"  reset {f['src']}:{f['sport']} in round {f['died_round']}: {f['error']}" for f in dead[:limit]]
    if len(dead) > limit:
        out.append(f"  … and {len(dead) - limit} more")
    return out


def report(results: list[FlowResult]) -> dict:
    return {"flows": [{"proto": r.flow.proto, "src": r.flow.src, "sport": r.flow.sport, "answers": r.answers,
                       "error": r.error, "died_round": r.died_round} for r in results]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m anycast_tui.lab.traffic")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("--port", type=int, default=PORT)
    n = sub.add_parser("nohash")
    n.add_argument("ifnames", nargs="+")
    c = sub.add_parser("client")
    c.add_argument("--rounds", type=int, default=2)
    c.add_argument("--port", type=int, default=PORT)
    a = ap.parse_args(argv)
    if a.cmd == "serve":
        serve(a.name, a.port)
        return 0
    if a.cmd == "nohash":
        clear_hash_on_egress(a.ifnames)
        return 0
    spec = json.loads(sys.stdin.readline())
    flows = [LabFlow(int(f["proto"]), str(f["src"]), int(f["sport"])) for f in spec]
    res = run_client(flows, a.rounds, port=a.port, ready=sys.stdout, go=sys.stdin, progress=sys.stderr)
    sys.stdout.write(json.dumps(report(res)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
