"""Where client flows enter the fabric, per snapshot: one rule for every surface.

* The inventory has client-facing routers (role ``client`` or ``border``, the
  lab's client router is one): flows enter there, and each router places them
  with its own tables, policy and seed (the tracer does that).  With several
  such routers the one a flow reaches is outside what we collect: each flow
  is pinned to one by a hash of its source address, and the model says so
  (``assumed``).
* Otherwise the upstream is modelled as ECMP over the spines: each flow is
  hashed (the kernel's L4 hash, policy 1, a fixed seed) and mapped by
  hash-threshold over the spines that are **reachable in this snapshot**, so a
  failed spine's flows really do land on the others.  ``assumed`` is True and
  every figure built on it says "ingress assumed".

Pure: snapshot and flows in, per-flow ingress (``paths.Ingress``) out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import linux_multipath_hash
from anycast_tui.model.mapping import hash_threshold
from anycast_tui.model.types import FabricSnapshot, HealthStatus, Role

ENTRY_ROLES = (Role.CLIENT, Role.BORDER)
UPSTREAM_SEED = 0x41544955  # the modelled upstream router's hash seed ("ATIU"); any fixed non-zero value


@dataclass(frozen=True, slots=True)
class IngressModel:
    """How flows were placed on entry devices, for labels ("ingress assumed: …")."""

    entries: tuple[str, ...]  # where flows may enter (reachable ones)
    assumed: bool  # True: the upstream is modelled, not collected
    note: str  # one line for humans

    @property
    def empty(self) -> bool:
        return not self.entries


def entry_devices(snapshot: FabricSnapshot) -> tuple[tuple[str, ...], bool]:
    """(reachable entry devices, whether they are client-facing routers); spines when there are none."""
    def up(names: list[str]) -> tuple[str, ...]:
        return tuple(n for n in names if snapshot.devices[n].health.status is HealthStatus.OK)

    borders = sorted(n for n, s in snapshot.devices.items() if s.device.role in ENTRY_ROLES)
    if borders:
        # a client-facing router that cannot be read still forwards as last seen: keep it
        return tuple(borders), True
    spines = sorted(n for n, s in snapshot.devices.items() if s.device.role is Role.SPINE)
    return up(spines), False


_HASHES: dict[tuple[int, int], tuple[FlowArray, np.ndarray]] = {}


def _upstream_hash(flows: FlowArray, policy: int) -> np.ndarray:
    """The modelled upstream's hash of every flow (it depends on the flows only: kept for the last few sets)."""
    key = (id(flows), policy)
    hit = _HASHES.get(key)
    if hit is not None and hit[0] is flows:
        return hit[1]
    h = linux_multipath_hash(flows, policy=policy, seed=UPSTREAM_SEED)
    if len(_HASHES) >= 8:
        _HASHES.pop(next(iter(_HASHES)))
    _HASHES[key] = (flows, h)
    return h


def ingress_of(snapshot: FabricSnapshot, flows: FlowArray) -> tuple[tuple[tuple[str, ...], np.ndarray] | None,
                                                                   IngressModel]:
    """Per flow, the device it enters at, factorised as ``(names, codes)`` (None: nowhere to enter)."""
    entries, border = entry_devices(snapshot)
    n = len(flows)
    if not entries:
        return None, IngressModel((), True, "no reachable entry device (no client router, no spine up)")
    if len(entries) == 1:
        what = "clients enter at" if border else "ingress assumed: all flows enter at"
        return (entries, np.zeros(n, np.int64)), IngressModel(entries, not border, f"{what} {entries[0]}")
    if border:
        # which border a client reaches is upstream of us: pin per client address (policy 0 = addresses)
        h = _upstream_hash(flows, 0)
        codes = hash_threshold(h, [1] * len(entries))
        return (entries, codes), IngressModel(entries, True,
                                              f"clients assumed spread over {', '.join(entries)} by address")
    h = _upstream_hash(flows, 1)
    codes = hash_threshold(h, [1] * len(entries))
    return (entries, codes), IngressModel(entries, True,
                                          f"ingress assumed: upstream ECMP over {', '.join(entries)}")
