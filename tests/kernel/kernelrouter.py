"""A real Linux router in network namespaces, to ask the kernel where flows go.

Topology (all documentation ranges):

    client ns  c0 198.18.0.2/24, 2001:db8:0:ff::2/64 ── rin (router) 198.18.0.1, 2001:db8:0:ff::1
    router ns  nhI 198.19.I.1/24, 2001:db8:1:I::1/64 ── eth I (peer ns) 198.19.I.2, 2001:db8:1:I::2

Flows come from 203.0.113.0/24 (IPv6: 2001:db8:cafe::/64) via ``rin``; the
router has a return route for them so source validation passes, forwarding
on and rp_filter off.  ``ip route get DST from SRC iif rin ipproto P sport S
dport D`` then takes the forwarding path (IPv4 builds a real skb for it).

All peer ends live in one peer namespace (one veth per next hop): a
namespace per next hop would cost more setup time and changes nothing the
router sees.  Neighbours (the router's of its peers, the client's of the router)
are PERMANENT entries carrying the real MACs:
deterministic (no ARP timing, never FAILED/INCOMPLETE unless a test makes
them so) while packets would still really flow.  ``ip route get`` itself does
not resolve neighbours.

Use with the ``netns`` fixture: ``r = KernelRouter.build(netns, 4, seed=...)``.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from anycast_tui.lab import netns as nsmod
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.types import Flow

ANYCAST4 = "192.0.2.53"
ANYCAST6 = "2001:db8:53::53"
CLIENT_NET4 = "203.0.113.0/24"
CLIENT_NET6 = "2001:db8:cafe::/64"
IIF = "rin"


def gw4(i: int) -> str:
    return f"198.19.{i}.2"


def gw6(i: int) -> str:
    return f"2001:db8:1:{i:x}::2"


@dataclass
class KernelRouter:
    router: str
    peer: str
    client: str
    n: int
    iif: str = IIF
    nhids: list[int] = field(default_factory=list)

    # ------------------------------------------------------------------ build

    @classmethod
    def build(cls, group: nsmod.Namespaces, n: int, *, seed: int = 0x12345678, policy: int = 1,
              fields: int = 0x37, policy6: int | None = None, fields6: int | None = None,
              ignore_linkdown: bool = False, use_neigh: bool = False) -> "KernelRouter":
        if not 1 <= n <= 255:
            raise ValueError("1..255 next hops")
        r = group.add("r")
        p = group.add("p")
        c = group.add("c")
        kr = cls(r, p, c, n)
        ip = nsmod.ip
        batch_r: list[str] = []
        batch_p: list[str] = []
        # links: created from the router namespace straight into the peer namespaces
        nsmod.run(r, "ip", "link", "add", IIF, "type", "veth", "peer", "name", "c0", "netns", c)
        lines = [f"link add nh{i} type veth peer name eth{i} netns {p}" for i in range(n)]
        nsmod.batch(r, lines)
        for key, val in [("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                         ("net.ipv4.conf.all.rp_filter", 0), ("net.ipv4.conf.default.rp_filter", 0),
                         ("net.ipv6.conf.all.accept_dad", 0), ("net.ipv6.conf.default.accept_dad", 0),
                         ("net.ipv4.fib_multipath_hash_seed", seed),
                         ("net.ipv4.fib_multipath_hash_policy", policy),
                         ("net.ipv4.fib_multipath_hash_fields", fields),
                         ("net.ipv6.fib_multipath_hash_policy", policy if policy6 is None else policy6),
                         ("net.ipv6.fib_multipath_hash_fields", fields if fields6 is None else fields6),
                         ("net.ipv4.fib_multipath_use_neigh", int(use_neigh)),
                         ("net.ipv4.conf.all.ignore_routes_with_linkdown", int(ignore_linkdown)),
                         ("net.ipv6.conf.all.ignore_routes_with_linkdown", int(ignore_linkdown))]:
            nsmod.sysctl(r, key, val)
        for ns in (p, c):
            nsmod.sysctl(ns, "net.ipv6.conf.all.accept_dad", 0)
            nsmod.sysctl(ns, "net.ipv6.conf.default.accept_dad", 0)
        batch_r += [f"addr add 198.18.0.1/24 dev {IIF}", f"addr add 2001:db8:0:ff::1/64 dev {IIF} nodad",
                    f"link set {IIF} up"]
        nsmod.batch(c, ["addr add 198.18.0.2/24 dev c0", "addr add 2001:db8:0:ff::2/64 dev c0 nodad",
                        "link set c0 up", f"addr add {CLIENT_NET4.replace('0/24', '1/24')} dev lo",
                        "route add default via 198.18.0.1", "route add default via 2001:db8:0:ff::1"])
        for i in range(n):
            batch_r += [f"addr add 198.19.{i}.1/24 dev nh{i}", f"addr add 2001:db8:1:{i:x}::1/64 dev nh{i} nodad",
                        f"link set nh{i} up"]
            batch_p += [f"addr add {gw4(i)}/24 dev eth{i}", f"addr add {gw6(i)}/64 dev eth{i} nodad",
                        f"link set eth{i} up", f"addr add {ANYCAST4}/32 dev lo" if i == 0 else "",
                        f"addr add {ANYCAST6}/128 dev lo" if i == 0 else ""]
        batch_r += [f"route add {CLIENT_NET4} via 198.18.0.2 dev {IIF}",
                    f"route add {CLIENT_NET6} via 2001:db8:0:ff::2 dev {IIF}"]
        nsmod.batch(r, batch_r)
        nsmod.batch(p, [x for x in batch_p if x])
        # PERMANENT neighbours with the peers' real MACs
        links = json.loads(ip(p, "-j", "link", "show"))
        macs = {lk["ifname"]: lk["address"] for lk in links if lk["ifname"].startswith("eth")}
        neigh = []
        for i in range(n):
            neigh += [f"neigh replace {gw4(i)} lladdr {macs[f'eth{i}']} dev nh{i} nud permanent",
                      f"neigh replace {gw6(i)} lladdr {macs[f'eth{i}']} dev nh{i} nud permanent"]
        nsmod.batch(r, neigh)
        rin_mac = json.loads(ip(r, "-j", "link", "show", IIF))[0]["address"]
        nsmod.batch(c, [f"neigh replace 198.18.0.1 lladdr {rin_mac} dev c0 nud permanent",
                        f"neigh replace 2001:db8:0:ff::1 lladdr {rin_mac} dev c0 nud permanent"])
        del ip
        return kr

    # ------------------------------------------------------------------ routes and groups

    def ip(self, *args: str, check: bool = True) -> str:
        return nsmod.ip(self.router, *args, check=check)

    def batch(self, lines: list[str]) -> str:
        return nsmod.batch(self.router, lines)

    def sysctl(self, key: str, value: int | str) -> None:
        nsmod.sysctl(self.router, key, value)

    def route_multipath(self, indices: Sequence[int], weights: Sequence[int] | None = None, *,
                        family: int = 4, dst: str | None = None, replace: bool = False) -> None:
        """Plain multipath route to the anycast address over next hops ``indices`` in that order."""
        w = [1] * len(indices) if weights is None else list(weights)
        dst = dst or (ANYCAST4 if family == 4 else ANYCAST6)
        plen = 32 if family == 4 else 128
        gw = gw4 if family == 4 else gw6
        parts = " ".join(f"nexthop via {gw(i)} dev nh{i} weight {wt}" for i, wt in zip(indices, w))
        verb = "replace" if replace else "add"
        self.batch([f"route {verb} {dst}/{plen} {parts}"])

    def nexthops(self, indices: Iterable[int], *, family: int = 4, base: int = 100) -> list[int]:
        """One nexthop object per next hop: ids base+i."""
        gw = gw4 if family == 4 else gw6
        ids = []
        lines = []
        for i in indices:
            lines.append(f"nexthop replace id {base + i} via {gw(i)} dev nh{i}")
            ids.append(base + i)
        self.batch(lines)
        return ids

    def group(self, gid: int, members: Sequence[int], weights: Sequence[int] | None = None, *,
              kind: str = "mpath", buckets: int = 128, idle_timer: int | None = None,
              unbalanced_timer: int | None = None, replace: bool = False) -> None:
        w = [1] * len(members) if weights is None else list(weights)
        spec = "/".join(f"{m},{wt}" if wt != 1 else f"{m}" for m, wt in zip(members, w))
        line = f"nexthop {'replace' if replace else 'add'} id {gid} group {spec}"
        if kind == "resilient":
            line += " type resilient"
            if not replace:
                line += f" buckets {buckets}"
            if idle_timer is not None:
                line += f" idle_timer {idle_timer}"
            if unbalanced_timer is not None:
                line += f" unbalanced_timer {unbalanced_timer}"
        self.batch([line])

    def route_nhid(self, gid: int, *, family: int = 4, dst: str | None = None) -> None:
        dst = dst or (ANYCAST4 if family == 4 else ANYCAST6)
        plen = 32 if family == 4 else 128
        self.batch([f"route replace {dst}/{plen} nhid {gid}"])

    def buckets(self, gid: int) -> list[int]:
        """nhid per bucket index, from ``ip -j nexthop bucket show id G``."""
        data = json.loads(self.ip("-j", "nexthop", "bucket", "show", "id", str(gid)))
        out: dict[int, int] = {}
        for b in data:
            out[int(b["bucket"]["index"])] = int(b["bucket"]["nhid"])
        return [out[i] for i in range(len(out))]

    def group_info(self, gid: int) -> dict:
        return json.loads(self.ip("-j", "nexthop", "show", "id", str(gid)))[0]

    def gateway_index(self) -> dict[str, int]:
        """Gateway address -> next-hop index (both families)."""
        m = {gw4(i): i for i in range(self.n)}
        m.update({str(ipaddress.ip_address(gw6(i))): i for i in range(self.n)})
        return m

    # ------------------------------------------------------------------ asking the kernel

    def route_get(self, flows: FlowArray | Sequence[Flow]) -> list[int]:
        """Next-hop index the kernel picks for each flow (forwarding path, iif ``rin``)."""
        gws = kernel_route_get_batch(self.router, flows, self.iif)
        idx = self.gateway_index()
        return [idx.get(g, -1) if g is not None else -1 for g in gws]


_PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 132: "sctp"}


def _flows(flows: FlowArray | Sequence[Flow]) -> list[Flow]:
    return flows.flows() if isinstance(flows, FlowArray) else list(flows)


def kernel_route_get_batch(ns: str, flows: FlowArray | Sequence[Flow], iif: str) -> list[str | None]:
    """Gateway the kernel picks per flow, with ONE ``ip -j -batch -`` process for all of them.

    Each line is ``route get DST from SRC iif IIF ipproto P sport S dport D``.
    Flow labels cannot be passed by iproute2 6.1: see ``kernel_route_get_netlink``.
    """
    fl = _flows(flows)
    lines = []
    for f in fl:
        lines.append(f"route get {f.dst} from {f.src} iif {iif} ipproto {f.proto} "
                     f"sport {f.sport} dport {f.dport}")
    out = nsmod.batch(ns, lines, json=True) if lines else ""
    return parse_route_get_json(out, len(fl))


def parse_route_get_json(out: str, n: int) -> list[str | None]:
    """Gateway (or device) of each of the n answers of ``ip -j -batch`` route gets."""
    dec = json.JSONDecoder()
    res: list[str | None] = []
    pos = 0
    while len(res) < n:
        while pos < len(out) and out[pos].isspace():
            pos += 1
        obj, pos = dec.raw_decode(out, pos)
        r = obj[0] if isinstance(obj, list) else obj
        res.append(r.get("gateway") or r.get("dev"))
    return res


# --------------------------------------------------------------------------- raw netlink (flow labels)

_WORKER = r"""
import ipaddress, socket, struct, sys
RTM_NEWROUTE, RTM_GETROUTE, NLM_F_REQUEST = 24, 26, 1
RTA_DST, RTA_SRC, RTA_IIF, RTA_GATEWAY = 1, 2, 3, 5
RTA_IP_PROTO, RTA_SPORT, RTA_DPORT, RTA_FLOWLABEL = 27, 28, 29, 31


