"""Sampled traffic end to end in a live session: the simulated fabric polled over real SSH, its spines'
samples sent as sFlow v5 datagrams over real UDP to the session's flow-export collector (``[flow_export]``).

Each sample's output port is the simulator's own ``route get`` answer on that spine (the interface the packet
would leave on), so the placement check must agree on every one; after leaf03 fails, the incident's sampled
count must be the flows whose answering server changed, walked hop by hop by the simulator from the spine
each flow was sampled on."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
import sflow_build as sb  # noqa: E402
import simwalk  # noqa: E402

from anycast_tui import sampledtraffic  # noqa: E402
from anycast_tui.collect.inventory import FlowExportConfig  # noqa: E402
from anycast_tui.incidenttracker import IncidentTracker  # noqa: E402
from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.model.flows import synthetic_flows  # noqa: E402
from anycast_tui.session import LiveSession  # noqa: E402

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)
AGENTS = {"spine01": "198.18.255.1", "spine02": "198.18.255.2"}
FLOWS = synthetic_flows(60, 400, seed=5)
RATE = 1


def _spine01_says(sim: SimFabric, k: int) -> str:
    r = sim.route_get("spine01", "192.0.2.53", src=f"203.0.113.{100 + k}", iif="swp99", proto=17, sport=62000 + k,
                      dport=53)
    return r.nexthops[0].dev


def entry(i: int) -> str:
    return "spine01" if int(FLOWS.sport[i]) % 2 else "spine02"


def datagrams(sim: SimFabric) -> tuple[list[bytes], int]:
    """Per spine, its flows' samples, 8 per datagram; the output port the simulator's route get answer."""
    per: dict[str, list[bytes]] = {s: [] for s in AGENTS}
    for i, f in enumerate(FLOWS.flows()):
        spine = entry(i)
        r = sim.route_get(spine, f.dst, src=f.src, iif="swp99", proto=f.proto, sport=f.sport, dport=f.dport)
        ifindex = {x.name: x.ifindex for x in sim.interfaces(spine)}[r.nexthops[0].dev]
        l4 = sb.tcp(f.sport, f.dport) if f.proto == 6 else sb.udp(f.sport, f.dport)
        frame = sb.ether(sb.ipv4(f.src, f.dst, f.proto, l4), 0x0800)
        per[spine].append(sb.flow_sample([sb.raw_header(frame)], seq=len(per[spine]) + 1, rate=RATE, inp=99,
                                         out=ifindex))
    out = []
    for spine, samples in per.items():
        for k in range(0, len(samples), 8):
            out.append(sb.datagram(samples[k:k + 8], agent=AGENTS[spine], seq=k // 8 + 1))
    return out, len(FLOWS)


async def test_placement_agrees_and_the_incidents_sampled_count_is_the_simulators(make_farm):
    sim = SimFabric(SimConfig())
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    inv = farm.inventory(sim.roles(), platform="sim", **FAST)
    inv = replace(inv, devices=tuple(replace(d, sflow_agent=AGENTS.get(d.name)) for d in inv.devices),
                  flow_export=FlowExportConfig("127.0.0.1", 0, window_s=300))
    session = LiveSession(inv, interval_s=60.0)
    export = sampledtraffic.from_inventory(inv, session.timeline)
    assert export is not None
    await export.start()
    incidents = IncidentTracker(session.timeline, sampled_of=export.traffic.sampled_of)
    try:
        first = await session.poll_once()
        assert first is not None
        data, n = datagrams(sim)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in data:
                s.sendto(d, ("127.0.0.1", export.collector.port))
        for _ in range(500):
            if sum(st.samples for st in export.collector.stats.values()) >= n:
                break
            await asyncio.sleep(0.01)
        stats = export.collector.stats
        assert stats["spine01"].samples + stats["spine02"].samples == n and export.collector.unknown == 0
        export.flush()
        agreements = export.traffic.agreements()
        for spine in AGENTS:
            a = agreements[spine]
            assert a.compared == sum(1 for i in range(n) if entry(i) == spine)
            assert a.agreed == a.compared and a.exact and a.text.startswith("= 100 % of ")
        # leaf03 fails: which sampled flows moved, by the simulator's own answers from their entry spine
        entries = [entry(i) for i in range(n)]
        before = simwalk.walk(sim, session.timeline.snapshot, FLOWS, entries)
        sim.apply("fail_device", "leaf03")
        await session.poll_once()
        await session.poll_once()
        after = simwalk.walk(sim, session.timeline.snapshot, FLOWS, entries)
        moved = sum(a != b for a, b in zip(before, after))
        assert moved > 0
        assert await asyncio.to_thread(incidents.wait, 60)
        (inc,) = incidents.incidents()
        sc = incidents.impact(inc.id).onset.sampled
        assert sc is not None and sc.flows == n and sc.rate == "1:1"
        assert sc.moved == moved
        assert sc.tcp_reset == sum(a != b and int(FLOWS.proto[i]) == 6
                                   for i, (a, b) in enumerate(zip(before, after)))
        lines = export.lines()
        assert any(line.startswith(f"flow export on 127.0.0.1:{export.collector.port}: spine01: ") for line in lines)
        assert any("placement checked on spine01: = 100 % of" in line for line in lines)
        body = export.to_json(0.0 + max(st.last_seen for st in stats.values()))
        top = body["prefixes"]["192.0.2.53/32"]
        assert top["flows"] == n and len(top["top"]) == n
        assert {str(ipaddress.ip_address(r[1])) for r in top["top"]} <= {str(a) for a in
                                                                        ipaddress.ip_network("203.0.113.0/24")}
        # samples that left elsewhere than the model says: listed, and a device modelled exact raises an event
        wrong = [sb.flow_sample([sb.raw_header(sb.ether(sb.ipv4(f"203.0.113.{200 + k % 50}", "192.0.2.53", 17,
                                                                 sb.udp(61000 + k, 53)), 0x0800))],
                                seq=1000 + k, rate=RATE, inp=99, out=4242) for k in range(30)]  # no such port
        ifx = {i.name: i.ifindex for i in sim.interfaces("spine01")}
        bad = [sb.flow_sample([sb.raw_header(sb.ether(sb.ipv4(f"203.0.113.{100 + k}", "192.0.2.53", 17,
                                                               sb.udp(62000 + k, 53)), 0x0800))],
                              seq=2000 + k, rate=RATE, inp=99, out=ifx["swp1"] if k % 2 else ifx["swp4"])
               for k in range(40)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(sb.datagram(wrong[:8], agent=AGENTS["spine01"], seq=500), ("127.0.0.1", export.collector.port))
            for k in range(0, 40, 8):
                s.sendto(sb.datagram(bad[k:k + 8], agent=AGENTS["spine01"], seq=501 + k // 8),
                         ("127.0.0.1", export.collector.port))
        for _ in range(500):
            if stats["spine01"].samples >= sum(1 for i in range(n) if entry(i) == "spine01") + 48:
                break
            await asyncio.sleep(0.01)
        export.flush()
        await asyncio.sleep(0.05)  # the event is handed to this loop, which owns the timeline
        a = export.traffic.agreements()["spine01"]
        assert a.unmatched == 8  # an output port the device does not have is not compared
        dis = len(bad) - sum(1 for k in range(40) if _spine01_says(sim, k) == ("swp1" if k % 2 else "swp4"))
        assert a.compared - a.agreed == dis > 0
        events = [e for e in session.timeline.events if e.kind.value == "placement_disagrees"]
        assert [e.device for e in events] == ["spine01"]
        assert f"{dis} of {a.compared:,} sampled packets left elsewhere than predicted" in events[0].detail
    finally:
        incidents.close()
        await export.stop()
        await session.stop()
