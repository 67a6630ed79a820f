"""Real TCP and UDP flows to the lab's anycast address, and the service that answers them.

``serve`` runs inside each server namespace: on 192.0.2.53:PORT (TCP and UDP) it
answers every line / datagram with the server's name.  ``run_client`` runs
inside the client namespace: it opens the given flows (fixed source address and
port each, so each is one 5-tuple), asks every flow ``rounds`` times, and
reports per flow which server answered each round, and when a TCP connection
died.  Everything is bounded (flow count, rounds, timeouts); only lab addresses.

Run as ``python3 -m anycast_tui.lab.traffic serve NAME``, ``... nohash IF..``
(see below) or ``... client`` (flows as JSON on one stdin line; ``ready N`` on
stdout after round N, and a line on stdin before each further round; the
report is one JSON object on stdout).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
from dataclasses import dataclass, field
from typing import Iterable, TextIO

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


def make_flows(tcp: int, udp: int, *, first_port: int = 20000) -> list[LabFlow]:
    """Deterministic flows: sources 203.0.113.10.., source ports from ``first_port``."""
    if tcp + udp > MAX_FLOWS or tcp < 0 or udp < 0:
        raise ValueError(f"0..{MAX_FLOWS} flows")
    out = []
    for i in range(tcp + udp):
        out.append(LabFlow(6 if i < tcp else 17, f"203.0.113.{10 + i % 200}", first_port + i))
    return out


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


def _check(flow: LabFlow) -> None:
    if ipaddress.ip_address(flow.src) not in CLIENT_NET or not 1024 <= flow.sport <= 65535:
        raise ValueError(f"flow outside the lab's client range: {flow}")
    if flow.proto not in (6, 17):
        raise ValueError(f"protocol {flow.proto} (only 6, 17)")


class _Conn:
    def __init__(self, flow: LabFlow, dst: str, port: int):
        self.flow = flow
        typ = socket.SOCK_STREAM if flow.proto == 6 else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, typ)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.settimeout(TIMEOUT_S)
        self.sock.bind((flow.src, flow.sport))
        self.dst = (dst, port)
        if flow.proto == 6:  # UDP stays unconnected: no socket txhash (see above)
            self.sock.connect(self.dst)
        self.buf = b""

    def ask(self) -> str | None:
        if self.flow.proto == 17:
            self.sock.sendto(b"?", self.dst)
            try:
                return self.sock.recv(256).decode().strip()
            except socket.timeout:
                return None
        self.sock.sendall(b"?\n")
        while b"\n" not in self.buf:
            chunk = self.sock.recv(256)
            if not chunk:
                raise ConnectionResetError("connection closed by peer")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()


def run_client(flows: Iterable[LabFlow], rounds: int, *, dst: str = ANYCAST, port: int = PORT,
               ready: TextIO | None = None, go: TextIO | None = None) -> list[FlowResult]:
    """Open every flow, ask each ``rounds`` times; between rounds wait for a line on ``go``."""
    flows = list(flows)
    if len(flows) > MAX_FLOWS or not 1 <= rounds <= 100:
        raise ValueError("too many flows or rounds")
    for f in flows:
        _check(f)
    results = [FlowResult(f) for f in flows]
    conns: list[_Conn | None] = []
    for r in results:
        try:
            conns.append(_Conn(r.flow, dst, port))
        except OSError as exc:
            r.error, r.died_round = f"connect: {exc}", 0
            conns.append(None)
    for rnd in range(rounds):
        if rnd and go is not None:
            if not go.readline():
                break
        for i, (r, c) in enumerate(zip(results, conns)):
            if c is None:
                r.answers.append(None)
                continue
            try:
                r.answers.append(c.ask())
            except OSError as exc:
                r.answers.append(None)
                r.error, r.died_round = type(exc).__name__ + ": " + str(exc), rnd
                c.sock.close()
                conns[i] = None
        if ready is not None:
            ready.write(f"ready {rnd}\n")
            ready.flush()
    for c in conns:
        if c is not None:
            c.sock.close()
    return results


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
    res = run_client(flows, a.rounds, port=a.port, ready=sys.stdout, go=sys.stdin)
    sys.stdout.write(json.dumps(report(res)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