def _attr(t, data):
    ln = 4 + len(data)
    return struct.pack("=HH", ln, t) + data + b"\0" * ((4 - ln % 4) % 4)


iif_name = sys.stdin.readline().strip()
iif = socket.if_nametoindex(iif_name)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
s.bind((0, 0))
out = []
for seq, line in enumerate(sys.stdin, 1):
    src, dst, proto, sport, dport, label = line.split()
    d = ipaddress.ip_address(dst)
    fam = socket.AF_INET if d.version == 4 else socket.AF_INET6
    body = struct.pack("=BBBBBBBBI", fam, d.max_prefixlen, ipaddress.ip_address(src).max_prefixlen,
                       0, 0, 0, 0, 0, 0)
    body += _attr(RTA_DST, d.packed) + _attr(RTA_SRC, ipaddress.ip_address(src).packed)
    body += _attr(RTA_IIF, struct.pack("=I", iif)) + _attr(RTA_IP_PROTO, bytes([int(proto)]))
    body += _attr(RTA_SPORT, struct.pack(">H", int(sport))) + _attr(RTA_DPORT, struct.pack(">H", int(dport)))
    if int(label):
        body += _attr(RTA_FLOWLABEL, struct.pack(">I", int(label)))
    msg = struct.pack("=IHHII", 16 + len(body), RTM_GETROUTE, NLM_F_REQUEST, seq, 0) + body
    s.send(msg)
    data = s.recv(65536)
    ln, typ = struct.unpack_from("=IH", data, 0)
    if typ != RTM_NEWROUTE:
        err = struct.unpack_from("=i", data, 16)[0] if typ == 2 else typ
        out.append(f"ERR {err}")
        continue
    off = 16 + 12
    gw = None
    while off < ln:
        alen, atype = struct.unpack_from("=HH", data, off)
        if atype == RTA_GATEWAY:
            gw = str(ipaddress.ip_address(data[off + 4:off + alen]))
        off += (alen + 3) & ~3
    out.append(gw or "-")
