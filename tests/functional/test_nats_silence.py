"""A silent collector on a real nats-server: its devices go stale on the viewer with the reason, as one finding
(data-not-collected), never as device failures or incidents; when it resumes they are fresh again without a
"back" event; a device that really failed meanwhile is reported once, when the collector says so."""

from __future__ import annotations

import asyncio

import nats

from anycast_tui.fleet.conn import NatsOptions, Retention
from anycast_tui.fleet.publisher import Publisher, ensure_stream
from anycast_tui.fleet.source import NatsSource
from anycast_tui.healthwatch import HealthWatch
from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.session import SimSession
from natsserver import NatsServer, wait_for


def _offer_all(session: SimSession, pub: Publisher) -> None:
    session.poll()
    for st in session.timeline.snapshot.devices.values():
        pub.offer(st)


def _kinds(viewer: NatsSource, *kinds: EventKind) -> list:
    return [e for e in viewer.timeline.events if e.kind in kinds]


async def test_silent_collector_is_stale_data_not_device_failures(tmp_path):
    server = NatsServer(tmp_path)
    server.start()
    nc = await nats.connect(server.url)
    await ensure_stream(nc.jetstream(), Retention(max_age_s=600, max_bytes=64 * 2**20, kv_max_bytes=16 * 2**20))
    session = SimSession(SimFabric())
    names = list(session.sim.devices)
    pub = Publisher(nc, site="b", collector="b", prefixes=session.timeline.anycast_prefixes, every_s=0.3)
    viewer = NatsSource(NatsOptions((server.url,)))
    loop = asyncio.get_running_loop()
    incidents = checks = None
    try:
        await pub.start()
        _offer_all(session, pub)
        assert await pub.drain()
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set() and len(viewer.health()) == len(names), "the viewer's devices")
        incidents = IncidentTracker(viewer.timeline)
        checks = HealthWatch(viewer.timeline, post=loop.call_soon_threadsafe, min_interval_s=0.2, settle_s=0.1)
        await wait_for(lambda: all(h.status is HealthStatus.OK for h in viewer.health().values()), "all fresh")

        await pub.stop()  # the collector goes silent (no heartbeat, no message)

        def stale() -> bool:
            return all(h.status is HealthStatus.STALE and h.unobserved and (h.error or "").startswith(
                "collector b silent since ") for h in viewer.health().values())

        await wait_for(stale, "every device stale with the collector's reason")
        raised = lambda: [e for e in _kinds(viewer, EventKind.FINDING_RAISED) if "data-not-collected" in e.subject]
        await wait_for(raised, "the stale-data finding")
        assert incidents.wait(30) and checks.wait(30)
        (ev,) = raised()  # one line for the whole collector
        assert "collector b silent since" in ev.detail and f"{len(names)} devices stale" in ev.detail
        assert "\n" not in ev.detail
        assert not _kinds(viewer, EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK)
        assert incidents.incidents() == []
        assert not [f for f in checks.report.findings if f.rule == "device-not-answering"]

        # meanwhile leaf03 really fails; the collector comes back (a new process: nothing of the old one's)
        session.sim.fail_device("leaf03")
        pub = Publisher(nc, site="b", collector="b", prefixes=session.timeline.anycast_prefixes, every_s=0.3)
        await pub.start()

        def resumed() -> bool:
            _offer_all(session, pub)
            h = viewer.health()
            return all(h[n].status is HealthStatus.OK for n in names if n != "leaf03") \
                and h["leaf03"].status is HealthStatus.STALE and not h["leaf03"].unobserved

        await wait_for(resumed, "the devices fresh again, leaf03 failed")
        await wait_for(lambda: [e for e in _kinds(viewer, EventKind.FINDING_CLEARED)
                                if "data-not-collected" in e.subject], "the stale-data finding cleared")
        for _ in range(3):  # more polls: nothing new
            _offer_all(session, pub)
            assert await pub.drain()
        assert incidents.wait(30) and checks.wait(30)
        assert [e.device for e in _kinds(viewer, EventKind.DEVICE_UNREACHABLE)] == ["leaf03"]  # the real one, once
        assert not _kinds(viewer, EventKind.DEVICE_BACK)  # no fake recovery
        assert len(raised()) == 1
        assert len([e for e in _kinds(viewer, EventKind.FINDING_CLEARED) if "data-not-collected" in e.subject]) == 1
        (inc,) = incidents.incidents()
        assert "leaf03 unreachable" in inc.cause and "leaf03" in inc.devices
        assert viewer.counters["bad"] == 0
    finally:
        if incidents is not None:
            incidents.close()
        await viewer.stop()
        await pub.stop()
        await nc.close()
        server.stop()
