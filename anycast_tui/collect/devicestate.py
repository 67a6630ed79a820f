"""One device's state from one read of it: the single place every source turns outputs into a ``DeviceState``.

The SSH poller (``poller.py``), the netlink collector (``netlink.py``) and the simulated session
(``session.SimSession``) each get a mapping command id -> output text, the way they get it (SSH channels,
netlink dumps rendered as ``ip -j`` prints them, the simulator's answers), and hand it here:

* the kernel's tables, interfaces and hash sysctls: :func:`anycast_tui.parse.device.build_device_state`
  (a ParseError there fails the read: those outputs are required);
* FRR's RIB and BGP multipath state (``frr_rib`` or its parts): :func:`anycast_tui.parse.frr_rib.rib_from_outputs`;
  a part that does not parse is left out, with its reason in :attr:`Assembled.optional_errors`;
* FRR's configured nexthop-groups (``frr_running``): :func:`anycast_tui.parse.frr_running.parse_nexthop_groups`,
  into ``DeviceState.frr_groups``; an output that does not parse is left out the same way;
* live flows (``flows_tcp`` / ``flows_udp`` / ``flows_ct``): :func:`anycast_tui.collect.flows.flows_from_outputs`,
  when the source was asked to read flows (``flow_prefixes`` not None);

so each source gets the same fields the same way.  The health of a read (OK since when, or STALE / ERROR
keeping the last good data) and the RIB-vs-FIB watch across reads are here too (:func:`ok_health`,
:func:`failed_state`, :func:`with_rib_watch`).

Why in ``collect/`` and not ``parse/``: which flows count as live is a collector's rule (a time window
against the device's timers, ``flows.py``), and this module joins it with the parsers; ``parse`` may not
import ``collect``.  It is pure: no I/O, no clock (the caller passes the time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from anycast_tui.collect.commands import FRR_RUNNING
from anycast_tui.collect.flows import flows_from_outputs
from anycast_tui.model.rib import watch as rib_watch
from anycast_tui.model.types import Device, DeviceState, Health, HealthStatus
from anycast_tui.parse.device import build_device_state
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.frr_rib import FRR_RIB_ID, RIB_PARTS, rib_from_outputs
from anycast_tui.parse.frr_running import parse_nexthop_groups
from anycast_tui.parse.longtext import Text, as_str

__all__ = ["RIB_PARTS", "Assembled", "StateBuilder", "assemble", "failed_state", "ok_health", "with_rib_watch"]


class StateBuilder(Protocol):
    """Required outputs -> the kernel's part of a DeviceState (``parse.device.build_device_state``)."""

    def __call__(self, device: Device, outputs: Mapping[str, Text], *, collected_at_ms: int,
                 health: Health) -> DeviceState: ...


@dataclass(frozen=True, slots=True)
class Assembled:
    """One read's state, and the optional parts (FRR RIB part id, ``frr_running``) left out of it with the reason."""

    state: DeviceState
    optional_errors: Mapping[str, str] = field(default_factory=dict)


def assemble(device: Device, outputs: Mapping[str, Text], *, collected_at_ms: int, health: Health,
             flow_prefixes: tuple[str, ...] | None = None,
             builder: StateBuilder = build_device_state) -> Assembled:
    """The DeviceState of one read's ``outputs`` (command id -> stdout).

    ``flow_prefixes``: None when the source does not read flows (``flows`` stays empty, UDP unknown);
    else the flows to these prefixes count (all flows when empty).  Pure: the same outputs give the same
    state, so a source may reuse the result while its outputs do not change.
    """
    state = builder(device, outputs, collected_at_ms=collected_at_ms, health=health)
    # FRR's outputs are read whole (vtysh's JSON is split into its documents first); the kernel's and the
    # flows' may be LongTexts, read a block at a time
    rib, errors = rib_from_outputs({k: as_str(v) for k, v in outputs.items() if k in (FRR_RIB_ID, *RIB_PARTS)})
    if rib is not None:
        state = dataclasses.replace(state, rib=rib)
    config = outputs.get(FRR_RUNNING.id)
    if config is not None:
        try:
            state = dataclasses.replace(state, frr_groups=parse_nexthop_groups(as_str(config)))
        except ParseError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            errors = {**errors, FRR_RUNNING.id: " ".join(f"{where}{exc.reason}".split())}
    if flow_prefixes is not None:
        read = flows_from_outputs(outputs, flow_prefixes)
        state = dataclasses.replace(state, flows=read.flows, flows_stale=read.stale, flows_udp_known=read.udp_known)
    return Assembled(state, errors)


def ok_health(prev: Health, now_ms: int) -> Health:
    """The health of a good read at ``now_ms``: OK since the first good read of this run of good ones."""
    since = prev.since_ms if prev.status is HealthStatus.OK and prev.since_ms is not None else now_ms
    return Health(HealthStatus.OK, since_ms=since, last_ok_ms=now_ms)


def failed_state(prev: DeviceState, now_ms: int, reason: str, *, permanent: bool = False) -> DeviceState:
    """The state after a failed read: the last good data, STALE with ``reason``; ERROR and no data when
    the device never had a good read.  ``since_ms`` is when the failures began."""
    failing = prev.health.status in (HealthStatus.STALE, HealthStatus.ERROR)
    since = prev.health.since_ms if failing and prev.health.since_ms is not None else now_ms
    last_ok = prev.health.last_ok_ms
    status = HealthStatus.STALE if last_ok is not None else HealthStatus.ERROR
    health = Health(status, since_ms=since, error=reason, last_ok_ms=last_ok, permanent=permanent)
    if status is HealthStatus.ERROR:
        return DeviceState(prev.device, health=health)
    return dataclasses.replace(prev, health=health)


def with_rib_watch(prev: DeviceState, state: DeviceState) -> DeviceState:
    """``state`` with FRR's RIB compared to its FIB across reads (``model.rib.watch``), when a RIB is read."""
    return rib_watch(prev, state) if state.rib is not None or prev.rib_watch is not None else state