sys.stdout.write("\n".join(out) + "\n")
"""


def kernel_route_get_netlink(ns: str, flows: FlowArray | Sequence[Flow], iif: str) -> list[str | None]:
    """Like kernel_route_get_batch, via raw RTM_GETROUTE (one process), carrying RTA_FLOWLABEL."""
    fl = _flows(flows)
    lines = [iif] + [f"{f.src} {f.dst} {f.proto} {f.sport} {f.dport} {f.flowlabel}" for f in fl]
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _WORKER],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise nsmod.NetnsError(f"netlink worker: {proc.stderr.strip()}")
    res: list[str | None] = []
    for line in proc.stdout.splitlines():
        if line.startswith("ERR"):
            raise nsmod.NetnsError(f"RTM_GETROUTE failed: {line}")
        res.append(None if line == "-" else line)
    return res



# --------------------------------------------------------------------------- real packets (data plane)

# Shared by both captures: read frames from every interface until n keys were seen or 3 s of quiet.
_CAPTURE_LOOP = r"""
n = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
print("ready", flush=True)
seen = {}
while len(seen) < n:
    r, _, _ = select.select([s], [], [], 3.0)
    if not r:
        break
    data, addr = s.recvfrom(65535)
"""

_CAPTURE = r"""
import socket, struct, sys, select
""" + _CAPTURE_LOOP + r"""    ifname, pkttype = addr[0], addr[2]
    if pkttype == socket.PACKET_OUTGOING or not ifname.startswith("eth"):
        continue
    k = data.find(b"ATUI")
    if k < 0:
        continue
    seen.setdefault(struct.unpack_from(">I", data, k + 4)[0], ifname)
