"""Typed records that cross module boundaries.

Everything here is plain, frozen data: parsers produce it, collectors carry it,
the model computes on it, recordings store it and the UI renders it.  No I/O,
no textual.

Conventions
-----------
* Addresses are strings in their canonical ``ipaddress`` form
  (``str(ipaddress.ip_address(x))``); prefixes always carry a length
  (``192.0.2.53/32``, ``0.0.0.0/0`` for ``default``).
* Times are integer milliseconds since the Unix epoch, UTC (``*_ms``).
* ``extra`` keeps attributes a parser did not model, as ``(key, value)``
  string pairs in input order: unknown input is kept, never dropped.
"""

from __future__ import annotations

import enum
import ipaddress
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Mapping, Protocol, overload

Extra = tuple[tuple[str, str], ...]


class Role(str, enum.Enum):
    SPINE = "spine"
    LEAF = "leaf"
    SERVER = "server"
    CLIENT = "client"
    BORDER = "border"  # a client-facing router: flows enter the fabric here (like CLIENT)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    role: Role = Role.OTHER
    platform: str = "linux"  # linux | cumulus | sonic | frr | sim


# --------------------------------------------------------------------------- interfaces


@dataclass(frozen=True, slots=True)
class Address:
    family: int  # 4 or 6
    local: str
    prefixlen: int
    scope: str | None = None
    label: str | None = None
    flags: tuple[str, ...] = ()  # e.g. ("tentative",), ("dadfailed",), ("deprecated",)
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    ifindex: int | None = None
    flags: tuple[str, ...] = ()  # kernel link flags as printed: UP, LOWER_UP, NO-CARRIER, ...
    operstate: str = "UNKNOWN"  # UP, DOWN, LOWERLAYERDOWN, DORMANT, UNKNOWN, ...
    mtu: int | None = None
    link_type: str | None = None
    mac: str | None = None
    master: str | None = None
    link: str | None = None  # peer / parent ("v1@p1", "eth0.10@eth0")
    addresses: tuple[Address, ...] = ()
    extra: Extra = ()

    @property
    def admin_up(self) -> bool:
        return "UP" in self.flags

    @property
    def carrier(self) -> bool:
        """Carrier present: the kernel sets LOWER_UP; NO-CARRIER means it is missing."""
        return "LOWER_UP" in self.flags and "NO-CARRIER" not in self.flags


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One path of a route: ``via GATEWAY dev DEV weight W`` plus flags.

    A single-path route has exactly one Nexthop (weight 1); the flags printed
    after it (``linkdown``, ``onlink``, ``dead``) are the nexthop's.
    """

    gateway: str | None = None
    dev: str | None = None
    weight: int = 1
    flags: tuple[str, ...] = ()  # dead, linkdown, onlink, pervasive, offload, trap, ...
    gateway_family: int | None = None  # set when the gateway's family differs (``via inet6 fe80::1``)
    extra: Extra = ()

    @property
    def dead(self) -> bool:
        return "dead" in self.flags

    @property
    def linkdown(self) -> bool:
        return "linkdown" in self.flags

    @property
    def onlink(self) -> bool:
        return "onlink" in self.flags


@dataclass(frozen=True, slots=True)
class Route:
    dst: str  # canonical prefix with length
    family: int  # 4 or 6
    type: str = "unicast"  # unicast, local, broadcast, blackhole, unreachable, prohibit, throw, multicast, anycast, ...
    table: str = "main"
    protocol: str | None = None
    scope: str | None = None
    metric: int | None = None
    prefsrc: str | None = None
    nhid: int | None = None
    nexthops: tuple[Nexthop, ...] = ()
    flags: tuple[str, ...] = ()  # route-level flags (not a nexthop's)
    extra: Extra = ()

    @property
    def multipath(self) -> bool:
        return len(self.nexthops) > 1

    @property
    def key(self) -> tuple[str, str, int | None]:
        """Identity of a route within a device: (table, dst, metric)."""
        return (self.table, self.dst, self.metric)


RouteKey = tuple[str, str, int | None]  # Route.key: (table, dst, metric)


class EncodedRoutes(Protocol):
    """A route table kept as it was received (``record.codec.EncodedRoutes``: checked whole on receipt, so
    building it cannot fail)."""

    def __len__(self) -> int: ...

    def keys(self, positions: Sequence[int] | None = None) -> Iterator[RouteKey]:
        """``Route.key`` of the routes at ``positions`` (None: every route, in table order), without building
        them."""
        ...

    def positions(self, dsts: Iterable[str]) -> list[int]:
        """Positions of the routes whose destination is one of ``dsts``, in table order."""
        ...

    def build(self, positions: Sequence[int] | None = None) -> tuple[Route, ...]:
        """The routes at ``positions`` (None: all of them), in that order."""
        ...

    def same(self, other: EncodedRoutes) -> bool:
        """True when ``other`` holds the same encoding (so the same routes; False says nothing)."""
        ...

    def nexthops(self) -> Iterator[Nexthop]:
        """Every next hop the routes use, each route template's once, without building the routes."""
        ...


