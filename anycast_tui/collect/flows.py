"""Live flows read on anycast servers (``ss``, ``conntrack -L``) -> the alive Flow records to the anycast prefixes.

A server keeps the ESTABLISHED socket of a connection whose packets now reach another server (after a
failover the client got a RST from the new one and went away; the old socket lingers until the
application or TCP keepalive, hours later, closes it).  Such leftovers are not flows the fabric carries,
so only flows heard from in the last ``LIVE_WINDOW_S`` seconds count; the others are counted apart
(``stale``).

* ``ss -Htin state established``: a TCP socket is alive when its peer was heard from (``lastrcv`` /
  ``lastack``, parse.ss.heard_ms) within the window; a socket without tcp info cannot be judged and is
  not counted alive.
* ``ss -Hun``: connected UDP sockets (a server holding one per client); ss has no timers for UDP, so they
  count as they are, and UDP stays unknown (``udp_known``) unless conntrack is read.
* ``conntrack -L``: an entry is alive when it is ASSURED (replies seen; for UDP also traffic beyond a
  one-off exchange) in an open state (TCP: ESTABLISHED) and its timeout is fresh.  The kernel resets an
  entry's timeout to the protocol's value on every packet, so ``CT_TIMEOUT_S[proto] - timeout`` is the
  seconds since its last packet (±1 s: conntrack prints whole seconds).  ``CT_TIMEOUT_S`` holds the kernel
  defaults; a device whose ``nf_conntrack_*_timeout_*`` sysctls were lowered shows its live entries as
  stale, raised ones as alive longer.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from anycast_tui.model.types import ConntrackEntry, Flow, Socket
from anycast_tui.parse.conntrack import parse_conntrack
from anycast_tui.parse.errors import ParseError, with_command
from anycast_tui.parse.longtext import Text, is_blank
from anycast_tui.parse.ss import heard_ms, parse_ss

# Seconds since a flow's peer was last heard from for the flow to count as alive.  Above the TCP
# backoff an alive peer answers within (RTO 0.2 + 0.4 + 0.8 + 1.6 s = 3 s of loss recovery), ten times
# the 0.5 s cadence of the kernel test's active connection; well below the seconds-to-minutes between a
# failover and its restore, so the leftovers of one are gone by the next.  Above the poll interval (1 s by
# default) plus a poll's own time: a connection that a change just moved (its client got a RST from the new
# server at its next packet) was heard from on the old server less than one interval before the poll that
# sees the change, so it still counts in that change's impact.  The lab's traffic client (lab/traffic.py)
# is not paced by time: its flows speak once per round and are idle while held, so they count for 5 s
# after each round only.
LIVE_WINDOW_S = 5.0

# Timeout (s) the kernel gives an entry on every packet: nf_conntrack_tcp_timeout_established (5 days)
# and nf_conntrack_udp_timeout_stream (120 s, the assured UDP timeout), Linux defaults.
CT_TIMEOUT_S: dict[str, int] = {"tcp": 432000, "udp": 120}
CT_OPEN_STATES: dict[str, frozenset[str | None]] = {"tcp": frozenset({"ESTABLISHED"}), "udp": frozenset({None})}


@dataclass(frozen=True, slots=True)
class FlowRead:
    """What one device's flow outputs say: alive flows, leftovers excluded, whether UDP could be seen."""

    flows: tuple[Flow, ...]  # alive flows to the prefixes, deduplicated, in command order
    stale: int = 0  # distinct flows to the prefixes seen only as leftovers (not alive in any source)
    udp_known: bool = False  # conntrack was read and tracks: UDP flows (unconnected server sockets) are visible


def _tcp_alive(window_ms: float) -> Callable[[Socket], bool]:
    def alive(s: Socket) -> bool:
        ms = heard_ms(s)
        return ms is not None and ms <= window_ms
    return alive


def _ct_alive(window_s: float) -> Callable[[ConntrackEntry], bool]:
    def alive(e: ConntrackEntry) -> bool:
        full = CT_TIMEOUT_S.get(e.proto)
        return (full is not None and "ASSURED" in e.flags and e.state in CT_OPEN_STATES[e.proto]
                and e.timeout is not None and full - e.timeout <= window_s)
    return alive


def _read(cid: str, text: Text, window_s: float) -> list[tuple[Flow | None, bool]]:
    """(flow, alive) of each socket / entry of one command's output."""
    if cid == "flows_tcp":
        alive = _tcp_alive(window_s * 1000.0)
        return [(s.flow(), alive(s)) for s in parse_ss(text, netid="tcp", state="ESTAB")]
    if cid == "flows_udp":
        return [(s.flow(), True) for s in parse_ss(text, netid="udp")]
    ct_alive = _ct_alive(window_s)
    return [(e.flow(), ct_alive(e)) for e in parse_conntrack(text)]


FLOW_IDS: tuple[str, ...] = ("flows_tcp", "flows_udp", "flows_ct")


def _networks(prefixes: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p) for p in prefixes]


def flows_from_outputs(outputs: Mapping[str, Text], prefixes: Iterable[str], *,
                       window_s: float = LIVE_WINDOW_S) -> FlowRead:
    """Alive flows whose destination is in ``prefixes`` (all flows when there are none), deduplicated, in
    order; the leftovers counted apart.  ``udp_known`` when conntrack answered (``flows_ct`` among the
    outputs) with at least one entry, to anywhere: the kernel tracks a namespace only once a rule there
    needs conntrack, and a host that tracks lists at least the collector's own SSH connection, so an empty
    table means nothing is tracked and UDP is still unknown.  A ParseError names the command id
    (``flows_tcp: ...``).
    """
    nets = _networks(prefixes)
    alive: dict[Flow, None] = {}
    stale: set[Flow] = set()
    tracked = False
    for cid in FLOW_IDS:
        text = outputs.get(cid)
        if text is None or is_blank(text):
            continue
        try:
            read = _read(cid, text, window_s)
        except ParseError as exc:
            raise with_command(exc, cid) from None
        tracked = tracked or (cid == "flows_ct" and bool(read))
        for f, ok in read:
            if f is None:
                continue
            if nets:
                dst = ipaddress.ip_address(f.dst)
                if not any(dst.version == n.version and dst in n for n in nets):
                    continue
            if ok:
                alive.setdefault(f, None)
            else:
                stale.add(f)
    return FlowRead(tuple(alive), len(stale - alive.keys()), tracked)