sys.stdout.write("".join(f"{i} {v}\n" for i, v in seen.items()))
"""

_SEND = r"""
import socket, struct, sys, ipaddress, time
dev, dmac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
smac = s.getsockname()[4]
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b)//2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
for line in sys.stdin:
    i, src, dst, proto, sport, dport, label = line.split()
    i, proto, sport, dport, label = int(i), int(proto), int(sport), int(dport), int(label)
    pay = b"ATUI" + struct.pack(">I", i)
    if proto == 6:
        l4 = struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0) + pay
    elif proto == 17:
        l4 = struct.pack(">HHHH", sport, dport, 8 + len(pay), 0) + pay
    else:
        l4 = pay
    sa, da = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if sa.version == 4:
        h = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0, 64, proto, 0, sa.packed, da.packed)
        h = h[:10] + struct.pack(">H", csum(h)) + h[12:]
        frame = dmac + smac + b"\x08\x00" + h + l4
    else:
        h = struct.pack(">IHBB16s16s", (6 << 28) | (label & 0xFFFFF), len(l4), proto, 64, sa.packed, da.packed)
        frame = dmac + smac + b"\x86\xdd" + h + l4
    s.send(frame)
    if i % 200 == 199:
        time.sleep(0.002)  # let the router's softirq drain its bounded backlog
