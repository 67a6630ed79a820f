"""A 3-node JetStream cluster (real nats-servers, routes on 127.0.0.1), the stream and KV at 3 replicas: the
node the collector is connected to — also the stream's leader — is killed; the collector fails over and keeps
publishing, the viewer keeps receiving, a device failing and coming back after the loss shows once each, and a
viewer joining after the loss finds every device's state in KV."""

from __future__ import annotations

import asyncio

import nats

from anycast_tui.fleet.conn import NatsOptions, Retention
from anycast_tui.fleet.publisher import Publisher, ensure_stream
from anycast_tui.fleet import wire
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.session import SimSession
from natsserver import NatsCluster, same_content, wait_for

RETENTION = Retention(max_age_s=600, max_bytes=64 * 2**20, kv_max_bytes=16 * 2**20, replicas=3)


async def _create(urls: list[str]) -> str:
    """The stream and KV at 3 replicas once the cluster has its JetStream leader; the stream leader's name."""
    nc = await nats.connect(urls)
    try:
        js = nc.jetstream()
        created = False

        async def attempt() -> bool:
            nonlocal created
            try:
                await ensure_stream(js, RETENTION)
                created = True
            except Exception:
                await asyncio.sleep(0.5)
            return created

        while not await attempt():
            pass
        info = await js.stream_info(wire.STREAM)
        assert info.config.num_replicas == 3
        return info.cluster.leader
    finally:
        await nc.close()


async def test_losing_one_node_loses_nothing(tmp_path):
    cluster = NatsCluster(tmp_path)
    cluster.start()
    nc = viewer = late = pub = None
    try:
        leader = cluster.node(await asyncio.wait_for(_create(cluster.urls), 120))
        others = [s.url for s in cluster.nodes if s is not leader]
        # the collector on the stream leader's node first (then the others); the viewer on the other two
        nc = await nats.connect([leader.url, *others], dont_randomize=True, max_reconnect_attempts=-1,
                                reconnect_time_wait=0.2)
        assert nc.connected_url.port == leader.port
        session = SimSession(SimFabric())
        names = list(session.sim.devices)
        pub = Publisher(nc, site="c", collector="c", prefixes=session.timeline.anycast_prefixes, every_s=2.0)
        await pub.start()

        def publish() -> None:
            session.poll()
            for st in session.timeline.snapshot.devices.values():
                pub.offer(st)

        publish()
        assert await pub.drain()
        viewer = NatsSource(NatsOptions(tuple(others)))
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set() and len(viewer.health()) == len(names)
                       and all(h.status is HealthStatus.OK for h in viewer.health().values()), "the viewer's devices")

        leader.kill()
        session.sim.fail_device("leaf03")

        def seen(status: HealthStatus) -> bool:
            publish()  # the collector polls on
            h = viewer.health()
            return h["leaf03"].status is status and all(h[n].status is HealthStatus.OK for n in names if n != "leaf03")

        await wait_for(lambda: seen(HealthStatus.STALE), "leaf03's failure after the node loss", timeout=120)
        assert nc.connected_url.port != leader.port  # the collector failed over
        session.sim.restore_device("leaf03")
        await wait_for(lambda: seen(HealthStatus.OK), "leaf03 back", timeout=120)
        assert await pub.drain()
        for _ in range(3):
            publish()
            assert await pub.drain()

        health = [(e.device, e.kind) for e in viewer.timeline.events
                  if e.kind in (EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK)]
        assert health == [("leaf03", EventKind.DEVICE_UNREACHABLE), ("leaf03", EventKind.DEVICE_BACK)]  # once each
        for name, st in session.timeline.snapshot.devices.items():
            assert same_content(st, viewer.timeline.snapshot.devices[name]), name

        # nothing lost: a viewer joining now, with one node of three gone, gets every device from KV
        late = NatsSource(NatsOptions(tuple(others)))
        await late.start()
        await wait_for(lambda: late.ready.is_set(), "the late viewer to join", timeout=120)
        assert late.counters["kv_devices"] == len(names)
        for name, st in session.timeline.snapshot.devices.items():
            assert same_content(st, late.timeline.snapshot.devices[name]), name
        assert viewer.counters["bad"] == late.counters["bad"] == 0
    finally:
        for src in (viewer, late):
            if src is not None:
                await src.stop()
        if pub is not None:
            await pub.stop()
        if nc is not None:
            await nc.close()
        cluster.stop()
