"""Local collector: the machine the tool runs on, or a named network namespace, over netlink (pyroute2).

``read_state(device, ns)`` builds the same ``DeviceState`` the SSH path builds
from ``ip -j`` outputs (a kernel test proves equality): each netlink message
is rendered as the object ``ip -j`` (iproute2 6.1) would print for it, and
that goes through the very parsers the SSH path uses.  pyroute2 0.9.7 has no
nexthop-object messages, so nexthops and resilient bucket tables are read by
running ``ip -j nexthop show`` / ``ip -j nexthop bucket show`` in the
namespace; the hash sysctls by running ``sysctl -n`` there.  Cloned (cache)
routes are skipped, as ``ip route show`` does.  Lightweight-tunnel ``encap``
attributes are kept as raw text, not as iproute2 prints them.

Optional parts, as the SSH poller reads them: live flows (``flow_sources``: the same ``ss`` / ``conntrack``
lines, run in the namespace) and FRR's RIB (``vtysh``: the argv that reaches this device's FRR, e.g.
``("vtysh", "--vty_socket", DIR)``; the same ``frr_rib`` line).  A missing tool leaves them out with the
reason (:attr:`Assembled.optional_errors`), as on the poller.  All parts become a ``DeviceState`` through
``collect.devicestate.assemble``, the one builder the poller and the simulated session use.

``watch(ns)`` yields a ``Change`` per link/address/route/neighbour/nexthop
notification; ``changed(ns)`` folds bursts of them into one signal, and
``watch_states(device, ns)`` re-reads the state after each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

from pyroute2 import AsyncIPRoute, IPRoute
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_NEWROUTE
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from anycast_tui.collect import rtnames
from anycast_tui.collect.commands import FLOW_COMMANDS, FRR_RIB, FRR_RUNNING, HASH_SYSCTLS
from anycast_tui.collect.devicestate import Assembled, assemble, ok_health, with_rib_watch
from anycast_tui.model.types import Device, DeviceState, Health

# --------------------------------------------------------------------------- constants (linux uapi)

IFF_NAMES = (("LOOPBACK", 0x8), ("BROADCAST", 0x2), ("POINTOPOINT", 0x10), ("MULTICAST", 0x1000),
             ("NOARP", 0x80), ("ALLMULTI", 0x200), ("PROMISC", 0x100), ("MASTER", 0x400), ("SLAVE", 0x800),
             ("DEBUG", 0x4), ("DYNAMIC", 0x8000), ("AUTOMEDIA", 0x4000), ("PORTSEL", 0x2000),
             ("NOTRAILERS", 0x20), ("UP", 0x1), ("LOWER_UP", 0x10000), ("DORMANT", 0x20000), ("ECHO", 0x40000))
IFF_UP, IFF_RUNNING, IFF_POINTOPOINT = 0x1, 0x40, 0x10
IFA_FLAGS = (("secondary", 0x01), ("nodad", 0x02), ("optimistic", 0x04), ("dadfailed", 0x08), ("home", 0x10),
             ("deprecated", 0x20), ("tentative", 0x40), ("permanent", 0x80), ("mngtmpaddr", 0x100),
             ("noprefixroute", 0x200), ("autojoin", 0x400), ("stable-privacy", 0x800))
IFA_F_DEPRECATED = 0x20
RT_FLAGS = (("dead", 0x1), ("onlink", 0x4), ("pervasive", 0x2), ("offload", 0x8), ("trap", 0x40),
            ("notify", 0x100), ("linkdown", 0x10), ("unresolved", 0x20), ("rt_offload", 0x2000),
            ("rt_trap", 0x4000), ("rt_offload_failed", 0x20000000))
RTM_F_CLONED = 0x200
INFINITY_LIFE_TIME = 0xFFFFFFFF
OPER_STATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
METRICS = {"RTAX_MTU": (2, "mtu"), "RTAX_WINDOW": (3, "window"), "RTAX_RTT": (4, "rtt"),
           "RTAX_RTTVAR": (5, "rttvar"), "RTAX_SSTHRESH": (6, "ssthresh"), "RTAX_CWND": (7, "cwnd"),
           "RTAX_ADVMSS": (8, "advmss"), "RTAX_REORDERING": (9, "reordering"), "RTAX_HOPLIMIT": (10, "hoplimit"),
           "RTAX_INITCWND": (11, "initcwnd"), "RTAX_FEATURES": (12, "features"), "RTAX_RTO_MIN": (13, "rto_min"),
           "RTAX_INITRWND": (14, "initrwnd"), "RTAX_QUICKACK": (15, "quickack"),
           "RTAX_CC_ALGO": (16, "congestion"), "RTAX_FASTOPEN_NO_COOKIE": (17, "fastopen_no_cookie")}
PREFS = {0: "medium", 1: "high", 3: "low"}
RTNLGRP_NEXTHOP = 32
_FAMILY_NAMES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}


class _rtmsg(rtmsg):
    """pyroute2 0.9.7's route message plus the attributes it does not decode (RTA_PAD .. RTA_NH_ID)."""

    _nlmsg_base__compiled_nla = False  # pyroute2 caches the compiled table per class: compile ours afresh
    nla_map = rtmsg.nla_map + (("RTA_PAD", "hex"), ("RTA_UID", "uint32"), ("RTA_TTL_PROPAGATE", "uint8"),
                               ("RTA_IP_PROTO", "uint8"), ("RTA_SPORT", "be16"), ("RTA_DPORT", "be16"),
                               ("RTA_NH_ID", "uint32"))


