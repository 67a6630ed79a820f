"""Placement checked against the fabric: a sampled packet's output interface is the device's own choice of next
hop for that flow — ground truth.  For each sample with an output port, on a device we place flows on, the
model's next hop (``placement.place`` on the device's collected state) is compared with the interface the
packet really left on.

Per device: samples compared, agreements, and the newest disagreements (flow, predicted, observed), bounded.
``DeviceAgreement.text`` is what the Fabric view's placement column shows: ``= 100 % of 3,210`` where the
model calls the device exact, ``≈ 71.4 % of 880`` where it calls it approximate.  A device called exact that
disagrees beyond noise (``suspect``: more than ``SUSPECT_SHARE`` of at least ``SUSPECT_MIN`` samples — the
only noise is a route that changed between the packet and the poll) is what the session raises an event for.

Pure: device state and samples in, counts out.  Not thread-safe by itself (``PlacementCheck`` is fed from one
thread).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass

import numpy as np

from anycast_tui.model.placement import EXACT, Outcome, compiled_for, place
from anycast_tui.model.sampled import flow_array
from anycast_tui.model.samples import FlowSample
from anycast_tui.model.types import DeviceState

DISAGREEMENTS_KEPT = 50
SUSPECT_SHARE = 0.01
SUSPECT_MIN = 20
PROTO = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}


@dataclass(frozen=True, slots=True)
class Disagreement:
    time: float  # UNIX seconds of the sample
    flow: str  # "udp 203.0.113.7:5353 → 192.0.2.53:53"
    predicted: str  # interface the model picked ("swp2"), or what it said ("no route", "local")
    observed: str  # interface the packet left on ("swp1"), or "ifindex 17" when the index is not known


@dataclass(frozen=True, slots=True)
class DeviceAgreement:
    device: str
    compared: int
    agreed: int
    exact: bool  # every compared sample was placed EXACT by the model
    disagreements: tuple[Disagreement, ...] = ()  # newest last
    unmatched: int = 0  # samples with an output ifIndex not among the device's interfaces (not compared)

    @property
    def share(self) -> float:
        return self.agreed / self.compared if self.compared else 1.0

    @property
    def text(self) -> str:
        if not self.compared:
            return ""
        pct = 100.0 * self.share
        figure = f"{pct:.0f}" if pct in (0.0, 100.0) else f"{pct:.1f}"
        return f"{'=' if self.exact else '≈'} {figure} % of {self.compared:,}"

    @property
    def suspect(self) -> bool:
        return self.exact and self.compared >= SUSPECT_MIN and (1 - self.share) > SUSPECT_SHARE


def flow_text(s: FlowSample) -> str:
    src, dst = ipaddress.ip_address(s.src), ipaddress.ip_address(s.dst)
    proto = PROTO.get(s.proto, str(s.proto))
    if s.family == 6:
        return f"{proto} [{src}]:{s.sport} → [{dst}]:{s.dport}"
    return f"{proto} {src}:{s.sport} → {dst}:{s.dport}"


def compare(state: DeviceState, samples: list[FlowSample]) -> tuple[int, int, bool, list[Disagreement], int]:
    """(compared, agreed, all exact, disagreements, unmatched) of one device's samples against its state.
    Samples without one output port, or whose flow the device delivers locally / drops, are not compared."""
    names = {i.ifindex: i.name for i in state.interfaces if i.ifindex is not None}
    use = [s for s in samples if s.output_if is not None and not s.output_discarded and not s.output_multiple]
    unmatched = sum(1 for s in use if s.output_if not in names)
    use = [s for s in use if s.output_if in names]
    if not use:
        return 0, 0, True, [], unmatched
    placed = place(compiled_for(state), flow_array(use))
    forward = placed.outcome() == Outcome.FORWARD
    predicted = placed.dev()
    observed = np.array([names[s.output_if] for s in use], dtype=object)
    agree = forward & np.asarray(predicted == observed, bool)
    compared, agreed = int(forward.sum()), int(agree.sum())
    exact = bool((placed.placement[forward] == EXACT).all())
    bad = [Disagreement(use[i].received, flow_text(use[i]), str(predicted[i] or "?"), str(observed[i]))
           for i in np.flatnonzero(forward & ~agree)]
    return compared, agreed, exact, bad, unmatched


class PlacementCheck:
    """Running agreement per device (see the module doc)."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}  # device -> [compared, agreed, inexact, unmatched]
        self._bad: dict[str, deque[Disagreement]] = {}

    def add(self, state: DeviceState, samples: list[FlowSample]) -> DeviceAgreement:
        compared, agreed, exact, bad, unmatched = compare(state, samples)
        name = state.device.name
        c = self._counts.setdefault(name, [0, 0, 0, 0])
        c[0] += compared
        c[1] += agreed
        c[2] += 0 if exact else 1
        c[3] += unmatched
        if bad:
            self._bad.setdefault(name, deque(maxlen=DISAGREEMENTS_KEPT)).extend(bad)
        return self.get(name)

    def get(self, device: str) -> DeviceAgreement:
        c = self._counts.get(device, [0, 0, 0, 0])
        return DeviceAgreement(device, c[0], c[1], c[2] == 0, tuple(self._bad.get(device, ())), c[3])

    def all(self) -> dict[str, DeviceAgreement]:
        return {d: self.get(d) for d in sorted(self._counts)}
