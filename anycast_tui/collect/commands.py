"""The fixed, read-only command list.

Collectors run only commands from this module, chosen by id; nothing from an
inventory or from a device is ever spliced into them.  Commands that take an
argument (``route get``) build it with :func:`shlex.quote` after validating it
as an address or number.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import shlex
from dataclasses import dataclass

# The multipath sysctls, read in one go: their names and order belong to the parser of their values.
from anycast_tui.parse.sysctl import HASH_SYSCTLS


@dataclass(frozen=True, slots=True)
class Command:
    id: str  # stable id, used as the key of raw outputs and in recordings
    argv: tuple[str, ...]
    kind: str  # parser kind (see anycast_tui.parse.detect)

    @property
    def line(self) -> str:
        return _quoted(self.argv)


@functools.lru_cache(maxsize=1024)
def _quoted(argv: tuple[str, ...]) -> str:
    """The shell line of an argv, every word quoted (cached: the poll asks for it on every run)."""
    return " ".join(shlex.quote(a) for a in argv)


LINUX_POLL: tuple[Command, ...] = (
    Command("routes4", ("ip", "-j", "-4", "route", "show", "table", "all"), "ip-route-json"),
    Command("routes6", ("ip", "-j", "-6", "route", "show", "table", "all"), "ip-route-json"),
    # no ``ip -j link show``: ``ip -j addr show`` prints the same link objects (iproute2's print_linkinfo,
    # all but ``linkmode``) plus the addresses, so one channel and one process fewer per poll
    Command("addrs", ("ip", "-j", "addr", "show"), "ip-addr-json"),
    Command("nexthops", ("ip", "-j", "nexthop", "show"), "ip-nexthop-json"),
    Command("buckets", ("ip", "-j", "nexthop", "bucket", "show"), "ip-nexthop-bucket-json"),
    Command("sysctl", ("sysctl", "-n", *HASH_SYSCTLS), "sysctl-values"),
)

# Text fallbacks for devices whose iproute2 has no JSON output.
LINUX_POLL_TEXT: tuple[Command, ...] = (
    Command("routes4", ("ip", "-4", "route", "show", "table", "all"), "ip-route"),
    Command("routes6", ("ip", "-6", "route", "show", "table", "all"), "ip-route"),
)

PLATFORM_POLL: dict[str, tuple[Command, ...]] = {
    "linux": LINUX_POLL,
    "cumulus": LINUX_POLL,
    "sonic": LINUX_POLL,
    "frr": LINUX_POLL,
    "sim": LINUX_POLL,
}

# ``ip -j link show`` stays answerable (simulator, lab, parse tests) though the poll no longer asks for it.
LINKS = Command("links", ("ip", "-j", "link", "show"), "ip-link-json")

ALLOWED_LINES: frozenset[str] = frozenset(c.line for cmds in PLATFORM_POLL.values() for c in cmds) | frozenset(
    c.line for c in (*LINUX_POLL_TEXT, LINKS)
)

# ---------------------------------------------------------------- beyond the poll set
# Not in ALLOWED_LINES (which every simulated and lab device answers); the SSH
# collector allows them too (COLLECTOR_LINES).

# Run once per connection: ``ip utility, iproute2-6.1.0, libbpf 1.1.2`` (old: ``iproute2-ss130716``).
IP_VERSION = Command("ip_version", ("ip", "-V"), "ip-version")

# Kept running on its own channel; one line per route / link / nexthop change (checked on iproute2 6.1).
MONITOR = Command("monitor", ("ip", "-o", "monitor", "route", "link", "nexthop"), "ip-monitor")

# iproute2 before 4.17 has no ``-j`` for routes and 5.3 no nexthop objects: text, without nexthops/buckets.
LINUX_POLL_OLD: tuple[Command, ...] = (
    *LINUX_POLL_TEXT,
    Command("addrs", ("ip", "addr", "show"), "ip-addr"),
    Command("sysctl", ("sysctl", "-n", *HASH_SYSCTLS), "sysctl-values"),
)

# FRR's RIB next to the kernel FIB (frr, cumulus, sonic).  SONiC ships a host-side ``vtysh``
# wrapper that runs ``docker exec -i bgp vtysh``: the same line works there (the SSH user needs
# the right to run vtysh, e.g. the frrvty group; the collector never uses sudo).
FRR_ROUTES: tuple[Command, ...] = (
    Command("frr_routes4", ("vtysh", "-c", "show ip route json"), "frr-route-json"),
    Command("frr_routes6", ("vtysh", "-c", "show ipv6 route json"), "frr-route-json"),
)
FRR_PLATFORMS: frozenset[str] = frozenset({"frr", "cumulus", "sonic"})

# What the poller runs on those platforms: the RIB of both families and the BGP multipath state in ONE
# vtysh (vtysh's start-up, ~70 ms of CPU, is most of a call's cost; four -c cost what one does).  The
# output is four JSON documents in this order; vtysh stops at a command it refuses (``% ...`` line),
# leaving the documents before it (parse.frr_rib splits them).
FRR_RIB = Command("frr_rib", ("vtysh", "-c", "show ip route json", "-c", "show ipv6 route json",
                              "-c", "show bgp ipv4 unicast json", "-c", "show bgp ipv6 unicast json"),
                  "frr-rib-json")

# FRR's running configuration (``parse.frr_running``: its nexthop-group blocks, resilient or not), for the health
# rule ``resilient-not-in-effect``: FRR configured for resilient groups, the kernel's group plain (FRR#16489).
FRR_RUNNING = Command("frr_running", ("vtysh", "-c", "show running-config"), "frr-running-config")

# Live flows on anycast servers (``flow_sources`` of a device).  ``-i``: tcp info, whose lastrcv / lastack
# tell a connection alive from a leftover socket (collect/flows.py).
FLOW_COMMANDS: dict[str, tuple[Command, ...]] = {
    "ss": (Command("flows_tcp", ("ss", "-Htin", "state", "established"), "ss"),
           Command("flows_udp", ("ss", "-Hun"), "ss")),
    "conntrack": (Command("flows_ct", ("conntrack", "-L"), "conntrack"),),
}
FLOW_SOURCES: frozenset[str] = frozenset(FLOW_COMMANDS)

COLLECTOR_LINES: frozenset[str] = ALLOWED_LINES | frozenset(
    c.line for c in (IP_VERSION, MONITOR, *LINUX_POLL_OLD, *FRR_ROUTES, FRR_RIB, FRR_RUNNING,
                     *(c for cs in FLOW_COMMANDS.values() for c in cs)))


def iproute2_version(text: str) -> tuple[int, ...] | None:
    """``ip -V`` output -> (6, 1, 0); old snapshot versions (``ss130716``) -> (3,); None when unknown."""
    m = re.search(r"iproute2-(?:v)?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if m:
        return tuple(int(g) for g in m.groups() if g is not None)
    if re.search(r"iproute2-ss\d{6}", text):
        return (3,)  # snapshot-dated releases predate 4.x
    return None


def poll_commands(platform: str, version: tuple[int, ...] | None,
                  flow_sources: tuple[str, ...] = ()) -> tuple[Command, ...]:
    """The commands of one poll: JSON or text by iproute2 version, FRR RIB and running config (``FRR_RIB``,
    ``FRR_RUNNING``) and flow sources added."""
    if version is not None and version < (4, 17):
        cmds = LINUX_POLL_OLD
    elif version is not None and version < (5, 13):
        cmds = tuple(c for c in PLATFORM_POLL[platform] if c.id != "buckets" and (version >= (5, 3) or
                                                                                  c.id != "nexthops"))
    else:
        cmds = PLATFORM_POLL[platform]
    if platform in FRR_PLATFORMS:
        cmds = (*cmds, FRR_RIB, FRR_RUNNING)
    for src in flow_sources:
        cmds = (*cmds, *FLOW_COMMANDS[src])
    return cmds


# Commands whose failure (missing tool, no permission) leaves the poll good, without their data.
OPTIONAL_IDS: frozenset[str] = frozenset({"frr_rib", "frr_routes4", "frr_routes6", "frr_running", "flows_tcp",
                                          "flows_udp", "flows_ct"})

_PROTOS = {"tcp": "tcp", "udp": "udp", "6": "tcp", "17": "udp", "icmp": "icmp", "1": "icmp"}


def route_get(dst: str, *, src: str | None = None, iif: str | None = None, proto: str | int | None = None,
              sport: int | None = None, dport: int | None = None) -> Command:
    """``ip -j route get`` for one flow, every argument validated and quoted."""
    argv = ["ip", "-j", "route", "get", str(ipaddress.ip_address(dst))]
    if src is not None:
        argv += ["from", str(ipaddress.ip_address(src))]
    if iif is not None:
        if not iif.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(iif) > 15:
            raise ValueError(f"not an interface name: {iif!r}")
        argv += ["iif", iif]
    if proto is not None:
        p = _PROTOS.get(str(proto).lower())
        if p is None:
            raise ValueError(f"unsupported protocol: {proto!r}")
        argv += ["ipproto", p]
    for name, val in (("sport", sport), ("dport", dport)):
        if val is not None:
            v = int(val)
            if not 0 <= v <= 65535:
                raise ValueError(f"{name} out of range: {val!r}")
            argv += [name, str(v)]
    return Command("route_get", tuple(argv), "ip-route-json")
