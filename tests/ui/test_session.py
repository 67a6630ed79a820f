"""LiveSession over the real demo fabric (SSH on 127.0.0.1): timeline updates and per-device health."""

from __future__ import annotations

import asyncio

import pytest

from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.ui import view

pytestmark = pytest.mark.ssh


async def test_health_and_events_follow_the_fabric(demo):
    assert set(demo.session.health()) == set(demo.fabric.devices)
    assert all(h.status is HealthStatus.UNKNOWN for h in demo.session.health().values())
    rows = view.device_rows(demo.session.timeline.snapshot, 0)  # every device shown before its first poll
    assert len(rows) == len(demo.fabric.devices) and {(r.glyph, r.word) for r in rows} == {
        ("?", "waiting for first poll")}
    await demo.poll()
    assert all(h.status is HealthStatus.OK for h in demo.session.health().values())
    assert demo.session.timeline.events == []  # first sight is not an event

    await demo.fabric.fail("leaf02")
    await demo.poll()
    health = demo.session.health()
    assert health["leaf02"].status is HealthStatus.STALE and "refused" in (health["leaf02"].error or "")
    assert all(h.status is HealthStatus.OK for n, h in health.items() if n != "leaf02")
    kinds = {(e.device, e.kind) for e in demo.session.timeline.events}
    assert ("leaf02", EventKind.DEVICE_UNREACHABLE) in kinds
    assert ("spine01", EventKind.NEXTHOP_REMOVED) in kinds and ("spine02", EventKind.NEXTHOP_REMOVED) in kinds

    await demo.fabric.restore("leaf02")
    for _ in range(100):  # the collector retries after its backoff (0.5 s here): poll until it has
        await demo.poll()
        if demo.session.health()["leaf02"].status is HealthStatus.OK:
            break
        await asyncio.sleep(0.1)
    assert demo.session.health()["leaf02"].status is HealthStatus.OK
    assert ("leaf02", EventKind.DEVICE_BACK) in {(e.device, e.kind) for e in demo.session.timeline.events}


async def test_start_polls_on_its_own_and_stop_ends_it(demo):
    await demo.session.start()
    for _ in range(400):  # bounded wait for the first poll of every device (no timing assertion)
        if all(h.status is HealthStatus.OK for h in demo.session.health().values()):
            break
        await asyncio.sleep(0.05)
    assert all(h.status is HealthStatus.OK for h in demo.session.health().values())
    await demo.session.stop()
    changes = demo.session.timeline.changes
    await asyncio.sleep(1.2)  # longer than the 0.5 s interval: a running poller would have updated
    assert demo.session.timeline.changes == changes
    assert not demo.session.running


async def test_the_demo_fabric_keeps_its_keys_private_and_cleans_up(tmp_path):
    import stat

    from anycast_tui.lab.demo import DemoFabric

    fabric = DemoFabric(scenario=None)
    workdir = fabric.workdir
    await fabric.start()
    try:
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
        assert stat.S_IMODE(fabric.farm.client_key_path.stat().st_mode) == 0o600
        assert all(ep.host == "127.0.0.1" for ep in fabric.farm.endpoints.values())
        assert fabric.targets == ("leaf01", "leaf02", "leaf03", "leaf04")
    finally:
        await fabric.stop()
    assert not workdir.exists()