def _attrs(msg: Any) -> dict[str, Any]:
    """Attributes of a pyroute2 message by name; the first of duplicates wins, as in iproute2's parse_rtattr."""
    out: dict[str, Any] = {}
    for item in msg.get("attrs", ()):
        k, v = item[0], item[1]
        out.setdefault(k, v)
    return out


# --------------------------------------------------------------------------- links and addresses


def _ll_addr(value: str, ifi_type: int) -> str:
    """iproute2 ``ll_addr_n2a``: tunnel link addresses as IP addresses, the rest as colon hex."""
    if ifi_type in (768, 776, 778, 769, 823) and isinstance(value, str):
        try:
            raw = bytes(int(b, 16) for b in value.split(":"))
        except ValueError:
            return value
        if len(raw) == 4:
            return socket.inet_ntop(socket.AF_INET, raw)
        if len(raw) == 16:
            return socket.inet_ntop(socket.AF_INET6, raw)
    return value


def _link_flags(flags: int, mdown: bool) -> list[str]:
    out = []
    if flags & IFF_UP and not flags & IFF_RUNNING:
        out.append("NO-CARRIER")
    flags &= ~IFF_RUNNING
    for name, bit in IFF_NAMES:
        if flags & bit:
            flags &= ~bit
            out.append(name)
    if flags:
        out.append(f"{flags:x}")
    if mdown:
        out.append("M-DOWN")
    return out