_BUILDING = threading.Lock()  # one table built at a time: the health and impact workers may ask for the same


class RouteTable(Sequence[Route]):
    """A device's routes as a bus message or KV entry brought them, built into ``Route`` objects the first time
    the whole table is read.  A viewer joining a 2,000-device fabric receives 4 M routes; building them all
    took most of its catch-up, while placement looks at a handful per device: ``keys`` and ``select_routes``
    read destinations, tables and metrics from the encoding, and one route (``table[i]``) is built alone.

    It is a sequence of routes equal to the tuple of the same routes (and hashes like it); everything that
    iterates ``DeviceState.routes`` works unchanged."""

    __slots__ = ("_enc", "_routes")

    def __init__(self, encoded: EncodedRoutes) -> None:
        self._enc = encoded
        self._routes: tuple[Route, ...] | None = None

    @property
    def encoded(self) -> EncodedRoutes:
        return self._enc

    @property
    def built(self) -> bool:
        """The whole table has been built (tests, benches)."""
        return self._routes is not None

    def routes(self) -> tuple[Route, ...]:
        """Every route, built once."""
        got = self._routes
        if got is None:
            with _BUILDING:
                got = self._routes
                if got is None:
                    got = self._routes = self._enc.build()
        return got

    def keys(self, positions: Sequence[int] | None = None) -> Iterator[RouteKey]:
        got = self._routes
        if got is None:
            return self._enc.keys(positions)
        return (r.key for r in (got if positions is None else map(got.__getitem__, positions)))

    def positions(self, dsts: Collection[str]) -> list[int]:
        got = self._routes
        return self._enc.positions(dsts) if got is None else [p for p, r in enumerate(got) if r.dst in dsts]

    def nexthops(self) -> Iterator[Nexthop]:
        got = self._routes
        return self._enc.nexthops() if got is None else (nh for r in got for nh in r.nexthops)

    def pick(self, positions: Sequence[int]) -> tuple[Route, ...]:
        """The routes at ``positions``, building only those unless the table is built."""
        got = self._routes
        if got is not None:
            return tuple(got[p] for p in positions)
        return self._enc.build(positions) if positions else ()

    def __len__(self) -> int:
        got = self._routes
        return len(got) if got is not None else len(self._enc)

    @overload
    def __getitem__(self, i: int) -> Route: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[Route, ...]: ...

    def __getitem__(self, i: int | slice) -> Route | tuple[Route, ...]:
        got = self._routes
        if got is not None or isinstance(i, slice):
            return (got if got is not None else self.routes())[i]
        n = len(self._enc)
        if not -n <= i < n:
            raise IndexError("route index out of range")
        return self._enc.build((i % n,))[0]

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes())

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, RouteTable):
            if len(self) != len(other):
                return False
            if self._enc.same(other._enc):  # the encodings stay beside the routes built from them
                return True
            return self.routes() == other.routes()
        if isinstance(other, tuple):
            return len(self) == len(other) and self.routes() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.routes())

    def __reduce__(self) -> tuple[type, tuple[tuple[Route, ...]]]:
        return (tuple, (self.routes(),))  # pickled as the plain tuple it equals

    def __repr__(self) -> str:
        return f"RouteTable({len(self)} routes{'' if self._routes is not None else ', not built'})"


