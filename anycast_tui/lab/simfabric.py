"""The simulated fabric's model: a leaf-spine anycast network kept in memory, as typed records.

Devices: spines, leaves and servers (one or more per leaf, each announcing the
anycast /32 and /128 by BGP from the host).  State changes recompute the
routing tables as BGP with multipath converges; the tables, interfaces, nexthop
objects, hash settings and connections of a device are read as model records
(``routes``, ``nexthops``, ``interfaces``, ``route_get``, ...).  Answering
command lines from them is the emulator's job (``simshell.py``); ``sim.py``
joins the two (``SimFabric``).

Modelling choices (converged state only, no transient ``linkdown`` window):

* paths are shortest hop counts over links whose both ends are up; servers
  never carry transit; every equal-cost neighbour is a next hop (multipath);
* the anycast prefix goes up only: a leaf routes it to its own announcing
  servers, a spine to every leaf that has such a server; a leaf does not take
  it back from the spines (``leaf_anycast_via_spines`` changes that);
* a failed device or link drops carrier on the neighbours' ports
  (``NO-CARRIER``, state DOWN, connected routes ``linkdown``); next hop
  objects on such ports are gone, as the kernel does on carrier loss.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable

from anycast_tui.lab import render
from anycast_tui.model.hashing import linux_multipath_hash_one
from anycast_tui.model.mapping import hash_threshold_one
from anycast_tui.model.resilient import ResilientGroup
from anycast_tui.model.types import (Address, Bucket, Device, DeviceState, FabricSnapshot, Flow, GroupMember,
                                     HashSettings, Health, HealthStatus, Interface, Nexthop, NexthopGroup,
                                     NexthopObject, NexthopTable, Role, Route)

log = logging.getLogger(__name__)

__all__ = ["Fabric", "SimConfig", "SimError"]

MAC_OUI = "44:38:39"  # Cumulus
INFINITE = str(render.INFINITY_LIFE_TIME)
FOREVER = (("valid_life_time", INFINITE), ("preferred_life_time", INFINITE))
PORT_EXTRA_TAIL = (("broadcast", "ff:ff:ff:ff:ff:ff"),)
GROUP4_ID, GROUP6_ID = 200, 206  # resilient groups for the anycast prefix on spines
NH6_BASE = 100  # nexthop object ids: port N -> N (IPv4), 100+N (IPv6)
PREF = (("pref", "medium"),)  # IPv6 routes carry RTA_PREF


class SimError(ValueError):
    """A state change that names nothing in the fabric."""


@dataclass(frozen=True)
class SimConfig:
    """Size and behaviour of the simulated fabric.

    ``resilient``: spines reach the anycast prefix through a resilient nexthop
    group (``buckets``, ``idle_timer``, ``unbalanced_timer`` in seconds) over
    ``ip nexthop`` objects; leaves keep plain multipath routes.
    """

    spines: int = 2
    leaves: int = 4
    servers_per_leaf: int = 1
    resilient: bool = False
    buckets: int = 32
    idle_timer: int = 120
    unbalanced_timer: int = 0
    anycast4: str = "192.0.2.53/32"
    anycast6: str = "2001:db8:53::53/128"
    client_net: str = "203.0.113.0/24"
    hash_policy: int = 1
    leaf_anycast_via_spines: bool = False
    # health-check hazards: servers per leaf, leaf by leaf (overrides servers_per_leaf: (1, 1, 2, 1) gives
    # leaf03 two servers); hash settings per device, (name, seed) / (name, policy) pairs over the defaults
    leaf_servers: tuple[int, ...] = ()
    hash_seeds: tuple[tuple[str, int], ...] = ()
    hash_policies: tuple[tuple[str, int], ...] = ()

    def servers_of(self, leaf: int) -> int:
        """How many servers leaf number ``leaf`` (0-based) has."""
        return self.leaf_servers[leaf] if self.leaf_servers else self.servers_per_leaf


@dataclass
class _Port:
    device: str
    name: str
    ifindex: int
    mac: str
    addr4: str | None = None  # address/len
    addr6: str | None = None
    peer: tuple[str, str] | None = None  # (device, port)
    link: int | None = None  # index into Fabric._links
    brd: str | None = None

    @property
    def peer_dev(self) -> str:
        assert self.peer is not None, f"{self.device} {self.name} faces no device"
        return self.peer[0]


@dataclass
class _Node:
    name: str
    role: Role
    index: int
    lo4: str
    lo6: str
    hash: HashSettings
    ports: dict[str, _Port] = field(default_factory=dict)


@dataclass
class _Link:
    a: tuple[str, str]
    b: tuple[str, str]
    failed: bool = False


@dataclass
class _Rib:
    routes4: list[Route]
    routes6: list[Route]
    local4: list[Route]
    local6: list[Route]
    objects: list[NexthopObject]
    groups: list[NexthopGroup]


def _ip(addr_len: str) -> str:
    return addr_len.split("/")[0]


def _net(addr_len: str) -> str:
    return str(ipaddress.ip_interface(addr_len).network)


@lru_cache(maxsize=1 << 16)
def _pfx(prefix: str) -> tuple[int, str, int, int]:
    """(family, canonical prefix, network as int, length) — parsed once."""
    n = ipaddress.ip_network(prefix, strict=False)
    return n.version, str(n), int(n.network_address), n.prefixlen


def _k4(dst: str, rtype: str, dev: str, src: str, flags: tuple[str, ...] = ()) -> Route:
    """An IPv4 route the kernel adds for an address (connected, local or broadcast)."""
    table, scope = ("main", "link") if rtype == "unicast" else ("local", "host" if rtype == "local" else "link")
    return Route(dst, 4, rtype, table, "kernel", scope, prefsrc=src, nexthops=(Nexthop(dev=dev, flags=flags),))


def _k6(dst: str, rtype: str, dev: str, flags: tuple[str, ...] = ()) -> Route:
    """An IPv6 route the kernel adds for an address."""
    table = "main" if rtype == "unicast" else "local"
    metric = 0 if rtype in ("local", "anycast") else 256
    return Route(dst, 6, rtype, table, "kernel", metric=metric, nexthops=(Nexthop(dev=dev, flags=flags),),
                 extra=PREF)


def _sortkey(r: Route, ifindex: Callable[[str | None], int]) -> tuple:
    fam, _, addr, plen = _pfx(r.dst)
    dev = r.nexthops[0].dev if r.nexthops else None
    # IPv6 dumps (fib6 tree walk) list the default route last
    return (fam == 6 and plen == 0, addr, plen, ifindex(dev))


class Fabric:
    """The whole simulated fabric; every state change bumps :attr:`generation` and tells the subscribers."""

    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.config = config or SimConfig()
        self.clock = clock
        self.generation = 0
        self._listeners: list[Callable[[], None]] = []  # told after every state change
        self._nodes: dict[str, _Node] = {}
        self._links: list[_Link] = []
        self._failed_devices: set[str] = set()
        self._withdrawn: set[str] = set()
        self._weights: dict[tuple[str, str, str], int] = {}
        self._res: dict[tuple[str, int], ResilientGroup] = {}
        self._ribs: dict[str, _Rib] = {}
        self._conns: dict[str, tuple[Flow, ...]] = {}  # what each server's ss shows (set_connections)
        self._build()
        self._recompute()

    # ------------------------------------------------------------------ topology

    def _build(self) -> None:
        c = self.config
        if c.spines < 1 or c.leaves < 1 or c.servers_per_leaf < 1:
            raise SimError("a fabric needs at least one spine, one leaf and one server per leaf")
        if c.leaf_servers and (len(c.leaf_servers) != c.leaves or min(c.leaf_servers) < 1):
            raise SimError(f"leaf_servers needs one count of at least 1 per leaf ({c.leaves})")
        n_servers = sum(c.servers_of(i) for i in range(c.leaves))
        if c.resilient and c.leaves >= NH6_BASE:
            raise SimError(f"resilient mode numbers nexthop objects by port: at most {NH6_BASE - 1} leaves")
        names: list[tuple[str, Role]] = [(f"spine{i:02d}", Role.SPINE) for i in range(1, c.spines + 1)]
        names += [(f"leaf{i:02d}", Role.LEAF) for i in range(1, c.leaves + 1)]
        names += [(f"server{i:02d}", Role.SERVER) for i in range(1, n_servers + 1)]
        lo4 = ipaddress.ip_address("198.18.0.0")
        lo6 = ipaddress.ip_address("2001:db8::")
        for idx, (name, role) in enumerate(names, start=1):
            seed = (0x9E3779B1 * idx) & 0xFFFFFFFF or 1
            seed = dict(c.hash_seeds).get(name, seed)
            policy = dict(c.hash_policies).get(name, c.hash_policy)
            hs = HashSettings(policy=policy, fields=0x0037, seed=seed, policy6=policy, fields6=0x0037)
            self._nodes[name] = _Node(name, role, idx, str(lo4 + idx), str(lo6 + idx), hs)
        spines = [n for n, r in names if r is Role.SPINE]
        leaves = [n for n, r in names if r is Role.LEAF]
        servers = [n for n, r in names if r is Role.SERVER]
        for s in spines:  # spine swp1..swpL face the leaves
            for li, leaf in enumerate(leaves, start=1):
                self._connect(s, f"swp{li}", leaf, f"swp{spines.index(s) + 1}")
        first = 0
        for li, leaf in enumerate(leaves):  # leaf swp(S+1).. face its servers
            for k in range(c.servers_of(li)):
                self._connect(leaf, f"swp{c.spines + k + 1}", servers[first + k], "eth0")
            first += c.servers_of(li)
        client = ipaddress.ip_network(c.client_net)
        for si, s in enumerate(spines, start=1):
            p = self._port(s, f"swp{c.leaves + 1}")
            p.addr4 = f"{client.network_address + si}/{client.prefixlen}"
            p.brd = str(client.broadcast_address)

    def _port(self, device: str, name: str) -> _Port:
        node = self._nodes[device]
        if name not in node.ports:
            ifindex = len(node.ports) + 2
            mac = f"{MAC_OUI}:{node.index >> 8 & 0xFF:02x}:{node.index & 0xFF:02x}:{ifindex:02x}" if ifindex <= 0xFF \
                else (f"02:00:{ifindex >> 8 & 0xFF:02x}:{node.index >> 8 & 0xFF:02x}:{node.index & 0xFF:02x}:"
                      f"{ifindex & 0xFF:02x}")  # a spine with over 253 leaves: locally administered, still unique
            node.ports[name] = _Port(device, name, ifindex, mac)
        return node.ports[name]

    def _connect(self, a: str, pa: str, b: str, pb: str) -> None:
        n = len(self._links)
        base4 = ipaddress.ip_address("198.19.0.0") + 2 * n
        base6 = ipaddress.ip_address("2001:db8:1::") + 2 * n
        x, y = self._port(a, pa), self._port(b, pb)
        x.addr4, y.addr4 = f"{base4}/31", f"{base4 + 1}/31"
        x.addr6, y.addr6 = f"{base6}/127", f"{base6 + 1}/127"
        x.peer, y.peer = (b, pb), (a, pa)
        x.link = y.link = n
        self._links.append(_Link((a, pa), (b, pb)))

    # ------------------------------------------------------------------ views

    @property
    def devices(self) -> tuple[str, ...]:
        """Every SSH-reachable device name (spines, leaves, servers)."""
        return tuple(self._nodes)

    def role(self, name: str) -> Role:
        return self._node(name).role

    def roles(self) -> dict[str, Role]:
        return {n: v.role for n, v in self._nodes.items()}

    def is_up(self, name: str) -> bool:
        return self._node(name).name not in self._failed_devices

    def announcing(self) -> tuple[str, ...]:
        return tuple(n for n in self._servers() if n not in self._withdrawn and n not in self._failed_devices)

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise SimError(f"no device {name!r}") from None

    def _servers(self) -> list[str]:
        return [n for n, v in self._nodes.items() if v.role is Role.SERVER]

    def _carrier(self, p: _Port) -> bool:
        if p.peer is None:
            return True  # the client segment
        link = self._links[p.link] if p.link is not None else None
        return not (link and link.failed) and p.device not in self._failed_devices \
            and p.peer_dev not in self._failed_devices

    def hash_settings(self, name: str) -> HashSettings:
        return self._node(name).hash

    def ports(self, name: str) -> tuple[str, ...]:
        """The device's port names (``lo`` aside)."""
        return tuple(self._node(name).ports)

    def peer(self, name: str, port: str) -> str | None:
        """The device ``port`` of ``name`` faces (None: the client segment)."""
        p = self._node(name).ports.get(port)
        if p is None:
            raise SimError(f"{name} has no port {port}")
        return p.peer[0] if p.peer is not None else None

    def connections(self, server: str) -> tuple[Flow, ...]:
        """The live connections ``server``'s ``ss`` shows (:meth:`set_connections`)."""
        self._node(server)
        return self._conns.get(server, ())

    def group_ids(self, name: str) -> frozenset[int]:
        """Ids of the device's nexthop groups (routes through one print ``nhid``)."""
        return frozenset(g.id for g in self._rib(name).groups)

    def routes(self, name: str, family: int | None = None, *, table: str = "all") -> list[Route]:
        rib = self._rib(name)
        out: list[Route] = []
        for fam, main, local in ((4, rib.routes4, rib.local4), (6, rib.routes6, rib.local6)):
            if family in (None, fam):
                out += main if table in ("main", "all") else []
                out += local if table in ("local", "all") else []
        return out

    def nexthops(self, name: str) -> NexthopTable:
        rib = self._rib(name)
        groups = [replace(g, bucket_table=tuple(self._buckets(name, g.id))) for g in rib.groups]
        return NexthopTable(tuple(rib.objects), tuple(groups))

    def buckets(self, name: str) -> list[Bucket]:
        return [b for g in self._rib(name).groups for b in self._buckets(name, g.id)]

    def interfaces(self, name: str) -> list[Interface]:
        node = self._node(name)
        lo_addrs = [Address(4, "127.0.0.1", 8, "host", "lo", extra=FOREVER),
                    Address(4, node.lo4, 32, "global", "lo", extra=FOREVER)]
        if node.role is Role.SERVER:
            lo_addrs.append(Address(4, _ip(self.config.anycast4), 32, "global", "lo", extra=FOREVER))
        lo_addrs.append(Address(6, node.lo6, 128, "global", extra=FOREVER))
        if node.role is Role.SERVER:
            lo_addrs.append(Address(6, _ip(self.config.anycast6), 128, "global", extra=FOREVER))
        lo_addrs.append(Address(6, "::1", 128, "host", extra=FOREVER))
        common = (("qdisc", "noqueue"), ("linkmode", "DEFAULT"), ("group", "default"), ("txqlen", "1000"))
        out = [Interface("lo", 1, ("LOOPBACK", "UP", "LOWER_UP"), "UNKNOWN", 65536, "loopback", "00:00:00:00:00:00",
                         addresses=tuple(lo_addrs), extra=common + (("broadcast", "00:00:00:00:00:00"),))]
        for p in node.ports.values():
            up = self._carrier(p)
            flags = ("BROADCAST", "MULTICAST", "UP", "LOWER_UP") if up else \
                ("NO-CARRIER", "BROADCAST", "MULTICAST", "UP")
            addrs = []
            if p.addr4:
                ip4 = ipaddress.ip_interface(p.addr4)
                ex = ((("broadcast", p.brd),) if p.brd else ()) + FOREVER
                addrs.append(Address(4, str(ip4.ip), ip4.network.prefixlen, "global", p.name, extra=ex))
            if p.addr6:
                ip6 = ipaddress.ip_interface(p.addr6)
                addrs.append(Address(6, str(ip6.ip), ip6.network.prefixlen, "global", extra=FOREVER))
            addrs.append(Address(6, self._lladdr(p), 64, "link", extra=FOREVER))
            out.append(Interface(p.name, p.ifindex, flags, "UP" if up else "DOWN", 9216, "ether", p.mac,
                                 addresses=tuple(addrs),
                                 extra=(("qdisc", "pfifo_fast"),) + common[1:] + PORT_EXTRA_TAIL))
        return out

    @staticmethod
    def _lladdr(p: _Port) -> str:
        b = bytes(int(x, 16) for x in p.mac.split(":"))
        eui = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
        return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + eui))

    def device_state(self, name: str, collected_at_ms: int | None = None) -> DeviceState:
        """The device as a collector would see it now (a failed device: no data, health ERROR)."""
        node = self._node(name)
        dev = Device(name, node.role, "sim")
        if not self.is_up(name):
            return DeviceState(device=dev, hash=node.hash,
                               health=Health(HealthStatus.ERROR, since_ms=collected_at_ms, error="connection refused"))
        return DeviceState(
            device=dev,
            routes=tuple(self.routes(name)),
            nexthops=self.nexthops(name),
            interfaces=tuple(self.interfaces(name)),
            hash=node.hash,
            collected_at_ms=collected_at_ms,
            health=Health(HealthStatus.OK, last_ok_ms=collected_at_ms),
        )

    def snapshot(self, taken_at_ms: int | None = None) -> FabricSnapshot:
        """Every device's state at one instant, as the model sees it."""
        ms = int(time.time() * 1000) if taken_at_ms is None else taken_at_ms
        return FabricSnapshot(ms, {n: self.device_state(n, ms) for n in self._nodes},
                              (self.config.anycast4, self.config.anycast6))

    # ------------------------------------------------------------------ state changes

    @property
    def listeners(self) -> int:
        """How many listeners are subscribed now (an ``ip monitor`` stream holds one while it runs)."""
        return len(self._listeners)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every state change (on the changing thread); returns the unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _changed(self, what: str) -> str:
        self.generation += 1
        self._recompute()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's bug must not undo or hide the change
                log.exception("sim listener %r failed", listener)
        return what

    def _link_between(self, a: str, b: str) -> _Link:
        self._node(a), self._node(b)
        for link in self._links:
            if {link.a[0], link.b[0]} == {a, b}:
                return link
        raise SimError(f"no link between {a} and {b}")

    def fail_link(self, a: str, b: str) -> str:
        self._link_between(a, b).failed = True
        return self._changed(f"link {a} - {b} down")

    def restore_link(self, a: str, b: str) -> str:
        self._link_between(a, b).failed = False
        return self._changed(f"link {a} - {b} up")

    def fail_device(self, name: str) -> str:
        self._node(name)
        self._failed_devices.add(name)
        return self._changed(f"{name} failed")

    def restore_device(self, name: str) -> str:
        self._node(name)
        self._failed_devices.discard(name)
        return self._changed(f"{name} restored")

    def withdraw(self, server: str) -> str:
        if self._node(server).role is not Role.SERVER:
            raise SimError(f"{server} is not a server")
        self._withdrawn.add(server)
        return self._changed(f"{server} withdrew {self.config.anycast4}")

    def announce(self, server: str) -> str:
        if self._node(server).role is not Role.SERVER:
            raise SimError(f"{server} is not a server")
        self._withdrawn.discard(server)
        return self._changed(f"{server} announced {self.config.anycast4}")

    def set_weight(self, device: str, prefix: str, nexthop_dev: str, weight: int) -> str:
        node = self._node(device)
        if nexthop_dev not in node.ports:
            raise SimError(f"{device} has no port {nexthop_dev}")
        if not 1 <= int(weight) <= 256:
            raise SimError(f"weight {weight} out of range 1..256")
        pfx = str(ipaddress.ip_network(prefix, strict=False))
        self._weights[(device, pfx, nexthop_dev)] = int(weight)
        return self._changed(f"{device}: {pfx} via {nexthop_dev} weight {weight}")

    def set_hash(self, name: str, *, seed: int | None = None, policy: int | None = None) -> str:
        """Change a device's multipath hash sysctls (``fib_multipath_hash_seed``, ``..._policy`` of both families)."""
        node = self._node(name)
        hs = node.hash
        if seed is not None and not 0 <= int(seed) <= 0xFFFFFFFF:
            raise SimError(f"seed {seed} out of range 0..4294967295")
        if policy is not None and int(policy) not in (0, 1, 2, 3):
            raise SimError(f"hash policy {policy} out of range 0..3")
        node.hash = replace(hs, seed=hs.seed if seed is None else int(seed),
                            policy=hs.policy if policy is None else int(policy),
                            policy6=hs.policy6 if policy is None else int(policy))
        return self._changed(f"{name}: hash policy {node.hash.policy} seed {node.hash.seed}")

    def set_connections(self, server: str, flows: list[Flow] | tuple[Flow, ...]) -> str:
        """The live connections ``server``'s ``ss`` shows, each as the fabric carries it towards the server
        (an inbound one: client -> anycast address; one the server opened: remote -> its own address and
        port); TCP ones are established and heard from 40 ms ago, UDP ones connected sockets."""
        if self._node(server).role is not Role.SERVER:
            raise SimError(f"{server} is not a server")
        self._conns[server] = tuple(flows)
        return self._changed(f"{server}: {len(flows)} connections")

    def apply(self, action: str, *args: object) -> str:
        """Run a state change by name (scenarios): ``fail_device``, ``withdraw``, ..."""
        allowed = {"fail_link", "restore_link", "fail_device", "restore_device", "withdraw", "announce", "set_weight"}
        if action not in allowed:
            raise SimError(f"unknown action {action!r}")
        return getattr(self, action)(*args)

    # ------------------------------------------------------------------ routing

    def _recompute(self) -> None:
        # What every device's tables follow from is kept here (linear in the fabric); a device's tables are
        # made when first read (:meth:`_rib`): together they are quadratic (every device routes to every
        # loopback), so a change costs only the devices read after it.  Resilient groups keep timers from the
        # instant of the change: their (small, at most 99 leaves) fabrics still make every table at once.
        self._now = self.clock()
        self._ribs = {}
        self._adj: dict[str, list[_Port]] = {
            n: [p for p in node.ports.values() if p.peer and self._carrier(p)]
            for n, node in self._nodes.items() if n not in self._failed_devices}
        origins: list[tuple[str, set[str]]] = []  # (prefix, devices that originate it)
        for n, node in self._nodes.items():
            if n not in self._failed_devices:
                origins.append((f"{node.lo4}/32", {n}))
                origins.append((f"{node.lo6}/128", {n}))
        spines = {n for n, v in self._nodes.items() if v.role is Role.SPINE and n not in self._failed_devices}
        origins.append((str(ipaddress.ip_network(self.config.client_net)), spines))  # connected on the spines
        self._origins = origins
        self._anycast_nh = self._anycast(self._adj)
        if self.config.resilient:
            for n in self._nodes:
                self._make_rib(n)

    def _make_rib(self, n: str) -> _Rib:
        rib = self._ribs.get(n)
        if rib is None:
            rib = self._ribs[n] = self._build_rib(n, self._learned(n), self._adj.get(n, []), self._now)
        return rib

    def _first_hops(self, n: str) -> tuple[dict[str, int], dict[str, int]]:
        """Breadth-first from ``n``: each reachable device's distance and, as a bit mask over ``n``'s live ports
        (``_adj[n]`` order), the first hops of its shortest paths.  Servers carry no transit, so a path's
        inner devices are never servers: the same paths as a search from each origin towards ``n``."""
        adj, nodes = self._adj, self._nodes
        dist: dict[str, int] = {n: 0}
        hops: dict[str, int] = {n: 0}
        frontier: list[str] = []
        for i, p in enumerate(adj[n]):
            m = p.peer_dev
            if m not in dist:
                dist[m], hops[m] = 1, 1 << i
                frontier.append(m)
            elif dist[m] == 1:
                hops[m] |= 1 << i
        d = 1
        while frontier:
            nxt: list[str] = []
            for m in frontier:
                if nodes[m].role is Role.SERVER:
                    continue  # servers carry no transit
                hm = hops[m]
                for p in adj[m]:
                    k = p.peer_dev
                    dk = dist.get(k)
                    if dk is None:
                        dist[k], hops[k] = d + 1, hm
                        nxt.append(k)
                    elif dk == d + 1:
                        hops[k] |= hm
            frontier, d = nxt, d + 1
        return dist, hops

    def _learned(self, n: str) -> list[Route]:
        """The routes ``n`` learns by BGP: every other origin's prefix over all equal-cost neighbours, then the
        anycast prefixes."""
        if n not in self._adj:
            return []
        learned: list[Route] = []
        if self._nodes[n].role is not Role.SERVER:
            ports = self._adj[n]
            dist, hops = self._first_hops(n)
            by_mask: dict[int, list[_Port]] = {}
            for prefix, orig in self._origins:
                if n in orig:
                    continue
                if len(orig) == 1:
                    (o,) = orig
                    if o not in dist:
                        continue
                    mask = hops[o]
                else:
                    ds = [dist[o] for o in orig if o in dist]
                    if not ds:
                        continue
                    best = min(ds)
                    mask = 0
                    for o in orig:
                        if dist.get(o) == best:
                            mask |= hops[o]
                nhs = by_mask.get(mask)
                if nhs is None:
                    nhs = by_mask[mask] = [ports[i] for i in range(mask.bit_length()) if mask >> i & 1] \
                        if mask.bit_count() > 1 else [ports[mask.bit_length() - 1]]
                learned.append(self._bgp_route(n, prefix, nhs))
        nhs = self._anycast_nh.get(n)
        if nhs:
            for pfx in (self.config.anycast4, self.config.anycast6):
                learned.append(self._bgp_route(n, pfx, nhs))
        return learned

    def _anycast(self, adj: dict[str, list[_Port]]) -> dict[str, list[_Port]]:
        """The next hops towards the anycast prefixes, by device (leaves and spines that have a route)."""
        ann = set(self.announcing())
        leaf_nh: dict[str, list[_Port]] = {}
        for n, ports in adj.items():
            if self._nodes[n].role is Role.LEAF:
                nh = [p for p in ports if p.peer_dev in ann]
                if nh:
                    leaf_nh[n] = nh
        out: dict[str, list[_Port]] = {}
        for n, ports in adj.items():
            role = self._nodes[n].role
            if role is Role.LEAF:
                nhs = leaf_nh.get(n, [])
                if not nhs and self.config.leaf_anycast_via_spines:
                    nhs = [p for p in ports if self._nodes[p.peer_dev].role is Role.SPINE
                           and any(q.peer_dev in leaf_nh for q in adj.get(p.peer_dev, []))]
            elif role is Role.SPINE:
                nhs = [p for p in ports if p.peer_dev in leaf_nh]
            else:
                continue
            if nhs:
                out[n] = nhs
        return out

    def _bgp_route(self, device: str, prefix: str, ports: list[_Port]) -> Route:
        fam, pfx, _, _ = _pfx(prefix)
        nhs = tuple(Nexthop(gateway=self._peer_addr(p, fam), dev=p.name,
                            weight=self._weights.get((device, pfx, p.name), 1)) for p in ports)
        if len(nhs) == 1:
            nhs = (replace(nhs[0], weight=1),)
        return Route(dst=pfx, family=fam, protocol="bgp", metric=20, nexthops=nhs,
                     extra=PREF if fam == 6 else ())

    def _peer_port(self, p: _Port) -> _Port:
        assert p.peer is not None
        d, n = p.peer
        return self._nodes[d].ports[n]

    def _peer_addr(self, p: _Port, fam: int) -> str:
        """The neighbour's address on the link behind port ``p`` (the next hop's gateway)."""
        peer = self._peer_port(p)
        a = peer.addr4 if fam == 4 else peer.addr6
        assert a is not None, f"{peer.device} {peer.name} has no IPv{fam} address"
        return _ip(a)

    # ------------------------------------------------------------------ tables

    def _build_rib(self, name: str, learned: list[Route], live: list[_Port], now: float) -> _Rib:
        node = self._node(name)
        ifx = {p.name: p.ifindex for p in node.ports.values()} | {"lo": 1}

        def ifindex(dev: str | None) -> int:
            return ifx.get(dev or "", 0)

        r4, r6, l4, l6 = self._kernel_routes(node)
        objects: list[NexthopObject] = []
        groups: list[NexthopGroup] = []
        if node.role is Role.SERVER and live:  # the host's default route, learned from its leaf
            r4.append(self._bgp_route(name, "0.0.0.0/0", live[:1]))
            r6.append(self._bgp_route(name, "::/0", live[:1]))
        for r in learned:
            if node.role is Role.SPINE and self.config.resilient and r.dst in self._anycast_prefixes():
                r, objs, grp = self._resilient_route(name, r, live, now)
                objects += objs
                groups.append(grp)
            (r4 if r.family == 4 else r6).append(r)
        if node.role is Role.SPINE and self.config.resilient:
            have = {o.id for o in objects}
            objects += [o for o in self._nh_objects(name, live) if o.id not in have]
            for fam, gid in ((4, GROUP4_ID), (6, GROUP6_ID)):
                if (name, fam) in self._res and gid not in {g.id for g in groups}:
                    del self._res[(name, fam)]  # the route went away: zebra deletes the group
        objects.sort(key=lambda o: o.id)
        key = lambda r: _sortkey(r, ifindex)  # noqa: E731
        return _Rib(sorted(r4, key=key), sorted(r6, key=key), sorted(l4, key=key), sorted(l6, key=key),
                    objects, groups)

    def _kernel_routes(self, node: _Node) -> tuple[list[Route], list[Route], list[Route], list[Route]]:
        """Connected, loopback and local-table routes the kernel makes from the addresses (main4/6, local4/6)."""
        r4: list[Route] = []
        r6: list[Route] = []
        l4 = [_k4("127.0.0.0/8", "local", "lo", "127.0.0.1"), _k4("127.0.0.1/32", "local", "lo", "127.0.0.1"),
              _k4("127.255.255.255/32", "broadcast", "lo", "127.0.0.1")]
        l6 = [_k6("::1/128", "local", "lo")]
        server = node.role is Role.SERVER
        for a in [node.lo4] + ([_ip(self.config.anycast4)] if server else []):
            l4.append(_k4(f"{a}/32", "local", "lo", a))
        for a in [node.lo6] + ([_ip(self.config.anycast6)] if server else []):
            r6.append(_k6(f"{a}/128", "unicast", "lo"))
            l6.append(_k6(f"{a}/128", "local", "lo"))
        for p in node.ports.values():
            down = () if self._carrier(p) else ("linkdown",)
            if p.addr4:
                a = _ip(p.addr4)
                r4.append(_k4(_net(p.addr4), "unicast", p.name, a, down))
                l4.append(_k4(f"{a}/32", "local", p.name, a))
                if p.brd:
                    l4.append(_k4(f"{p.brd}/32", "broadcast", p.name, a))
            if p.addr6:
                r6.append(_k6(_net(p.addr6), "unicast", p.name, down))
                l6.append(_k6(f"{_ip(p.addr6)}/128", "local", p.name))
            r6.append(_k6("fe80::/64", "unicast", p.name, down))
            if not server:  # forwarding on: the subnet-router anycast address
                l6.append(_k6("fe80::/128", "anycast", p.name))
            l6.append(_k6(f"{self._lladdr(p)}/128", "local", p.name))
            l6.append(_k6("ff00::/8", "multicast", p.name, down))
        return r4, r6, l4, l6

    def _anycast_prefixes(self) -> set[str]:
        return {str(ipaddress.ip_network(self.config.anycast4)), str(ipaddress.ip_network(self.config.anycast6))}

    def _nh_objects(self, name: str, live: list[_Port]) -> list[NexthopObject]:
        out = []
        for p in live:
            num = int(p.name.removeprefix("swp")) if p.name.startswith("swp") else p.ifindex
            out.append(NexthopObject(num, self._peer_addr(p, 4), p.name, "link", "zebra"))
            out.append(NexthopObject(NH6_BASE + num, self._peer_addr(p, 6), p.name, "link", "zebra"))
        return out

    def _resilient_route(self, name: str, r: Route, live: list[_Port], now: float
                         ) -> tuple[Route, list[NexthopObject], NexthopGroup]:
        fam = r.family
        gid = GROUP4_ID if fam == 4 else GROUP6_ID
        objs = {o.dev: o for o in self._nh_objects(name, live) if (o.id < NH6_BASE) == (fam == 4)}
        members = [objs[nh.dev or ""].id for nh in r.nexthops]
        weights = [nh.weight for nh in r.nexthops]
        c = self.config
        grp = self._res.get((name, fam))
        if grp is None:
            grp = ResilientGroup.create(members, weights, num_buckets=c.buckets, idle_timer=c.idle_timer,
                                        unbalanced_timer=c.unbalanced_timer, now=now)
            self._res[(name, fam)] = grp
        elif grp.members != members or grp.weights != weights:
            # zebra replaces the group keeping surviving members' order; joiners go last
            order = [m for m in grp.members if m in members] + [m for m in members if m not in grp.members]
            wmap = dict(zip(members, weights))
            grp.replace(order, [wmap[m] for m in order], now=now)
        byid = {o.id: o for o in objs.values()}
        nhs = tuple(Nexthop(byid[m].gateway, byid[m].dev, w) for m, w in zip(grp.members, grp.weights))
        route = replace(r, nhid=gid, nexthops=nhs)
        group = NexthopGroup(gid, tuple(GroupMember(m, w) for m, w in zip(grp.members, grp.weights)), "resilient",
                             c.buckets, c.idle_timer, c.unbalanced_timer, 0, "zebra")
        return route, list(objs.values()), group

    def _group_state(self, name: str, gid: int) -> ResilientGroup | None:
        grp = self._res.get((name, 4 if gid == GROUP4_ID else 6))
        if grp is not None:
            grp.advance(self.clock())
        return grp

    def _buckets(self, name: str, gid: int) -> list[Bucket]:
        grp = self._group_state(name, gid)
        if grp is None:
            return []
        now = self.clock()
        idle = grp.idle_time(now)
        return [Bucket(gid, i, int(nh), round(max(float(idle[i]), 0.0), 2)) for i, nh in enumerate(grp.nhids)]

    def _unbalanced_time(self, name: str, gid: int) -> int:
        grp = self._group_state(name, gid)
        if grp is None or grp.unbalanced_since is None:
            return 0
        return int(self.clock() - grp.unbalanced_since)

    def _rib(self, name: str) -> _Rib:
        self._node(name)
        rib = self._make_rib(name)
        if rib.groups:
            rib.groups = [replace(g, unbalanced_time=self._unbalanced_time(name, g.id)) for g in rib.groups]
        return rib

    # ------------------------------------------------------------------ route get

    def route_get(self, device: str, dst: str, *, src: str | None = None, iif: str | None = None,
                  proto: int = 0, sport: int = 0, dport: int = 0) -> Route | None:
        """What ``ip route get`` answers on ``device`` (None: unreachable); marks the bucket busy."""
        node = self._node(device)
        d = ipaddress.ip_address(dst)
        fam = d.version
        rib = self._rib(device)
        local = rib.local4 if fam == 4 else rib.local6
        for r in local:
            if r.type == "local" and ipaddress.ip_address(_ip(r.dst)) == d and r.dst.endswith(("/32", "/128")):
                if fam == 4:
                    extra = ((("from", src),) if src else ()) + ((("iif", iif),) if iif else ())
                    ex = (("uid", "0"),) if not iif else ()
                    return Route(f"{d}/32", 4, "local", nexthops=(Nexthop(dev="lo"),), prefsrc=None if src else str(d),
                                 extra=extra[:1] + ex + (("cache", "local"),) + extra[1:])
                return Route(f"{d}/128", 6, "local", protocol="kernel", metric=0,
                             nexthops=(Nexthop(dev="lo"),), extra=(("from", src or "::"),) + (("pref", "medium"),))
        best: Route | None = None
        for r in (rib.routes4 if fam == 4 else rib.routes6):
            net = ipaddress.ip_network(r.dst)
            if d in net and (best is None or net.prefixlen > ipaddress.ip_network(best.dst).prefixlen):
                best = r
        if best is None or not best.nexthops:
            return None
        nh = best.nexthops[0]
        if len(best.nexthops) > 1 or best.nhid is not None:
            # the lookup's source is 0 unless ``from`` is given; only IPv4 with ``iif`` takes the skb path
            flow = Flow(proto, src or ("0.0.0.0" if fam == 4 else "::"), sport, str(d), dport)
            nh = self._select(device, best, flow, forwarded=fam == 4 and iif is not None,
                              prefer_src=src if fam == 4 and iif is None else None)
        prefsrc = None
        if iif is None and (src is None or fam == 6):
            # IPv6 picks the source before the path: a group route takes its first member's device
            src_dev = best.nexthops[0].dev if fam == 6 and best.nhid is not None else nh.dev
            prefsrc = self._dev_addr(node, src_dev, fam)
        gw = nh.gateway
        if fam == 4:
            ex: list[tuple[str, str]] = [("from", src)] if src else []
            if iif is None:
                ex.append(("uid", "0"))
            ex.append(("cache", ""))
            if iif:
                ex.append(("iif", iif))
            return Route(f"{d}/32", 4, nexthops=(Nexthop(gw, nh.dev),), prefsrc=prefsrc, extra=tuple(ex))
        ex6: list[tuple[str, str]] = [("from", src or "::")]
        if iif:
            ex6.append(("iif", iif))
        ex6.append(("pref", "medium"))
        return Route(f"{d}/128", 6, protocol=best.protocol, metric=best.metric, nexthops=(Nexthop(gw, nh.dev),),
                     prefsrc=prefsrc, extra=tuple(ex6))

    def _dev_addr(self, node: _Node, dev: str | None, fam: int) -> str | None:
        p = node.ports.get(dev or "")
        if p is None:
            return None
        a = p.addr4 if fam == 4 else p.addr6
        return _ip(a) if a else None

    def _select(self, device: str, route: Route, flow: Flow, *, forwarded: bool, prefer_src: str | None) -> Nexthop:
        node = self._node(device)
        hs = node.hash
        policy, fields = (hs.policy, hs.fields) if route.family == 4 else (hs.policy6, hs.fields6)
        h = linux_multipath_hash_one(flow, policy=policy, seed=hs.seed, fields=fields, forwarded=forwarded)
        if route.nhid is not None:
            grp = self._group_state(device, route.nhid)
            if grp is not None:
                now = self.clock()
                nhid = int(grp.lookup([h], now=now)[0])
                obj = {o.id: o for o in self._ribs[device].objects}[nhid]
                return Nexthop(obj.gateway, obj.dev)
        prefer = None
        if prefer_src is not None:
            prefer = [self._dev_addr(node, nh.dev, 4) == prefer_src for nh in route.nexthops]
        i = hash_threshold_one(h, [nh.weight for nh in route.nexthops], prefer=prefer)
        return route.nexthops[max(i, 0)]