def link_object(msg: Any, names: dict[int, str], flags_of: dict[int, int]) -> dict[str, Any]:
    """The object ``ip -j addr show`` prints for one RTM_NEWLINK message (without ``addr_info``)."""
    a = _attrs(msg)
    obj: dict[str, Any] = {"ifindex": msg["index"]}
    mdown = False
    if "IFLA_LINK" in a:
        iflink = a["IFLA_LINK"]
        if iflink:
            if "IFLA_LINK_NETNSID" in a:
                obj["link_index"] = iflink
            else:
                obj["link"] = names.get(iflink, f"if{iflink}")
                mdown = not flags_of.get(iflink, 0) & IFF_UP
        else:
            obj["link"] = None
    obj["ifname"] = a.get("IFLA_IFNAME", f"if{msg['index']}")
    obj["flags"] = _link_flags(msg["flags"], mdown)
    if "IFLA_MTU" in a:
        obj["mtu"] = a["IFLA_MTU"]
    if "IFLA_QDISC" in a:
        obj["qdisc"] = a["IFLA_QDISC"]
    if "IFLA_MASTER" in a:
        obj["master"] = names.get(a["IFLA_MASTER"], f"if{a['IFLA_MASTER']}")
    if "IFLA_OPERSTATE" in a:
        state = a["IFLA_OPERSTATE"]
        if isinstance(state, int):
            if state < len(OPER_STATES):
                obj["operstate"] = OPER_STATES[state]
            else:
                obj["operstate_index"] = state
        else:
            obj["operstate"] = state
    if "IFLA_GROUP" in a:
        obj["group"] = rtnames.name("group", a["IFLA_GROUP"])
    if a.get("IFLA_TXQLEN"):
        obj["txqlen"] = a["IFLA_TXQLEN"]
    ifi_type = msg.get("ifi_type", 0)
    obj["link_type"] = rtnames.link_type(ifi_type)
    if "IFLA_ADDRESS" in a:
        obj["address"] = _ll_addr(a["IFLA_ADDRESS"], ifi_type)
    if "IFLA_BROADCAST" in a:
        if msg["flags"] & IFF_POINTOPOINT:
            obj["link_pointtopoint"] = True
        obj["broadcast"] = _ll_addr(a["IFLA_BROADCAST"], ifi_type)
    perm = a.get("IFLA_PERM_ADDRESS")
    if perm is not None and perm != a.get("IFLA_ADDRESS"):
        obj["permaddr"] = _ll_addr(perm, ifi_type)
    if "IFLA_LINK_NETNSID" in a:
        obj["link_netnsid"] = a["IFLA_LINK_NETNSID"]
    if a.get("IFLA_PROTO_DOWN"):
        obj["proto_down"] = True
    # ``ip addr show`` prints no ifalias (only ``ip link show`` does).
    if "IFLA_PROP_LIST" in a:
        props = a["IFLA_PROP_LIST"]
        obj["altnames"] = [v for k, v in (props.get("attrs", ()) if isinstance(props, dict) else ())
                           if k == "IFLA_ALT_IFNAME"]
    return obj


def addr_object(msg: Any) -> dict[str, Any]:
    """The ``addr_info`` item ``ip -j addr show`` prints for one RTM_NEWADDR message."""
    a = _attrs(msg)
    fam = msg["family"]
    obj: dict[str, Any] = {}
    if fam in _FAMILY_NAMES:
        obj["family"] = _FAMILY_NAMES[fam]
    else:
        obj["family_index"] = fam
    local = a.get("IFA_LOCAL", a.get("IFA_ADDRESS"))
    peer = a.get("IFA_ADDRESS", local)
    if local is not None:
        obj["local"] = local
        if peer is not None and peer != local:
            obj["address"] = peer
        obj["prefixlen"] = msg["prefixlen"]
        if "IFA_RT_PRIORITY" in a:
            obj["metric"] = a["IFA_RT_PRIORITY"]
    if "IFA_BROADCAST" in a:
        obj["broadcast"] = a["IFA_BROADCAST"]
    if "IFA_ANYCAST" in a:
        obj["anycast"] = a["IFA_ANYCAST"]
    obj["scope"] = rtnames.name("rt_scopes", msg["scope"])
    flags = a.get("IFA_FLAGS", msg["flags"])
    left = flags
    for name, bit in IFA_FLAGS:
        if bit == 0x80:
            if not flags & bit:
                obj["dynamic"] = True
        elif flags & bit:
            obj["temporary" if bit == 0x01 and fam == socket.AF_INET6 else name] = True
        left &= ~bit
    if left:
        obj["ifa_flags"] = f"{left:02x}"
    if "IFA_LABEL" in a:
        obj["label"] = a["IFA_LABEL"]
    ci = a.get("IFA_CACHEINFO")
    if ci:
        valid, pref = ci.get("ifa_valid", 0), ci.get("ifa_preferred", 0)
        obj["valid_life_time"] = valid
        if pref != INFINITY_LIFE_TIME and flags & IFA_F_DEPRECATED and pref >= 2 ** 31:
            pref -= 2 ** 32
        obj["preferred_life_time"] = pref
    return obj


