"""The fixed, read-only command list.

Collectors run only commands from this module, chosen by id; nothing from an
inventory or from a device is ever spliced into them.  Commands that take an
argument (``route get``) build it with :func:`shlex.quote` after validating it
as an address or number.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    id: str  # stable id, used as the key of raw outputs and in recordings
    argv: tuple[str, ...]
    kind: str  # parser kind (see anycast_tui.parse.detect)

    @property
    def line(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)


# The multipath sysctls, read in one go; ``sysctl -n`` prints one value a line, in order.
HASH_SYSCTLS: tuple[str, ...] = (
    "net.ipv4.fib_multipath_hash_policy",
    "net.ipv4.fib_multipath_hash_fields",
    "net.ipv4.fib_multipath_hash_seed",
    "net.ipv6.fib_multipath_hash_policy",
    "net.ipv6.fib_multipath_hash_fields",
    "net.ipv4.conf.all.ignore_routes_with_linkdown",
    "net.ipv4.fib_multipath_use_neigh",
)

LINUX_POLL: tuple[Command, ...] = (
    Command("routes4", ("ip", "-j", "-4", "route", "show", "table", "all"), "ip-route-json"),
    Command("routes6", ("ip", "-j", "-6", "route", "show", "table", "all"), "ip-route-json"),
    Command("links", ("ip", "-j", "link", "show"), "ip-link-json"),
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

ALLOWED_LINES: frozenset[str] = frozenset(c.line for cmds in PLATFORM_POLL.values() for c in cmds) | frozenset(
    c.line for c in LINUX_POLL_TEXT
)

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
