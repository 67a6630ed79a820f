"""The order a collector publishes one poll's states in, read back from a real nats-server's stream: a device
whose health changed goes out before the large state messages of devices whose routes changed with it, so a
viewer shows a leaf going down without waiting for the spines' tables."""

from __future__ import annotations

import nats

from anycast_tui.fleet import wire
from anycast_tui.fleet.conn import Retention
from anycast_tui.fleet.publisher import Publisher, ensure_stream
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import HealthStatus, Role
from anycast_tui.session import SimSession
from natsserver import NatsServer


async def test_a_health_change_is_published_before_the_state_messages_of_its_poll(tmp_path):
    server = NatsServer(tmp_path)
    server.start()
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await ensure_stream(js, Retention(max_age_s=600, max_bytes=64 * 2**20, kv_max_bytes=16 * 2**20))
    session = SimSession(SimFabric())
    pub = Publisher(nc, site="b", collector="b", prefixes=session.timeline.anycast_prefixes, every_s=3600.0)
    try:
        await pub.start()
        session.poll()
        for st in session.timeline.snapshot.devices.values():
            pub.offer(st)
        assert await pub.drain()
        first = (await js.stream_info(wire.STREAM)).state.last_seq + 1

        session.sim.fail_device("leaf03")
        session.poll()
        snap = session.timeline.snapshot.devices
        assert snap["leaf03"].health.status is not HealthStatus.OK
        spines = [n for n in snap if session.sim.role(n) is Role.SPINE]
        for name in [*spines, *(n for n in snap if n not in spines and n != "leaf03"), "leaf03"]:
            pub.offer(snap[name])  # the leaf offered last, after the spines its failure changed
        assert await pub.drain()
        last = (await js.stream_info(wire.STREAM)).state.last_seq
        subjects = [(await js.get_msg(wire.STREAM, seq)).subject for seq in range(first, last + 1)]
        subjects = [s for s in subjects if not s.endswith(".heartbeat")]
        spine_states = [i for i, s in enumerate(subjects) if s in {wire.state_subject("b", n) for n in spines}]
        assert spine_states, "the spines' routes changed with the leaf: they publish state messages"
        leaf = [i for i, s in enumerate(subjects) if s.startswith("anycast.b.leaf03.")]
        assert len(leaf) == 1 and leaf[0] < min(spine_states), subjects
    finally:
        await pub.stop()
        await nc.close()
        server.stop()