def interfaces_objects(links: Iterable[Any], addrs: Iterable[Any]) -> list[dict[str, Any]]:
    """``ip -j addr show``: every link with its addresses in dump order."""
    links = list(links)
    names = {m["index"]: _attrs(m).get("IFLA_IFNAME", "") for m in links}
    flags_of = {m["index"]: m["flags"] for m in links}
    by_index: dict[int, list[dict[str, Any]]] = {}
    for m in addrs:
        by_index.setdefault(m["index"], []).append(addr_object(m))
    out = []
    for m in links:
        obj = link_object(m, names, flags_of)
        obj["addr_info"] = by_index.get(m["index"], [])
        out.append(obj)
    return out


# --------------------------------------------------------------------------- routes


def _realm(value: int) -> dict[str, str]:
    to, frm = value & 0xFFFF, value >> 16
    out = {}
    if frm:
        out["from"] = rtnames.name("rt_realms", frm)
    out["to"] = rtnames.name("rt_realms", to)
    return out


def _rt_flags(flags: int) -> list[str]:
    return [name for name, bit in RT_FLAGS if flags & bit]


def _metrics(value: Any) -> dict[str, Any]:
    got = {k: v for k, v in value.get("attrs", ())} if isinstance(value, dict) else {}
    lock = got.get("RTAX_LOCK", 0) or 0
    out: dict[str, Any] = {}
    for key, (idx, name) in sorted(METRICS.items(), key=lambda kv: kv[1][0]):
        if key not in got and not lock & (1 << idx):
            continue
        val = got.get(key, 0)
        if key == "RTAX_HOPLIMIT" and val in (-1, 0xFFFFFFFF):
            continue
        if key == "RTAX_FEATURES":
            if val & 1:
                out["ecn"] = None
            if val & ~1:
                out["features"] = hex(val)
        elif key == "RTAX_RTT":
            out[name] = val // 8
        elif key == "RTAX_RTTVAR":
            out[name] = val // 4
        else:
            out[name] = val
    return out


def _cacheinfo(ci: dict[str, int], obj: dict[str, Any]) -> None:
    hz = os.sysconf("SC_CLK_TCK") or 100
    expires = ci.get("rta_expires", 0)
    if expires:
        expires = expires - 2 ** 32 if expires >= 2 ** 31 else expires
        obj["expires"] = int(expires / hz)
    if ci.get("rta_error"):
        obj["error"] = ci["rta_error"]
    if ci.get("rta_id"):
        obj["ipid"] = f"0x{ci['rta_id']:04x}"
    if ci.get("rta_ts") or ci.get("rta_tsage"):
        obj["ts"] = hex(ci.get("rta_ts", 0))
        obj["tsage"] = ci.get("rta_tsage", 0)


def _host(family: int, addr: str, plen: int) -> str:
    host_len = 32 if family == socket.AF_INET else 128
    return addr if plen == host_len else f"{addr}/{plen}"


