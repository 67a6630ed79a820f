"""Two collectors publishing the same devices (overlapping inventories) on a real nats-server: the viewer says so
once, keeps showing the first one's states for the shared devices (the other's are skipped and counted, so they
do not flap), and takes the other's when the first goes quiet."""

from __future__ import annotations

import logging

import nats

from anycast_tui.fleet.conn import NatsOptions, Retention
from anycast_tui.fleet.publisher import Publisher, ensure_stream
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.session import SimSession
from natsserver import NatsServer, wait_for


async def test_two_collectors_polling_one_device_are_told(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="anycast_tui.fleet")
    server = NatsServer(tmp_path)
    server.start()
    nc = await nats.connect(server.url)
    await ensure_stream(nc.jetstream(), Retention(max_age_s=600, max_bytes=64 * 2**20, kv_max_bytes=16 * 2**20))
    x, y = SimSession(SimFabric()), SimSession(SimFabric())
    names = list(x.sim.devices)
    mine_x, mine_y = names[:7], names[3:]  # leaf02 .. server01 in both
    shared = sorted(set(mine_x) & set(mine_y))
    assert "leaf03" in shared
    y.sim.fail_device("leaf03")  # the two disagree about leaf03: flapping between them would show
    # the same site and collector name twice (one config started on two hosts): told apart by their origin
    pub_x = Publisher(nc, site="o", collector="o", prefixes=x.timeline.anycast_prefixes, every_s=0.5,
                      instance="hostx:1")
    pub_y = Publisher(nc, site="o", collector="o", prefixes=y.timeline.anycast_prefixes, every_s=0.5,
                      instance="hosty:2")
    viewer = NatsSource(NatsOptions((server.url,)))

    def publish(session: SimSession, pub: Publisher, mine: list[str]) -> None:
        session.poll()
        for name in mine:
            pub.offer(session.timeline.snapshot.devices[name])

    try:
        await pub_x.start()
        publish(x, pub_x, mine_x)
        assert await pub_x.drain()
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set() and len(viewer.health()) == len(mine_x), "x's devices")
        await pub_y.start()
        for _ in range(5):  # both poll on, interleaved
            publish(y, pub_y, mine_y)
            publish(x, pub_x, mine_x)
            assert await pub_y.drain() and await pub_x.drain()
        await wait_for(lambda: len(viewer.health()) == len(names), "every device")
        await wait_for(lambda: viewer.overlaps.get(("o (hostx:1)", "o (hosty:2)")) == set(shared),
                       "the shared devices told")
        lines = [r.getMessage() for r in caplog.records if "both publish" in r.getMessage()]
        assert lines == ["collectors o (hostx:1) and o (hosty:2) both publish leaf02 (overlapping inventories "
                         "or shards?): this viewer shows o (hostx:1)'s for the devices they share"]
        raised = [e for e in viewer.timeline.events if e.kind is EventKind.FINDING_RAISED]
        assert len(raised) == 1 and "collectors-overlap" in raised[0].detail
        assert viewer.counters["duplicate"] >= len(shared)
        # x's view of leaf03, consistently: no unreachable / back flapping
        assert viewer.health()["leaf03"].status is HealthStatus.OK
        assert not [e for e in viewer.timeline.events
                    if e.kind in (EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK)]

        # x goes quiet: y's states of the shared devices are taken (y says leaf03 never answered)
        await pub_x.stop()

        def taken_over() -> bool:
            publish(y, pub_y, mine_y)
            h = viewer.health()
            # y's states of the shared devices take over once x's silence is judged (until y's next message
            # for one, it may show x's last state stale for a moment: a loaded machine sees that window)
            return h["leaf03"].status is HealthStatus.ERROR and all(
                h[n].status is HealthStatus.STALE for n in mine_x if n not in shared) and all(
                h[n].status is HealthStatus.OK for n in shared if n != "leaf03")
        await wait_for(taken_over, "y's shared devices taken and x's own devices stale once x is quiet")
        assert [e.device for e in viewer.timeline.events if e.kind is EventKind.DEVICE_UNREACHABLE] == ["leaf03"]
        h = viewer.health()  # x's own devices: stale, silence told per process (y, of the same name, is alive)
        assert all(h[n].status is HealthStatus.STALE and h[n].unobserved and "silent since" in h[n].error
                   and h[n].error.endswith("(hostx:1)") for n in mine_x if n not in shared)
        assert all(h[n].status is HealthStatus.OK for n in shared if n != "leaf03")
        assert len([r for r in caplog.records if "both publish" in r.getMessage()]) == 1
        assert viewer.counters["bad"] == 0
    finally:
        await viewer.stop()
        await pub_x.stop()
        await pub_y.stop()
        await nc.close()
        server.stop()