def route_keys(routes: tuple[Route, ...] | RouteTable) -> Iterator[RouteKey]:
    """``Route.key`` (table, dst, metric) of each of ``routes`` in order, built or not."""
    return routes.keys() if isinstance(routes, RouteTable) else (r.key for r in routes)


def route_nexthops(routes: tuple[Route, ...] | RouteTable) -> Iterator[Nexthop]:
    """Every next hop of ``routes`` (a next hop may come more than once; of a table not built, once a template)."""
    return routes.nexthops() if isinstance(routes, RouteTable) else (nh for r in routes for nh in r.nexthops)


def select_routes(routes: tuple[Route, ...] | RouteTable, dsts: Collection[str] | None = None,
                  keep: Callable[[RouteKey], bool] | None = None) -> tuple[Route, ...]:
    """The routes to one of ``dsts`` (None: to anywhere) whose key (table, dst, metric) ``keep`` accepts (None:
    all), in order.  Of a table not built, only those are built, and ``dsts`` are searched for, not scanned."""
    if isinstance(routes, RouteTable):
        at = routes.positions(dsts) if dsts is not None else range(len(routes))
        if keep is not None:
            at = [p for p, k in zip(at, routes.keys(at)) if keep(k)]
        return routes.pick(at)
    return tuple(r for r in routes if (dsts is None or r.dst in dsts) and (keep is None or keep(r.key)))


# --------------------------------------------------------------------------- nexthop objects


@dataclass(frozen=True, slots=True)
class GroupMember:
    id: int
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Bucket:
    group_id: int
    index: int
    nhid: int
    idle_time: float = 0.0  # seconds since last use, as the kernel reports it
    flags: tuple[str, ...] = ()
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class NexthopObject:
    """``ip nexthop`` object that is a single next hop (``id N via G dev D``) or a blackhole."""

    id: int
    gateway: str | None = None
    dev: str | None = None
    scope: str | None = None
    protocol: str | None = None
    blackhole: bool = False
    fdb: bool = False
    flags: tuple[str, ...] = ()
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class NexthopGroup:
    """``ip nexthop`` group: ``id G group 1/2,3 type mpath|resilient ...``."""

    id: int
    members: tuple[GroupMember, ...]
    type: str = "mpath"  # mpath | resilient
    buckets: int | None = None  # resilient only
    idle_timer: int | None = None  # seconds
    unbalanced_timer: int | None = None
    unbalanced_time: int | None = None
    protocol: str | None = None
    flags: tuple[str, ...] = ()
    bucket_table: tuple[Bucket, ...] = ()  # filled from ``ip -j nexthop bucket show``
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class NexthopTable:
    objects: tuple[NexthopObject, ...] = ()
    groups: tuple[NexthopGroup, ...] = ()


# --------------------------------------------------------------------------- hashing settings


@dataclass(frozen=True, slots=True)
class HashSettings:
    """The device's multipath hash configuration (sysctls).

    ``seed`` 0 means the kernel uses a random boot-time key: placement is then
    unknowable and can only be asked of the device.
    """

    policy: int = 0  # net.ipv4.fib_multipath_hash_policy
    fields: int = 0x0007  # net.ipv4.fib_multipath_hash_fields (policy 3); kernel default: src, dst, proto
    seed: int = 0  # net.ipv4.fib_multipath_hash_seed
    policy6: int = 0  # net.ipv6.fib_multipath_hash_policy
    fields6: int = 0x0007
    ignore_routes_with_linkdown: bool = False
    use_neigh: bool = False