def route_object(msg: Any, names: dict[int, str]) -> dict[str, Any] | None:
    """The object ``ip -j route show table all`` prints for one RTM_NEWROUTE message (None: not printed)."""
    if msg["flags"] & RTM_F_CLONED:
        return None
    a = _attrs(msg)
    fam = msg["family"]
    obj: dict[str, Any] = {}
    rtype = msg["type"]
    if rtype != 1:
        obj["type"] = rtnames.RTN_TYPES.get(rtype, str(rtype))
    if "RTA_DST" in a:
        obj["dst"] = _host(fam, a["RTA_DST"], msg["dst_len"])
    elif msg["dst_len"]:
        obj["dst"] = f"0/{msg['dst_len']} "
    else:
        obj["dst"] = "default"
    if "RTA_SRC" in a:
        obj["from"] = _host(fam, a["RTA_SRC"], msg["src_len"])
    elif msg["src_len"]:
        obj["src"] = f"0/{msg['src_len']}"
    if "RTA_NH_ID" in a:
        obj["nhid"] = a["RTA_NH_ID"]
    if "RTA_NEWDST" in a:
        obj["to"] = str(a["RTA_NEWDST"])
    if "RTA_ENCAP" in a:
        obj["encap"] = str(a["RTA_ENCAP"])
    if msg["tos"]:
        obj["tos"] = rtnames.table("rt_dsfield").get(msg["tos"], f"0x{msg['tos']:02x}")
    if "RTA_GATEWAY" in a:
        obj["gateway"] = a["RTA_GATEWAY"]
    if "RTA_VIA" in a:
        via = a["RTA_VIA"]
        obj["via"] = {"family": _FAMILY_NAMES.get(via.get("family"), "???"), "host": via.get("addr")}
    if "RTA_OIF" in a:
        obj["dev"] = names.get(a["RTA_OIF"], f"if{a['RTA_OIF']}")
    table = a.get("RTA_TABLE", msg["table"])
    if table and table != 254:
        obj["table"] = rtnames.name("rt_tables", table)
    if msg["proto"] != 3:
        obj["protocol"] = rtnames.name("rt_protos", msg["proto"])
    if msg["scope"] != 0:
        obj["scope"] = rtnames.name("rt_scopes", msg["scope"])
    if "RTA_PREFSRC" in a:
        obj["prefsrc"] = a["RTA_PREFSRC"]
    if "RTA_PRIORITY" in a:
        obj["metric"] = a["RTA_PRIORITY"]
    obj["flags"] = _rt_flags(msg["flags"])
    if a.get("RTA_MARK"):
        obj["mark"] = a["RTA_MARK"]
    if "RTA_FLOW" in a:
        obj["flow"] = _realm(a["RTA_FLOW"])
    if "RTA_UID" in a:
        obj["uid"] = a["RTA_UID"]
    if "RTA_CACHEINFO" in a and fam in (socket.AF_INET, socket.AF_INET6):
        _cacheinfo(a["RTA_CACHEINFO"], obj)
    if "RTA_METRICS" in a:
        obj["metrics"] = [_metrics(a["RTA_METRICS"])]
    if "RTA_IIF" in a:
        obj["iif"] = names.get(a["RTA_IIF"], f"if{a['RTA_IIF']}")
    if "RTA_PREF" in a:
        obj["pref"] = PREFS.get(a["RTA_PREF"], a["RTA_PREF"])
    if "RTA_TTL_PROPAGATE" in a:
        obj["ttl-propogate"] = bool(a["RTA_TTL_PROPAGATE"])
    if "RTA_MULTIPATH" in a:
        hops = []
        for nh in a["RTA_MULTIPATH"]:
            na = _attrs(nh)
            h: dict[str, Any] = {}
            if "RTA_ENCAP" in na:
                h["encap"] = str(na["RTA_ENCAP"])
            if "RTA_NEWDST" in na:
                h["to"] = str(na["RTA_NEWDST"])
            if "RTA_GATEWAY" in na:
                h["gateway"] = na["RTA_GATEWAY"]
            if "RTA_VIA" in na:
                via = na["RTA_VIA"]
                h["via"] = {"family": _FAMILY_NAMES.get(via.get("family"), "???"), "host": via.get("addr")}
            if "RTA_FLOW" in na:
                h["flow"] = _realm(na["RTA_FLOW"])
            h["dev"] = names.get(nh.get("oif", 0), f"if{nh.get('oif', 0)}")
            h["weight"] = nh.get("hops", 0) + 1
            h["flags"] = _rt_flags(nh.get("flags", 0))
            hops.append(h)
        obj["nexthops"] = hops
    return obj


# --------------------------------------------------------------------------- reading a namespace


