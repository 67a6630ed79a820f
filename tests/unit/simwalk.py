"""Ground truth on the simulated fabric: its own ``route get`` per flow, walked hop by hop (forwarding path)."""

from __future__ import annotations

from typing import Sequence

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.paths import address_map
from anycast_tui.model.types import FabricSnapshot


def walk(sim: SimFabric, snap: FabricSnapshot, flows: FlowArray, entries: Sequence[str]) -> list[str]:
    """Where each flow ends (its answering device, or ``DEV: no route``), entering at ``entries[i]``."""
    owners = address_map(snap)
    out = []
    for f, dev in zip(flows.flows(), entries):
        for _ in range(8):
            r = sim.route_get(dev, f.dst, src=f.src, iif="swp99", proto=f.proto, sport=f.sport, dport=f.dport)
            if r is None:
                dev = f"{dev}: no route"
                break
            if r.type == "local":
                break
            dev = owners[r.nexthops[0].gateway]
        out.append(dev)
    return out