# --------------------------------------------------------------------------- health and snapshots


class HealthStatus(str, enum.Enum):
    UNKNOWN = "unknown"  # never collected yet
    OK = "ok"
    STALE = "stale"  # last good data is older than the last attempt; ``error`` says why
    ERROR = "error"  # never had good data; ``error`` says why


# RIB/FIB agreement of one device (computed in model/rib.py; here as DeviceState carries it).


@dataclass(frozen=True, slots=True)
class RibFib:
    prefix: str
    bgp: int  # paths BGP uses
    zebra: int  # next hops zebra installed
    kernel: int  # next hops of the kernel's route (0: none)
    recursive: bool = False

    @property
    def agree(self) -> bool:
        return self.kernel == self.zebra and (self.recursive or self.bgp == self.kernel)

    @property
    def text(self) -> str:
        """``BGP: 4 paths, FIB: 3`` (``, zebra: 4`` when zebra's count is neither)."""
        out = f"BGP: {self.bgp} path{'s' if self.bgp != 1 else ''}, FIB: {self.kernel}"
        if self.zebra != self.kernel and self.zebra != self.bgp:
            out += f", zebra: {self.zebra}"
        return out


@dataclass(frozen=True, slots=True)
class RibWatch:
    """What one poll of a device saw of RIB/FIB agreement, and what is reported (``model.rib.watch``)."""

    seen: Mapping[str, RibFib]  # every disagreement of this poll's state
    raised: Mapping[str, RibFib]  # the reported ones: seen alike in two consecutive polls, until they agree


@dataclass(frozen=True, slots=True)
class Health:
    status: HealthStatus = HealthStatus.UNKNOWN
    since_ms: int | None = None  # when the current status began
    error: str | None = None  # one line, for humans
    last_ok_ms: int | None = None
    permanent: bool = False  # True when retrying is pointless (auth failure, host key mismatch)
    # STALE because nobody asked the device (its collector is silent, the bus is down; ``error`` says which):
    # its data is old, which says nothing about the device itself (no failure event, no incident)
    unobserved: bool = False


@dataclass(frozen=True, slots=True)
class DeviceState:
    device: Device
    routes: tuple[Route, ...] | RouteTable = ()  # a RouteTable: from the bus, built on use
    nexthops: NexthopTable = field(default_factory=NexthopTable)
    interfaces: tuple[Interface, ...] = ()
    hash: HashSettings = field(default_factory=HashSettings)
    collected_at_ms: int | None = None
    health: Health = field(default_factory=Health)
    flows: tuple["Flow", ...] = ()  # live flows to the anycast prefixes read on this device (ss, conntrack)
    rib: "Rib | None" = None  # FRR's RIB and BGP multipath state (vtysh) on frr/cumulus/sonic; None: not read
    # RIB/FIB disagreements seen in this poll and those reported (model.rib.watch, set by the collector)
    rib_watch: RibWatch | None = field(default=None, compare=False)
    flows_stale: int = 0  # sockets / entries to the anycast prefixes left out of ``flows`` as not alive (leftovers)
    flows_udp_known: bool = False  # UDP flows were read from conntrack (ss cannot see unconnected UDP servers)
    # FRR's configured nexthop-groups (its running configuration, vtysh) on frr/cumulus/sonic; None: not read
    frr_groups: "tuple[ConfiguredGroup, ...] | None" = None

    def group(self, gid: int) -> NexthopGroup | None:
        for g in self.nexthops.groups:
            if g.id == gid:
                return g
        return None

    def interface(self, name: str) -> Interface | None:
        for i in self.interfaces:
            if i.name == name:
                return i
        return None


@dataclass(frozen=True, slots=True)
class FabricSnapshot:
    taken_at_ms: int
    devices: Mapping[str, DeviceState]
    anycast_prefixes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- flows