def _run(ns: str | None, *argv: str) -> str:
    """stdout of argv in ``ns``; a failure with some output still counts (``sysctl`` exits 255 when a
    kernel lacks one of the keys but prints the others, which the sysctl parser expects)."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetlinkError(f"{' '.join(argv)}: {exc}") from None
    if proc.returncode != 0 and not proc.stdout.strip():
        err = " ".join(proc.stderr.split())[:200]
        raise NetlinkError(f"{' '.join(argv)}: exit {proc.returncode}: {err}")
    return proc.stdout


class NetlinkError(RuntimeError):
    """A namespace that cannot be read (missing, no permission, command failure); one line."""


def _json(objs: list[dict[str, Any]]) -> str:
    return json.dumps(objs)


def read_outputs(ns: str | None = None) -> dict[str, str]:
    """The LINUX_POLL outputs of ``ns`` (None: this machine), routes/links/addresses rendered from netlink."""
    try:
        ipr = IPRoute(netns=ns, flags=0) if ns else IPRoute()  # flags=0: never create the namespace
    except OSError as exc:
        raise NetlinkError(f"cannot open netlink in {ns or 'this namespace'}: {exc.strerror or exc}") from None
    ipr.marshal.msg_map[RTM_NEWROUTE] = _rtmsg
    ipr.marshal.msg_map[RTM_DELROUTE] = _rtmsg
    try:
        links = list(ipr.get_links())
        addrs = list(ipr.get_addr())
        r4 = list(ipr.route("dump", family=socket.AF_INET))
        r6 = list(ipr.route("dump", family=socket.AF_INET6))
    except Exception as exc:  # pyroute2 raises NetlinkError and friends
        raise NetlinkError(f"netlink dump failed in {ns or 'this namespace'}: {exc}") from None
    finally:
        ipr.close()
    names = {m["index"]: _attrs(m).get("IFLA_IFNAME", "") for m in links}
    outputs = {
        "routes4": _json([o for o in (route_object(m, names) for m in r4) if o is not None]),
        "routes6": _json([o for o in (route_object(m, names) for m in r6) if o is not None]),
        "addrs": _json(interfaces_objects(links, addrs)),
    }
    prefix = ("ip", "-n", ns) if ns else ("ip",)
    # No nexthop messages in pyroute2 0.9.7: ask iproute2 (empty on kernels without nexthop objects).
    for cid, args in (("nexthops", ("-j", "nexthop", "show")), ("buckets", ("-j", "nexthop", "bucket", "show"))):
        try:
            proc = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetlinkError(f"ip {' '.join(args)}: {exc}") from None
        outputs[cid] = proc.stdout if proc.returncode == 0 else ""
    outputs["sysctl"] = _run(ns, "sysctl", "-n", *HASH_SYSCTLS)
    return outputs


def read_optional(ns: str | None = None, *, flow_sources: tuple[str, ...] = (),
                  vtysh: tuple[str, ...] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The optional outputs of ``ns``: the flow commands of ``flow_sources`` and, with ``vtysh``, FRR's RIB
    (``frr_rib``) and running configuration (``frr_running``, read on every read here); ({command id: stdout}, {command id: why it is missing}).  A command that fails with
    output still counts (vtysh stops at a refused ``-c``: the parts before it count), as on the poller."""
    commands = [c for src in flow_sources for c in FLOW_COMMANDS[src]]
    if vtysh is not None:
        commands += [dataclasses.replace(c, argv=(*vtysh, *c.argv[1:])) for c in (FRR_RIB, FRR_RUNNING)]
    outputs: dict[str, str] = {}
    errors: dict[str, str] = {}
    for cmd in commands:
        try:
            outputs[cmd.id] = _run(ns, *cmd.argv)
        except NetlinkError as exc:
            errors[cmd.id] = str(exc)
    return outputs, errors


def read(device: Device, ns: str | None = None, *, flow_sources: tuple[str, ...] = (),
         flow_prefixes: tuple[str, ...] = (), vtysh: tuple[str, ...] | None = None,
         prev: Health | None = None) -> Assembled:
    """One read of ``ns`` (None: this machine) as the SSH poller would assemble it: the kernel's part, and
    live flows to ``flow_prefixes`` (all when empty) when ``flow_sources`` are given, FRR's RIB with ``vtysh``.

    Raises NetlinkError when the namespace cannot be read, ParseError (naming the command id) like the
    SSH path when a required output is refused; an optional part that is missing or does not parse is in
    ``optional_errors``."""
    outputs = read_outputs(ns)
    extra, errors = read_optional(ns, flow_sources=flow_sources, vtysh=vtysh)
    outputs.update(extra)
    now = int(time.time() * 1000)
    got = assemble(device, outputs, collected_at_ms=now, health=ok_health(prev or Health(), now),
                   flow_prefixes=flow_prefixes if flow_sources else None)
    return dataclasses.replace(got, optional_errors={**errors, **got.optional_errors})


def read_state(device: Device, ns: str | None = None, **optional: Any) -> DeviceState:
    """The DeviceState of :func:`read` (``optional``: its keyword arguments)."""
    return read(device, ns, **optional).state


# --------------------------------------------------------------------------- watching


