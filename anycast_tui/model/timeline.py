"""The live state of a monitoring session: the latest snapshot and every event so far.

Collectors hand the timeline one device state at a time (``update``) or a
whole snapshot (``apply``); the timeline diffs it against what it had, keeps
the events, and tells its listeners.  Pure bookkeeping, no I/O, no asyncio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from anycast_tui.model.events import diff, diff_device
from anycast_tui.model.types import DeviceState, Event, FabricSnapshot


@dataclass(frozen=True, slots=True)
class Change:
    """What one update did: the snapshots either side and the events between them."""

    before: FabricSnapshot | None
    after: FabricSnapshot
    events: tuple[Event, ...]
    # the devices whose state this update replaced (``update``: one); None: any may have (``apply``).  A bus
    # viewer updates one device per message, thousands a second: listeners look at these, not the fabric
    touched: frozenset[str] | None = None


Listener = Callable[[Change], None]


@dataclass
class Timeline:
    anycast_prefixes: tuple[str, ...] = ()
    max_events: int = 100_000
    clock: Callable[[], float] = time.time
    snapshot: FabricSnapshot | None = None
    events: list[Event] = field(default_factory=list)
    changes: int = 0  # number of updates applied
    dropped_events: int = 0  # events evicted by max_events (oldest first); reported, never silent
    _listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def update(self, state: DeviceState) -> Change:
        """Merge one device's newest state."""
        before = self.snapshot
        devices = dict(before.devices) if before is not None else {}
        prev = devices.get(state.device.name)
        devices[state.device.name] = state
        now = self._now_ms()
        after = FabricSnapshot(taken_at_ms=now, devices=devices, anycast_prefixes=self.anycast_prefixes)
        return self._commit(before, after, diff_device(prev, state, now), frozenset((state.device.name,)))

    def apply(self, snapshot: FabricSnapshot) -> Change:
        """Replace the whole fabric state (a full poll cycle, or a replayed keyframe)."""
        before = self.snapshot
        return self._commit(before, snapshot, diff(before, snapshot))

    def add(self, events: list[Event]) -> Change | None:
        """Events that come from outside the devices' states (health findings appearing and clearing): kept and
        told to the listeners like the diffs' (the snapshot unchanged); None before the first snapshot."""
        if self.snapshot is None or not events:
            return None
        return self._commit(self.snapshot, self.snapshot, list(events), frozenset())

    def _commit(self, before: FabricSnapshot | None, after: FabricSnapshot, events: list[Event],
                touched: frozenset[str] | None = None) -> Change:
        self.snapshot = after
        self.changes += 1
        if events:
            self.events.extend(events)
            excess = len(self.events) - self.max_events
            if excess > 0:
                del self.events[:excess]
                self.dropped_events += excess
        change = Change(before, after, tuple(events), touched)
        for listener in list(self._listeners):
            listener(change)
        return change