@dataclass(frozen=True, slots=True)
class Flow:
    proto: int  # IP protocol number: 6 tcp, 17 udp, ...
    src: str
    sport: int
    dst: str
    dport: int
    flowlabel: int = 0
    ingress: str | None = None
    group: str | None = None


# --------------------------------------------------------------------------- events


class EventKind(str, enum.Enum):
    NEXTHOP_REMOVED = "nexthop_removed"
    NEXTHOP_ADDED = "nexthop_added"
    WEIGHT_CHANGED = "weight_changed"
    NEXTHOP_FLAGS_CHANGED = "nexthop_flags_changed"
    ROUTE_WITHDRAWN = "route_withdrawn"
    ROUTE_ANNOUNCED = "route_announced"
    LINK_DOWN = "link_down"
    LINK_UP = "link_up"
    GROUP_CHANGED = "group_changed"
    BUCKETS_CHANGED = "buckets_changed"
    DEVICE_UNREACHABLE = "device_unreachable"
    DEVICE_BACK = "device_back"
    RIB_FIB_MISMATCH = "rib_fib_mismatch"  # FRR's paths and the kernel FIB's next hops disagree for a prefix
    RIB_FIB_AGREE = "rib_fib_agree"  # they agree again
    FINDING_RAISED = "finding_raised"  # a health check's finding appeared (model.checks.finding_events)
    FINDING_CLEARED = "finding_cleared"  # … and went away
    PLACEMENT_DISAGREES = "placement_disagrees"  # a device modelled exact sent sampled packets elsewhere (sFlow)


@dataclass(frozen=True, slots=True)
class Event:
    time_ms: int
    device: str
    kind: EventKind
    subject: str  # what changed: "192.0.2.53/32", "swp3", "group 10"
    detail: str  # one line for humans
    table: str | None = None
    prefix: str | None = None
    nexthop: Nexthop | None = None
    before: str | None = None
    after: str | None = None


# --------------------------------------------------------------------------- sockets, conntrack, BGP


@dataclass(frozen=True, slots=True)
class Socket:
    """One ``ss`` line: a socket as seen on a host (e.g. a live flow on an anycast server).

    IP sockets carry canonical addresses (``*`` for any) and numeric ports; a
    service name (``ss`` without ``-n``) leaves the port None and is kept in
    ``extra`` as ``local_service``/``peer_service``.  Other sockets (unix,
    netlink, ...) keep ``local``/``peer`` as printed, ports None.
    """

    netid: str  # tcp, udp, raw, u_str, nl, ... ("" when ss printed no Netid column and none was given)
    state: str  # ESTAB, LISTEN, UNCONN, TIME-WAIT, ... as ss prints them
    recv_q: int
    send_q: int
    local: str
    local_port: int | None
    peer: str
    peer_port: int | None
    local_dev: str | None = None  # scope of the local address: ``10.0.1.3%mgmt`` -> "mgmt"
    peer_dev: str | None = None
    extra: Extra = ()  # users, uid, ino, sk, timer, skmem, tcp info ... as (key, value)

    @property
    def family(self) -> int | None:
        """4 or 6 from the addresses; None for wildcard-only and non-IP sockets."""
        for a in (self.local, self.peer):
            try:
                return ipaddress.ip_address(a).version
            except ValueError:
                continue
        return None

    def flow(self) -> Flow | None:
        """The flow as the peer sent it (peer -> local: on an anycast server, client -> anycast address),
        for tcp/udp sockets with both ends known; else None."""
        proto = {"tcp": 6, "udp": 17}.get(self.netid)
        if proto is None or self.local_port is None or self.peer_port is None or "*" in (self.local, self.peer):
            return None
        return Flow(proto, self.peer, self.peer_port, self.local, self.local_port)