@dataclass(frozen=True, slots=True)
class Change:
    """One netlink notification: what kind of object changed."""

    kind: str  # link | addr | route | neigh | rule | nexthop | other
    event: str  # RTM_NEWLINK, RTM_DELROUTE, ... or the message type number
    ifindex: int | None = None


_KINDS = {16: "link", 17: "link", 20: "addr", 21: "addr", 24: "route", 25: "route", 28: "neigh", 29: "neigh",
          32: "rule", 33: "rule", 104: "nexthop", 105: "nexthop", 116: "nexthop", 117: "nexthop"}
_EVENTS = {104: "RTM_NEWNEXTHOP", 105: "RTM_DELNEXTHOP", 116: "RTM_NEWNEXTHOPBUCKET", 117: "RTM_DELNEXTHOPBUCKET"}


def _change(msg: Any) -> Change:
    mtype = msg.get("header", {}).get("type", 0)
    event = msg.get("event") or _EVENTS.get(mtype, str(mtype))
    ifindex = msg.get("index") if mtype in (16, 17, 20, 21) else None
    return Change(_KINDS.get(mtype, "other"), str(event), ifindex)


async def watch(ns: str | None = None, *, ready: asyncio.Event | None = None) -> AsyncIterator[Change]:
    """Netlink change notifications of ``ns`` (None: this machine): links, addresses, routes, neighbours,
    rules and nexthop objects.  ``ready`` is set once subscribed: changes after that are seen."""
    try:
        ipr = AsyncIPRoute(netns=ns, flags=0) if ns else AsyncIPRoute()
        await ipr.bind()
        ipr.add_membership(RTNLGRP_NEXTHOP)
    except OSError as exc:
        raise NetlinkError(f"cannot watch {ns or 'this namespace'}: {exc.strerror or exc}") from None
    if ready is not None:
        ready.set()
    try:
        while True:
            async for msg in ipr.get():
                yield _change(msg)
    finally:
        ipr.close()


async def _pump(source: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> None:
    try:
        async for item in source:
            queue.put_nowait(item)
    except Exception as exc:  # handed to the consumer, raised there
        queue.put_nowait(exc)


async def _get(queue: asyncio.Queue[Any], timeout: float | None = None) -> Any:
    async with asyncio.timeout(timeout):  # None: no limit
        item = await queue.get()
    if isinstance(item, Exception):
        raise item
    return item


async def _started(ready: asyncio.Event, task: asyncio.Task[None], queue: asyncio.Queue[Any]) -> None:
    """Wait until the watcher is subscribed, or raise what stopped it."""
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiter.cancel()
        await _get(queue)  # raises the watcher's error
        raise NetlinkError("netlink watch ended before it started")


async def changed(ns: str | None = None, *, settle_s: float = 0.2,
                  ready: asyncio.Event | None = None) -> AsyncIterator[list[Change]]:
    """One item per burst of changes: the notifications that arrived until ``settle_s`` passed without any."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.create_task(_pump(watch(ns, ready=ready), queue))
    try:
        while True:
            burst = [await _get(queue)]
            while True:
                try:
                    burst.append(await _get(queue, settle_s))
                except asyncio.TimeoutError:
                    break
            yield burst
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def watch_states(device: Device, ns: str | None = None, *, settle_s: float = 0.2,
                       **optional: Any) -> AsyncIterator[DeviceState]:
    """The current state first, then a fresh one after each burst of changes (reads run in a thread);
    ``optional``: :func:`read`'s keyword arguments (flows, FRR RIB).

    The watcher subscribes before the first read, so no change is lost between
    reads; bursts that pile up during a read cause one re-read, not several.
    """
    ready = asyncio.Event()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.create_task(_pump(changed(ns, settle_s=settle_s, ready=ready), queue))
    try:
        await _started(ready, task, queue)
        state = await asyncio.to_thread(read_state, device, ns, **optional)
        yield state
        while True:
            await _get(queue)
            while not queue.empty():
                await _get(queue)
            fresh = await asyncio.to_thread(read_state, device, ns, prev=state.health, **optional)
            state = with_rib_watch(state, fresh)
            yield state
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
