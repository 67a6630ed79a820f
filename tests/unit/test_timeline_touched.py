"""A timeline change names the devices whose state it replaced, so listeners of a bus viewer (one update per
message, thousands a second) look at those and not at the whole fabric; what they conclude is the same."""

from __future__ import annotations

from dataclasses import replace

from anycast_tui.healthwatch import HealthWatch
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import Health, HealthStatus


def test_update_names_its_device_apply_names_none_add_names_nothing():
    sim = SimFabric()
    tl = Timeline()
    seen: list[Change] = []
    tl.subscribe(seen.append)
    snap = sim.snapshot(1)
    tl.apply(snap)
    st = snap.devices["leaf01"]
    tl.update(replace(st, collected_at_ms=2))
    tl.add([])  # nothing to add: no change
    assert [c.touched for c in seen] == [None, frozenset({"leaf01"})]


def test_health_checks_see_a_health_change_in_an_update_and_ignore_an_unchanged_poll():
    snap = SimFabric().snapshot(1)
    before = Timeline()
    before.apply(snap)
    st = snap.devices["leaf03"]
    quiet = before.update(replace(st, collected_at_ms=2))
    down = before.update(replace(st, health=Health(HealthStatus.STALE, 3, "connection refused", 1)))
    assert not HealthWatch._matters(quiet) and HealthWatch._matters(down)
