"""same_picture: the UI skips rebuilding groups/topology/events only when nothing but poll times changed."""

from __future__ import annotations

import dataclasses

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import FabricSnapshot, Health, HealthStatus
from anycast_tui.model.views import same_picture


def _retimed(snap: FabricSnapshot, dt: int) -> FabricSnapshot:
    """What the poller hands over for an unchanged device: the same records, new times."""
    devices = {n: dataclasses.replace(s, collected_at_ms=(s.collected_at_ms or 0) + dt,
                                      health=dataclasses.replace(s.health, last_ok_ms=(s.health.last_ok_ms or 0) + dt))
               for n, s in snap.devices.items()}
    return dataclasses.replace(snap, taken_at_ms=snap.taken_at_ms + dt, devices=devices)


def test_new_poll_times_only_is_the_same_picture():
    sim = SimFabric()
    a = sim.snapshot(1_000)
    assert same_picture(a, a) and same_picture(a, _retimed(a, 1000))
    assert not same_picture(None, a) and not same_picture(a, None)


def test_a_failure_or_a_health_change_is_a_new_picture():
    sim = SimFabric()
    a = sim.snapshot(1_000)
    sim.fail_device("leaf03")
    assert not same_picture(a, sim.snapshot(2_000))
    spine = a.devices["spine01"]
    stale = dataclasses.replace(spine, health=Health(HealthStatus.STALE, since_ms=5, error="x: connection refused"))
    assert not same_picture(a, dataclasses.replace(a, devices={**a.devices, "spine01": stale}))
    fewer = dataclasses.replace(spine, routes=spine.routes[1:])
    assert not same_picture(a, dataclasses.replace(a, devices={**a.devices, "spine01": fewer}))
    assert not same_picture(a, dataclasses.replace(a, devices={k: v for k, v in a.devices.items() if k != "spine01"}))
