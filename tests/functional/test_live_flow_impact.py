"""Impact on live flows: the simulated fabric over real SSH, its servers answering ``ss`` with real-looking
connections to the anycast address; an event's live counts are the engine's counts for exactly those tuples."""

from __future__ import annotations

import asyncio

import pytest

from anycast_tui.collect.commands import FLOW_COMMANDS
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.model.flows import live_flows
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import impact
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.types import Flow
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import LiveSession
from anycast_tui.ui.view import impact_text

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)
TCP_LINE, UDP_LINE = (c.line for c in FLOW_COMMANDS["ss"])
ANY = "192.0.2.53"
SERVERS = ("server01", "server02", "server03", "server04")


def _flows(n: int) -> list[Flow]:
    """n client -> anycast flows, TCP to 443 and UDP to 53, from 203.0.113.0/24."""
    out = []
    for i in range(n):
        tcp = i % 3 != 0
        out.append(Flow(6 if tcp else 17, f"203.0.113.{1 + i % 200}", 20000 + i, ANY, 443 if tcp else 53))
    return out


def _ss(flows: list[Flow], tcp: bool) -> str:
    """``ss -Htin state established`` (no state column, tcp info heard 40 ms ago) / ``ss -Hun`` lines as a
    server prints them."""
    lines = []
    for f in flows:
        local, peer = f"{f.dst}:{f.dport}", f"{f.src}:{f.sport}"
        lines.append(f"0      0      {local:<22} {peer}" if tcp else f"ESTAB  0      0      {local:<22} {peer}")
        if tcp:
            lines.append("\t cubic wscale:7,7 rto:204 rtt:0.05/0.02 mss:1448 cwnd:10 lastsnd:40 lastrcv:40 lastack:40")
    if not tcp:
        lines.append("UNCONN 0      0      0.0.0.0:53             0.0.0.0:*")  # the listener: no flow
    return "\n".join(lines) + "\n"


async def test_live_flow_counts_equal_the_engine_for_those_tuples(make_farm):
    sim = SimFabric(SimConfig())
    flows = _flows(240)
    per_server = {s: flows[i * 60:(i + 1) * 60] for i, s in enumerate(SERVERS)}
    flows = [f for s in SERVERS for p in (6, 17) for f in per_server[s] if f.proto == p]  # as polled: ss -t, ss -u

    def handler(name: str):
        base = sim.handler(name)

        def answer(line: str) -> CommandResult:
            if name in per_server and line == TCP_LINE:
                return CommandResult(_ss([f for f in per_server[name] if f.proto == 6], True))
            if name in per_server and line == UDP_LINE:
                return CommandResult(_ss([f for f in per_server[name] if f.proto == 17], False))
            return base(line)
        return answer

    farm = await make_farm({n: handler(n) for n in sim.devices})
    inv = farm.inventory(sim.roles(), platform="sim", flow_sources=("ss",), **FAST)
    session = LiveSession(inv, interval_s=60.0)
    tracker = ImpactTracker(session.timeline, n_flows=500)
    try:
        first = await session.poll_once()
        assert first is not None
        assert live_flows(first, ANY) == flows  # every server's sockets, reversed to client -> anycast, in order
        assert all(first.devices[s].flows for s in SERVERS)
        sim.apply("fail_device", "leaf02")
        await session.poll_once()
        assert await asyncio.to_thread(tracker.wait, 60)
    finally:
        await session.stop()
        tracker.close()
    evs = [e for e in session.timeline.events if e.prefix == f"{ANY}/32"]
    assert evs
    arr = FlowArray.from_flows(flows)
    moved_any = False
    for ev in evs:
        d, src = tracker.detail(ev), tracker.sources(ev)
        assert d is not None and src is not None
        # no client device: live flows enter as the sample does (model.ingress: an assumed upstream ECMP
        # over the spines reachable on each side)
        ing_b, ing_a = ingress_of(d.before, arr)[0], ingress_of(d.after, arr)[0]
        want = impact(d.before, d.after, arr, ing_b, ingress_after=ing_a).counts
        assert src["live"] == want
        assert src["synthetic"]["flows"] == 500
        counts = tracker.counts(ev)
        assert counts is not None and counts["live_flows"] == 240 and counts["live_moved"] == want["moved"]
        assert tracker.source_counts(ev) == {f"live_{k}": v for k, v in want.items()}
        if want["moved"]:
            moved_any = True
            assert want["tcp_reset"] and want["udp"]
            assert f"live: {want['tcp_reset']} TCP flows moved (reset), {want['udp']} UDP" in impact_text(counts)
    assert moved_any


def test_live_flows_skip_devices_whose_data_is_not_fresh():
    import dataclasses

    from anycast_tui.model.types import Device, DeviceState, FabricSnapshot, Health, HealthStatus, Role

    f1, f2, other = Flow(6, "203.0.113.1", 1000, ANY, 443), Flow(17, "203.0.113.2", 53, ANY, 53), \
        Flow(6, "203.0.113.3", 1000, "192.0.2.54", 443)
    ok = Health(HealthStatus.OK)
    snap = FabricSnapshot(0, {
        "s1": DeviceState(Device("s1", Role.SERVER), health=ok, flows=(f1, other)),
        "s2": DeviceState(Device("s2", Role.SERVER), health=ok, flows=(f1, f2)),
        "s3": dataclasses.replace(DeviceState(Device("s3", Role.SERVER), flows=(Flow(6, "203.0.113.9", 9, ANY, 443),)),
                                  health=Health(HealthStatus.STALE)),
    })
    assert live_flows(snap, ANY) == [f1, f2]
