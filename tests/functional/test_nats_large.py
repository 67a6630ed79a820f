"""A device state larger than the server's max_payload, on a real nats-server configured with a small one: it
is published in pieces (full and delta), a viewer following the stream and one joining later (its KV entry
then names the stream message) both get it whole; one that would take more than MAX_PARTS pieces is not
published, said in one line, and the viewer keeps the last state it had."""

from __future__ import annotations

import dataclasses
import logging
import random

import nats

from anycast_tui.fleet import wire
from anycast_tui.fleet.conn import NatsOptions, Retention
from anycast_tui.fleet.publisher import Publisher, ensure_stream
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import Nexthop, Route
from anycast_tui.session import SimSession
from natsserver import NatsServer, same_content, wait_for

MAX_PAYLOAD = 8192


def _big(state, n: int, seed: int):
    """``state`` with ``n`` more routes (as a border leaf's table would have), hard to compress."""
    rnd = random.Random(seed)
    extra = tuple(Route(dst=f"10.{i // 256}.{i % 256}.0/24", family=4, protocol="bgp", metric=rnd.randrange(1000),
                        nexthops=(Nexthop(gateway=f"172.16.{rnd.randrange(256)}.{rnd.randrange(256)}", dev="swp1"),))
                  for i in range(n))
    return dataclasses.replace(state, routes=state.routes + extra)


async def test_a_state_over_max_payload_is_published_in_pieces(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="anycast_tui.collect")
    server = NatsServer(tmp_path, config=f"max_payload: {MAX_PAYLOAD}\n")
    server.start()
    nc = await nats.connect(server.url)
    assert nc.max_payload == MAX_PAYLOAD
    await ensure_stream(nc.jetstream(), Retention(max_age_s=600, max_bytes=64 * 2**20, kv_max_bytes=16 * 2**20))
    session = SimSession(SimFabric())
    session.poll()
    states = dict(session.timeline.snapshot.devices)
    states["leaf01"] = big = _big(states["leaf01"], 3000, 1)
    assert len(wire.dumps(wire.state_body("s", "s", big, wire.FIELDS, full=True, prev_seq=None))) > 3 * MAX_PAYLOAD
    pub = Publisher(nc, site="s", collector="s", prefixes=session.timeline.anycast_prefixes, every_s=1.0)
    viewer = NatsSource(NatsOptions((server.url,)))
    late = None
    try:
        await pub.start()
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set(), "the viewer to join")
        for st in states.values():
            pub.offer(st)
        assert await pub.drain()
        await wait_for(lambda: len(viewer.health()) == len(states), "every device on the viewer")
        await wait_for(lambda: same_content(viewer.timeline.snapshot.devices["leaf01"], big), "leaf01 whole")
        assert pub.stats.split >= 1 and pub.stats.kv_refs >= 1 and pub.stats.too_large == 0

        # a delta that is itself over max_payload (the route table travels whole)
        changed = dataclasses.replace(big, routes=big.routes[:-1], collected_at_ms=big.collected_at_ms + 1000)
        pub.offer(changed)
        assert await pub.drain()
        await wait_for(lambda: same_content(viewer.timeline.snapshot.devices["leaf01"], changed), "the delta whole")
        assert pub.stats.state_delta >= 1

        # a viewer joining now: leaf01's KV entry names the stream message; the state is read from there
        late = NatsSource(NatsOptions((server.url,)))
        await late.start()
        await wait_for(lambda: late.ready.is_set(), "the late viewer to join")
        assert late.counters["kv_devices"] == len(states)
        for name, st in viewer.timeline.snapshot.devices.items():
            assert same_content(st, late.timeline.snapshot.devices[name]), name

        # more pieces than MAX_PARTS: not published, one line; the viewers keep the state they had
        monkeypatch.setattr(wire, "MAX_PARTS", 2)
        huge = dataclasses.replace(_big(states["leaf01"], 6000, 2), collected_at_ms=big.collected_at_ms + 2000)
        pub.offer(huge)
        assert await pub.drain()
        lines = [r.getMessage() for r in caplog.records if "not published" in r.getMessage()]
        assert len(lines) == 1 and "leaf01: state not published:" in lines[0] and "more than 2 pieces" in lines[0]
        assert pub.stats.too_large == 1
        assert same_content(viewer.timeline.snapshot.devices["leaf01"], changed)
        assert viewer.counters["bad"] == late.counters["bad"] == 0
    finally:
        for src in (viewer, late):
            if src is not None:
                await src.stop()
        await pub.stop()
        await nc.close()
        server.stop()