"""


def _capture(kr: "KernelRouter", capture_src: str, n: int, send: list[str], lines: list[str]) -> str:
    """Start the capture in the peer namespace, run the sender in the client's, return what was seen."""
    cap = subprocess.Popen(["ip", "netns", "exec", kr.peer, sys.executable, "-c", capture_src, str(n)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert cap.stdout is not None
        if cap.stdout.readline().strip() != "ready":
            raise nsmod.NetnsError(f"capture did not start: {cap.stderr.read() if cap.stderr else ''}")
        nsmod.run(kr.client, *send, input="\n".join(lines) + "\n")
        out, _ = cap.communicate(timeout=120)
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    return out


def kernel_forward_batch(kr: "KernelRouter", flows: FlowArray | Sequence[Flow], *, attempts: int = 3) -> list[int]:
    """Next-hop index each flow's real packet leaves by: frames injected on the client's veth
    (AF_PACKET, so no socket hash rides along), captured on the peers' veths.  Frames lost on
    a busy machine (the backlog is bounded) are sent again, up to ``attempts`` times; -1 if
    never seen."""
    fl = _flows(flows)
    rin_mac = json.loads(nsmod.ip(kr.router, "-j", "link", "show", kr.iif))[0]["address"]
    got: dict[int, int] = {}
    for _ in range(attempts):
        todo = [i for i in range(len(fl)) if i not in got]
        if not todo:
            break
        lines = [f"{i} {fl[i].src} {fl[i].dst} {fl[i].proto} {fl[i].sport} {fl[i].dport} {fl[i].flowlabel}"
                 for i in todo]
        out = _capture(kr, _CAPTURE, len(todo), [sys.executable, "-c", _SEND, "c0", rin_mac], lines)
        for line in out.splitlines():
            i, dev = line.split()
            got.setdefault(int(i), int(dev[3:]))
    return [got.get(i, -1) for i in range(len(fl))]


_CAPTURE_L4 = r"""
import ipaddress, select, socket, struct, sys
""" + _CAPTURE_LOOP + r"""    if addr[2] == socket.PACKET_OUTGOING or not addr[0].startswith("eth"):
        continue
    et = struct.unpack_from(">H", data, 12)[0]
    if et == 0x0800 and data[23] in (6, 17):
        src, l4 = ipaddress.ip_address(data[26:30]), 14 + (data[14] & 15) * 4
    elif et == 0x86DD and data[20] in (6, 17):
        src, l4 = ipaddress.ip_address(data[22:38]), 54
    else:
        continue
    seen.setdefault(f"{src} {struct.unpack_from('>H', data, l4)[0]}", addr[0])
sys.stdout.write("".join(f"{k} {v}\n" for k, v in seen.items()))
"""

_SEND_SOCKETS = r"""
import socket, sys, time
keep = []
for line in sys.stdin:
    proto, src, sport, dst, dport = line.split()
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if proto == "6" else socket.SOCK_DGRAM)
    s.bind((src, int(sport)))
    if proto == "6":
        s.setblocking(False)
        try:
            s.connect((dst, int(dport)))  # one SYN is all the router needs to see
        except BlockingIOError:
            pass
        keep.append(s)
    else:
        s.sendto(b"ATUI", (dst, int(dport)))
        s.close()
time.sleep(0.2)
"""


def kernel_forward_sockets(kr: "KernelRouter", flows: FlowArray | Sequence[Flow], *,
                           auto_flowlabels: bool = True, attempts: int = 3) -> list[int]:
    """Next-hop index of each flow's first packet when a real socket in the client namespace
    sends it (TCP: a SYN from a non-blocking connect; UDP: one datagram).  Any source in the
    client ranges can be bound.  Whatever hash the client's stack attaches to the packet rides
    along as far as veth lets it.  Flows are told apart by (source, sport): keep them unique."""
    fl = _flows(flows)
    if any(f.proto not in (6, 17) for f in fl):
        raise ValueError("TCP and UDP flows only")
    nsmod.batch(kr.client, [f"route replace local {CLIENT_NET4} dev lo", f"route replace local {CLIENT_NET6} dev lo"])
    nsmod.sysctl(kr.client, "net.ipv6.ip_nonlocal_bind", 1)  # bind any source of the client range
    nsmod.sysctl(kr.client, "net.ipv6.auto_flowlabels", int(auto_flowlabels))
    got: dict[tuple[str, int], int] = {}
    key = [(str(ipaddress.ip_address(f.src)), f.sport) for f in fl]
    for _ in range(attempts):  # a retried TCP flow is a new connection: fine for what is asked here
        todo = [i for i in range(len(fl)) if key[i] not in got]
        if not todo:
            break
        lines = [f"{fl[i].proto} {fl[i].src} {fl[i].sport} {fl[i].dst} {fl[i].dport}" for i in todo]
        out = _capture(kr, _CAPTURE_L4, len(todo), [sys.executable, "-c", _SEND_SOCKETS], lines)
        for line in out.splitlines():
            src, sport, dev = line.split()
            got.setdefault((src, int(sport)), int(dev[3:]))
    return [got.get(k, -1) for k in key]