@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    """One ``conntrack -L`` entry: the original and the reply direction of a tracked flow."""

    proto: str  # tcp, udp, icmp, ... (or the number as text when conntrack printed "unknown")
    proto_num: int
    timeout: int | None  # seconds left
    state: str | None  # ESTABLISHED, TIME_WAIT, ... (None for protocols without state)
    src: str
    dst: str
    sport: int | None
    dport: int | None
    reply_src: str | None = None
    reply_dst: str | None = None
    reply_sport: int | None = None
    reply_dport: int | None = None
    family: int = 4
    flags: tuple[str, ...] = ()  # ASSURED, UNREPLIED, OFFLOAD, ...
    mark: int | None = None
    zone: int | None = None
    extra: Extra = ()  # packets/bytes (orig_ / reply_ prefixed), secmark, use, id, icmp type/code ...

    def flow(self) -> Flow | None:
        """The original direction as a Flow when it has ports (tcp, udp, sctp, ...)."""
        if self.sport is None or self.dport is None:
            return None
        return Flow(self.proto_num, self.src, self.sport, self.dst, self.dport)


@dataclass(frozen=True, slots=True)
class BgpMultipath:
    """BGP multipath state of one prefix (``show bgp ... json``): which paths feed the ECMP group."""

    prefix: str
    family: int
    vrf: str = "default"
    paths: int = 0  # paths known for the prefix
    valid: int = 0  # of which valid
    bestpath: str | None = None  # next hop of the best path
    multipath: tuple[str, ...] = ()  # next hops of the best path and of the paths marked multipath, in input order
    extra: Extra = ()


# --------------------------------------------------------------------------- FRR RIB


@dataclass(frozen=True, slots=True)
class RibNexthop:
    """One next hop of an FRR RIB entry, with zebra's flags.

    A recursive next hop (``recursive``: its gateway is resolved through another
    route) is followed by its resolvers, each with ``resolves`` = that gateway.
    """

    gateway: str | None = None
    dev: str | None = None
    weight: int = 1
    fib: bool = False  # zebra installed it in the kernel FIB
    active: bool = False
    recursive: bool = False
    resolves: str | None = None
    flags: tuple[str, ...] = ()  # onlink, linkdown, inactive, ...


@dataclass(frozen=True, slots=True)
class RibRoute:
    """One FRR RIB entry (``show ip|ipv6 route json``): several per prefix when several protocols know it."""

    dst: str
    family: int
    protocol: str | None = None
    table: str = "main"
    selected: bool = False
    installed: bool = False
    distance: int | None = None
    metric: int | None = None
    type: str = "unicast"  # blackhole, unreachable, prohibit when FRR installs a reject route
    nexthops: tuple[RibNexthop, ...] = ()

    @property
    def paths(self) -> int:
        """Next hops the protocol gave (resolvers of a recursive next hop are not paths of their own)."""
        return sum(1 for nh in self.nexthops if nh.resolves is None)

    @property
    def fib_nexthops(self) -> int:
        """Next hops zebra says it installed in the kernel FIB."""
        return sum(1 for nh in self.nexthops if nh.fib)


@dataclass(frozen=True, slots=True)
class ConfiguredGroup:
    """One FRR ``nexthop-group NAME`` of a device's running configuration (``parse/frr_running.py``): what the
    health rule ``resilient-not-in-effect`` compares with the kernel's group."""

    name: str
    nexthops: tuple[tuple[str | None, str | None], ...]  # (address, interface) per ``nexthop`` line
    buckets: int | None = None  # ``resilient buckets N idle-timer T unbalanced-timer U``; None: not resilient
    idle_timer: int | None = None
    unbalanced_timer: int | None = None

    @property
    def resilient(self) -> bool:
        return self.buckets is not None


@dataclass(frozen=True, slots=True)
class Rib:
    """What FRR holds on a device: RIB entries (selected or not) and the BGP multipath state per prefix."""

    routes: tuple[RibRoute, ...] = ()
    bgp: tuple[BgpMultipath, ...] = ()
