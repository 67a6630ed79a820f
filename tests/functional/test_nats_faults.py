"""Bad input and a lost bus on a real nats-server: garbage, truncated, wrong-schema and wrong-subject messages
are counted and skipped with one line each, a newer schema is refused saying so, and the viewer goes on; a
viewer whose NATS server goes away says so, shows every device stale, reconnects and catches up without
duplicating an event."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

import nats

from anycast_tui.fleet import wire
from anycast_tui.fleet.conn import NatsOptions, Retention
from anycast_tui.fleet.publisher import Publisher, ensure_stream
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.record import schema
from anycast_tui.record.schema import pack
from anycast_tui.session import SimSession
from natsserver import NatsServer, wait_for


def _offer_all(session: SimSession, pub: Publisher) -> None:
    session.poll()
    for st in session.timeline.snapshot.devices.values():
        pub.offer(st)


def _health(source: NatsSource, name: str):
    snap = source.timeline.snapshot
    return snap.devices[name].health if snap is not None and name in snap.devices else None


@contextlib.asynccontextmanager
async def _bus(tmp_path, site: str = "b"):
    """A nats-server, a publisher of the in-process simulated fabric (every device published once) and a
    viewer that has every device; all stopped after."""
    server = NatsServer(tmp_path)
    server.start()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_stream(nc.jetstream(), Retention(max_age_s=600, max_bytes=64 * 2**20, kv_max_bytes=16 * 2**20))
    session = SimSession(SimFabric())
    pub = Publisher(nc, site=site, collector=site, prefixes=session.timeline.anycast_prefixes, every_s=2.0)
    viewer = NatsSource(NatsOptions((server.url,)))
    try:
        await pub.start()
        _offer_all(session, pub)
        assert await pub.drain()
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set() and len(viewer.health()) == 10, "the viewer's devices")
        yield server, nc, session, pub, viewer
    finally:
        await viewer.stop()
        await pub.stop()
        await nc.close()
        server.stop()


async def test_garbage_and_newer_schema_counted_and_skipped(tmp_path, caplog, monkeypatch, zlib_bomb):
    caplog.set_level(logging.WARNING, logger="anycast_tui.fleet")
    monkeypatch.setattr(schema, "MAX_INFLATED", 4 << 20)  # the default is 1 GiB: the same code at a test's size
    async with _bus(tmp_path) as (server, nc, session, pub, viewer):
        js = nc.jetstream()
        good = wire.dumps(wire.state_body("b", "b", session.timeline.snapshot.devices["leaf01"], wire.FIELDS,
                                          full=True, prev_seq=None))
        bad = [("anycast.b.leaf01.state", b"\x00\xffgarbage"),
               ("anycast.b.leaf01.state", good[: len(good) // 2]),  # truncated
               ("anycast.b.leaf01.state", pack({"v": 1, "k": "f", "x": {"routes": 5}})),  # wrong shape
               ("anycast.b.leaf01.health", pack([1, 2, 3])),  # not an object
               ("anycast.b.leaf01.bogus", good),  # not one of our subjects
               ("anycast.b.leaf01.state", zlib_bomb(64 << 20))]  # 64 MiB from 64 kB
        for subject, data in bad:
            await js.publish(subject, data, stream=wire.STREAM)
        await js.publish("anycast.b.leaf01.state", pack({"v": 2, "dev": "leaf01", "future": True}),
                         stream=wire.STREAM)
        await wait_for(lambda: viewer.counters["bad"] + viewer.counters["newer"] == len(bad) + 1,
                       "every bad message counted")
        assert viewer.counters["bad"] == len(bad) and viewer.counters["newer"] == 1
        skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert len(skipped) == len(bad) + 1 and all("\n" not in s for s in skipped)
        assert any("message schema v2 is newer than this anycast-tui reads (v1): upgrade the viewer" in s
                   for s in skipped)
        assert sum("payload inflates past 4 MiB, refused" in s for s in skipped) == 1
        # and the viewer goes on
        session.sim.fail_device("leaf02")
        _offer_all(session, pub)
        await wait_for(lambda: (h := _health(viewer, "leaf02")) and h.status is HealthStatus.STALE, "leaf02 stale")
        assert [e.device for e in viewer.timeline.events if e.kind is EventKind.DEVICE_UNREACHABLE] == ["leaf02"]


async def test_viewer_loses_the_bus_says_so_and_catches_up(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="anycast_tui.fleet")
    async with _bus(tmp_path) as (server, nc, session, pub, viewer):
        await wait_for(lambda: all(h.status is HealthStatus.OK for h in viewer.health().values()), "all fresh")
        server.stop()
        reason = f"NATS 127.0.0.1:{server.port} disconnected since"
        await wait_for(lambda: all(h.status is HealthStatus.STALE and reason in (h.error or "")
                                   for h in viewer.health().values()), "every device stale while NATS is away")
        assert sum("disconnected from" in r.getMessage() for r in caplog.records) == 1
        session.sim.fail_device("leaf03")  # meanwhile: the collector cannot publish; it retries
        _offer_all(session, pub)
        await asyncio.sleep(0.3)
        server.start()  # same port, same store
        await wait_for(lambda: (h := _health(viewer, "leaf03")) and h.status is HealthStatus.STALE
                       and "leaf03" in (h.error or ""), "leaf03's failure caught up", timeout=90)

        def fresh_again() -> bool:
            _offer_all(session, pub)
            return all(h.status is HealthStatus.OK for n, h in viewer.health().items() if n != "leaf03")

        await wait_for(fresh_again, "the other devices fresh again", timeout=90)
        assert any("reconnected" in r.getMessage() for r in caplog.records)
        down = [e for e in viewer.timeline.events if e.kind is EventKind.DEVICE_UNREACHABLE and e.device == "leaf03"]
        assert len(down) == 1  # caught up once, not duplicated


async def test_a_delta_without_its_base_is_repaired_from_the_stream(tmp_path):
    """A device whose full state is in the stream but not in KV (a collector killed between the two): the viewer
    joins after it, gets a delta, fetches the chain by sequence (direct get) and shows the right state."""
    async with _bus(tmp_path) as (server, nc, session, pub, viewer):
        js = nc.jetstream()
        base = session.timeline.snapshot.devices["leaf01"]
        ghost = dataclasses.replace(base, device=dataclasses.replace(base.device, name="ghost.1"))
        full = await js.publish(wire.state_subject("b", "ghost.1"), wire.dumps(
            wire.state_body("b", "b", ghost, wire.FIELDS, full=True, prev_seq=None)), stream=wire.STREAM)
        late = NatsSource(NatsOptions((server.url,)))
        try:
            await late.start()
            await wait_for(lambda: late.ready.is_set(), "the late viewer to join")
            assert "ghost.1" not in late.health()  # not in KV, and before where it follows the stream
            changed = dataclasses.replace(ghost, routes=ghost.routes[:-1])
            await js.publish(wire.state_subject("b", "ghost.1"), wire.dumps(
                wire.state_body("b", "b", changed, ("routes",), full=False, prev_seq=full.seq)), stream=wire.STREAM)
            await wait_for(lambda: "ghost.1" in late.health(), "the ghost repaired")
            got = late.timeline.snapshot.devices["ghost.1"]
            assert got.routes == changed.routes and got.interfaces == ghost.interfaces
            assert late.counters["gaps"] == 1 and late.counters["repaired"] == 1 and late.counters["bad"] == 0
        finally:
            await late.stop()
