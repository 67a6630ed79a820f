"""The real lab's topology: network namespaces joined by veth pairs, and its static routing.

Layout (``S`` spines × ``L`` leaves): one client, every spine linked to the
client and to every leaf, one anycast server per leaf (or as many as ``leaf_servers`` says, numbered across
the fabric; static routing then spreads a leaf's anycast route over its servers).  Addresses come only
from documentation ranges:

* loopbacks 198.18.0.S (spines), 198.18.1.L (leaves), 198.18.2.K (server K), 198.18.3.1 (client);
* /31 links: spine–leaf 198.18.(16+S).(2L-2), leaf–server 198.18.32.(2K-2),
  spine–client 198.18.48.(2S-2) (the lower address on the spine / leaf side);
* anycast 192.0.2.53/32 on every server's ``lo``; 203.0.113.0/24 is local to the client.

An interface is named after the device at its other end (``leaf03`` on a spine).
Routing state is a :class:`Down` set (failed devices and links, drained
servers); :func:`desired_routes` turns it into what BGP would converge to, and
:func:`apply_routes` makes the kernel agree.  Nothing here touches the root
namespace: veth pairs are created directly inside their namespaces.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from anycast_tui.lab import netns

ANYCAST = "192.0.2.53"
CLIENT_NET = "203.0.113.0/24"
LAB_PREFIX = "atui-lab-"
RESILIENT_GROUP = 1
RESILIENT_BUCKETS = 128
RESILIENT_IDLE_S = 120


@dataclass(frozen=True, slots=True)
class Node:
    name: str  # spine01, leaf03, server03, client
    role: str  # spine | leaf | server | client
    index: int  # 1-based within the role
    ns: str
    loopback: str
    seed: int  # net.ipv4.fib_multipath_hash_seed


@dataclass(frozen=True, slots=True)
class Link:
    """A veth pair; ``a`` is the upper device (spine, or leaf towards its server)."""

    a: str
    a_ip: str  # without length (/31)
    b: str
    b_ip: str

    @property
    def name(self) -> str:
        return f"{self.a}-{self.b}"

    def end(self, node: str) -> tuple[str, str, str]:
        """(own address, peer name = own interface name, peer address) seen from ``node``."""
        if node == self.a:
            return self.a_ip, self.b, self.b_ip
        if node == self.b:
            return self.b_ip, self.a, self.a_ip
        raise KeyError(node)


@dataclass(frozen=True, slots=True)
class Down:
    """What is failed or drained (the lab's routing inputs)."""

    devices: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()  # Link.name
    drained: frozenset[str] = frozenset()  # servers that withdrew the anycast route


@dataclass(frozen=True)
class Topology:
    spines: int
    leaves: int
    prefix: str
    seed: int
    nodes: dict[str, Node] = field(default_factory=dict)
    links: tuple[Link, ...] = ()

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def link(self, name: str) -> Link:
        for ln in self.links:
            if ln.name == name or f"{ln.b}-{ln.a}" == name:
                return ln
        raise KeyError(name)

    def links_of(self, name: str) -> list[Link]:
        return [ln for ln in self.links if name in (ln.a, ln.b)]

    def servers_of(self, leaf: str) -> list[Link]:
        """The leaf's links to its servers (``Link.b`` is the server), in server order."""
        return sorted((ln for ln in self.links if ln.a == leaf and self.nodes[ln.b].role == "server"),
                      key=lambda ln: ln.b)

    def role(self, role: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == role]

    @property
    def namespaces(self) -> list[str]:
        return [n.ns for n in self.nodes.values()]


def device_seed(base: int, i: int) -> int:
    """A fixed, non-zero, per-device hash seed derived from the lab seed."""
    return ((base * 2654435761 + (i + 1) * 40503) % 0xFFFFFFFF) or 1


def build_topology(spines: int = 2, leaves: int = 4, *, prefix: str = LAB_PREFIX, seed: int = 1,
                   leaf_servers: tuple[int, ...] = ()) -> Topology:
    """``leaf_servers``: servers per leaf, leaf by leaf (default one each); servers are numbered across the
    fabric (``(1, 1, 2, 1)``: leaf03 has server03 and server04, leaf04 server05)."""
    if not 1 <= spines <= 8 or not 1 <= leaves <= 99:
        raise ValueError("size must be 1..8 spines × 1..99 leaves")
    per_leaf = tuple(leaf_servers) or (1,) * leaves
    if len(per_leaf) != leaves or min(per_leaf) < 1 or sum(per_leaf) > 127:
        raise ValueError(f"servers per leaf: one count of at least 1 per leaf ({leaves}), at most 127 in all")
    if not prefix.startswith(netns.PREFIX):
        raise ValueError(f"prefix {prefix!r} lacks {netns.PREFIX!r}")
    nodes: dict[str, Node] = {}
    i = 0

    def add(name: str, role: str, index: int, lo: str) -> None:
        nonlocal i
        nodes[name] = Node(name, role, index, prefix + name, lo, device_seed(seed, i))
        i += 1

    links: list[Link] = []
    add("client", "client", 1, "198.18.3.1")
    for s in range(1, spines + 1):
        add(f"spine{s:02d}", "spine", s, f"198.18.0.{s}")
        links.append(Link(f"spine{s:02d}", f"198.18.48.{2 * s - 2}", "client", f"198.18.48.{2 * s - 1}"))
    k = 0
    for l in range(1, leaves + 1):
        add(f"leaf{l:02d}", "leaf", l, f"198.18.1.{l}")
        for _ in range(per_leaf[l - 1]):
            k += 1
            add(f"server{k:02d}", "server", k, f"198.18.2.{k}")
            links.append(Link(f"leaf{l:02d}", f"198.18.32.{2 * k - 2}", f"server{k:02d}", f"198.18.32.{2 * k - 1}"))
        for s in range(1, spines + 1):
            links.append(Link(f"spine{s:02d}", f"198.18.{16 + s}.{2 * l - 2}", f"leaf{l:02d}",
                              f"198.18.{16 + s}.{2 * l - 1}"))
    return Topology(spines, leaves, prefix, seed, nodes, tuple(links))


# --------------------------------------------------------------------------- build / teardown


def _run(argv: list[str], input: str | None = None) -> None:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise netns.NetnsError(f"{' '.join(argv[:6])}: exit {proc.returncode}: {proc.stderr.strip()[:400]}")


def _parallel(cmds: Iterable[tuple[list[str], str | None]], check: bool = True) -> None:
    """Run (argv, stdin) commands concurrently; raise on the first failure when ``check``."""
    procs = []
    for argv, inp in cmds:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append((argv, p, inp))
    errors = []
    for argv, p, inp in procs:
        _, err = p.communicate(inp, timeout=120)
        if p.returncode != 0:
            errors.append(f"{' '.join(argv[:6])}: exit {p.returncode}: {err.strip()[:300]}")
    if errors and check:
        raise netns.NetnsError(errors[0])


def sysctls(node: Node) -> list[str]:
    return [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.forwarding=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv4.fib_multipath_hash_policy=1",
        f"net.ipv4.fib_multipath_hash_seed={node.seed}",
        "net.ipv4.conf.all.ignore_routes_with_linkdown=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv6.fib_multipath_hash_policy=1",
    ]


def base_lines(topo: Topology, node: Node) -> list[str]:
    """``ip -batch`` lines: addresses and links up (no routes)."""
    lines = ["link set lo up", f"addr add {node.loopback}/32 dev lo"]
    if node.role == "server":
        lines.append(f"addr add {ANYCAST}/32 dev lo")
    if node.role == "client":
        lines.append("addr add 203.0.113.1/24 dev lo")  # on lo: the whole /24 is local
    for ln in topo.links_of(node.name):
        own, ifname, _ = ln.end(node.name)
        lines += [f"addr add {own}/31 dev {ifname}", f"link set {ifname} up"]
    return lines


def create(topo: Topology) -> None:
    """Make every namespace and veth pair, set sysctls and addresses (no routes yet)."""
    lines = [f"netns add {n.ns}" for n in topo.nodes.values()]
    lines += [f"link add {ln.b} netns {topo.node(ln.a).ns} type veth peer name {ln.a} netns {topo.node(ln.b).ns}"
              for ln in topo.links]
    _run(["ip", "-batch", "-"], "\n".join(lines) + "\n")
    cmds: list[tuple[list[str], str | None]] = []
    for n in topo.nodes.values():
        cmds.append((["ip", "netns", "exec", n.ns, "sysctl", "-q", "-w", *sysctls(n)], None))
        cmds.append((["ip", "-n", n.ns, "-batch", "-"], "\n".join(base_lines(topo, n)) + "\n"))
    _parallel(cmds)


def destroy(prefix: str) -> list[str]:
    """Remove every namespace with ``prefix`` (killing what runs inside); safe to repeat."""
    if not prefix.startswith(netns.PREFIX) or prefix == netns.PREFIX:
        raise netns.NetnsError(f"refusing to clean {prefix!r}")
    names = netns.list_namespaces(prefix)
    for n in names:
        netns.delete(n)
    return names


# --------------------------------------------------------------------------- state changes


def set_links(topo: Topology, node: str, up: bool, only: Iterable[str] | None = None) -> None:
    """Admin up/down of a device's interfaces (all but lo, or the ones named)."""
    n = topo.node(node)
    names = list(only) if only is not None else [ln.end(node)[1] for ln in topo.links_of(node)]
    state = "up" if up else "down"
    _run(["ip", "-n", n.ns, "-batch", "-"], "".join(f"link set {i} {state}\n" for i in names))


def link_usable(topo: Topology, ln: Link, down: Down) -> bool:
    return ln.a not in down.devices and ln.b not in down.devices and ln.name not in down.links


# --------------------------------------------------------------------------- static routing

Paths = tuple[tuple[str, str], ...]  # ((via, dev), ...)


def _announcers(topo: Topology, down: Down) -> set[str]:
    """Leaves that have (and so announce) the anycast route."""
    return {leaf.name for leaf in topo.role("leaf") for ln in topo.servers_of(leaf.name)
            if ln.b not in down.drained and link_usable(topo, ln, down)}


def desired_routes(topo: Topology, down: Down) -> dict[str, dict[str, Paths]]:
    """Per device, prefix → next hops: the state BGP would converge to (static mode)."""
    routes: dict[str, dict[str, Paths]] = {n: {} for n in topo.nodes if n not in down.devices}
    announcers = _announcers(topo, down)
    usable = [ln for ln in topo.links if link_usable(topo, ln, down)]

    def hop(node: str, ln: Link) -> tuple[str, str]:
        _, ifname, peer_ip = ln.end(node)
        return (peer_ip, ifname)

    for sp in topo.role("spine"):
        if sp.name not in routes:
            continue
        r = routes[sp.name]
        leaf_links = sorted((ln for ln in usable if ln.a == sp.name and ln.b.startswith("leaf")), key=lambda x: x.b)
        any_paths = tuple(hop(sp.name, ln) for ln in leaf_links if ln.b in announcers)
        if any_paths:
            r[f"{ANYCAST}/32"] = any_paths
        for ln in leaf_links:
            li = topo.node(ln.b)
            r[f"{li.loopback}/32"] = (hop(sp.name, ln),)
            for sl in topo.servers_of(li.name):
                if link_usable(topo, sl, down):
                    r[f"{topo.node(sl.b).loopback}/32"] = (hop(sp.name, ln),)
        cl = [ln for ln in usable if ln.a == sp.name and ln.b == "client"]
        if cl:
            r[CLIENT_NET] = (hop(sp.name, cl[0]),)
            r["198.18.3.1/32"] = (hop(sp.name, cl[0]),)
    for leaf in topo.role("leaf"):
        if leaf.name not in routes:
            continue
        r = routes[leaf.name]
        up = tuple(hop(leaf.name, ln) for ln in sorted(usable, key=lambda x: x.a) if ln.b == leaf.name)
        if up:
            r["0.0.0.0/0"] = up
        mine = [ln for ln in topo.servers_of(leaf.name) if link_usable(topo, ln, down)]
        for sl in mine:
            r[f"{topo.node(sl.b).loopback}/32"] = (hop(leaf.name, sl),)
        serving = tuple(hop(leaf.name, sl) for sl in mine if sl.b not in down.drained)
        if serving and leaf.name in announcers:
            r[f"{ANYCAST}/32"] = serving
    for srv in topo.role("server"):
        if srv.name not in routes:
            continue
        sl = [ln for ln in usable if ln.b == srv.name]
        if sl:
            routes[srv.name]["0.0.0.0/0"] = (hop(srv.name, sl[0]),)
    if "client" in routes:
        up = tuple(hop("client", ln) for ln in sorted(usable, key=lambda x: x.a) if ln.b == "client")
        if up:
            routes["client"]["0.0.0.0/0"] = up
    return routes


def route_lines(prefix: str, paths: Paths, *, resilient: bool = False) -> list[str]:
    """``ip -batch`` lines installing one route (a resilient group for the anycast route if asked)."""
    if resilient and prefix == f"{ANYCAST}/32" and len(paths) >= 1:
        lines = []
        ids = []
        for via, dev in paths:
            nid = 1000 + int(via.split(".")[3]) + 256 * int(via.split(".")[2])
            lines.append(f"nexthop replace id {nid} via {via} dev {dev} proto static")
            ids.append(str(nid))
        lines.append(f"nexthop replace id {RESILIENT_GROUP} group {'/'.join(ids)} type resilient "
                     f"buckets {RESILIENT_BUCKETS} idle_timer {RESILIENT_IDLE_S} unbalanced_timer 0 proto static")
        lines.append(f"route replace {prefix} nhid {RESILIENT_GROUP} proto static")
        return lines
    if len(paths) == 1:
        return [f"route replace {prefix} via {paths[0][0]} dev {paths[0][1]} proto static"]
    return [f"route replace {prefix} proto static " + " ".join(f"nexthop via {v} dev {d}" for v, d in paths)]


def apply_routes(topo: Topology, want: Mapping[str, Mapping[str, Paths]],
                 before: Mapping[str, Mapping[str, Paths]] | None = None, *, resilient: bool = False) -> None:
    """Make each live device's static routes equal ``want``.

    Every wanted route is (re)placed, since a downed interface flushes the kernel's
    routes through it; routes in ``before`` but not wanted are deleted.  A spine's
    resilient anycast group is left alone when its members did not change, so
    its bucket table is not disturbed.
    """
    cmds: list[tuple[list[str], str | None]] = []
    dels: list[tuple[list[str], str | None]] = []
    for name, routes in want.items():
        old = (before or {}).get(name, {})
        ns = topo.node(name).ns
        gone = [f"route del {p} proto static" for p in old if p not in routes]
        if gone:
            dels.append((["ip", "-n", ns, "-force", "-batch", "-"], "\n".join(gone) + "\n"))
        res = resilient and topo.node(name).role == "spine"
        lines: list[str] = []
        for prefix, paths in routes.items():
            if res and prefix == f"{ANYCAST}/32" and before is not None and old.get(prefix) == paths:
                continue
            lines += route_lines(prefix, paths, resilient=res)
        if lines:
            cmds.append((["ip", "-n", ns, "-batch", "-"], "\n".join(lines) + "\n"))
    _parallel(dels, check=False)
    _parallel(cmds)
