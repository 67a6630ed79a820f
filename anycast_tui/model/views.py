"""What the views read of a device or a snapshot, besides its hash space (``model.hashspace``): how far
placement can be trusted on a device (:func:`device_quality`), and whether a new snapshot changes the picture
at all (:func:`same_picture`) (pure, no UI).
"""

from __future__ import annotations

from dataclasses import dataclass

from anycast_tui.model.hashing import Placement
from anycast_tui.model.placement import (
    APPROXIMATE,
    EXACT,
    NEIGH_REASON,
    PLACEMENTS,
    SEED_REASON,
    SIMULATED_REASON,
    hash_doubt,
)
from anycast_tui.model.types import DeviceState

PLACEMENT_GLYPH = {Placement.EXACT: "=", Placement.APPROXIMATE: "≈", Placement.UNKNOWN: "?"}
SEED_HINT = "seed 0: set net.ipv4.fib_multipath_hash_seed on the device"


@dataclass(frozen=True, slots=True)
class Quality:
    """How far the engine can trust where ``device`` sends a flow, and (when not exact) why."""

    placement: Placement
    reason: str  # the engine's wording; "" when exact
    hint: str  # one short line for the Fabric view; "" when exact

    @property
    def glyph(self) -> str:
        return PLACEMENT_GLYPH[self.placement]


def device_quality(state: DeviceState) -> Quality | None:
    """The placement quality of ``state``'s hashed routes, as the placement engine labels them
    (:mod:`anycast_tui.model.placement`): unknown for seed 0, a hardware (ASIC) platform or an unmodelled
    hash policy; approximate under ``fib_multipath_use_neigh`` or with a resilient group whose bucket
    table was not collected; exact otherwise.  None before the first poll."""
    if state.collected_at_ms is None:
        return None
    code, reason = hash_doubt(state)
    if code == EXACT and state.hash.use_neigh:
        code, reason = APPROXIMATE, NEIGH_REASON
    if code == EXACT and any(g.type == "resilient" and not g.bucket_table for g in state.nexthops.groups):
        code, reason = APPROXIMATE, SIMULATED_REASON
    hint = SEED_HINT if reason == SEED_REASON else reason
    return Quality(PLACEMENTS[code], reason, hint)


def same_picture(a, b) -> bool:  # noqa: ANN001 - FabricSnapshot | None, twice
    """True when snapshot ``b`` differs from ``a`` only in poll times: the same devices with the same records
    (the poller hands back the very same objects when a device's outputs did not change) and the same health
    status, error and since.  The views of groups, topology and events then need no rebuilding — at 1 s polls
    of an idle fabric that is nearly every poll."""
    if a is b:
        return True
    if a is None or b is None or a.devices.keys() != b.devices.keys():
        return False
    for name, x in a.devices.items():
        y = b.devices[name]
        if x is y:
            continue
        hx, hy = x.health, y.health
        if (hx.status, hx.error, hx.since_ms, hx.permanent) != (hy.status, hy.error, hy.since_ms, hy.permanent):
            return False
        for f in ("routes", "nexthops", "interfaces", "hash", "flows", "rib", "device"):
            u, v = getattr(x, f), getattr(y, f)
            if u is not v and u != v:
                return False
    return True
