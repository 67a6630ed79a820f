"""On the real BGP lab (FRR in namespaces, collected over SSH): FRR's RIB next to the kernel FIB, and the
impact of a failure counted on the live TCP connections the servers report with ``ss``."""

from __future__ import annotations

import asyncio
import time

import pytest

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.collect.poller import Poller
from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.lab.traffic import PORT
from anycast_tui.model.flows import live_flows
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import impact
from anycast_tui.model.rib import disagreements, rib_fib
from anycast_tui.model.types import Flow, HealthStatus, Role
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import LiveSession

from .labwalk import held_traffic, lab_flows

pytestmark = pytest.mark.kernel
ANY = f"{ANYCAST}/32"


async def _snapshot(lab: Lab):
    p = Poller(load_inventory(lab.cfg.inventory))
    try:
        return await p.poll_once(), {n: p.optional_errors(n) for n in p.inventory.names}
    finally:
        await p.stop()


def test_frr_rib_collected_and_agrees_with_the_fib(bgp_lab: Lab):
    # the lab waits for the spines' anycast paths only; zebra may still be installing other BGP routes into a
    # server's kernel then (one CI run: server01's loopback routes in BGP and zebra, not yet in the FIB).  Poll
    # until the FIB has caught up, as an operator would; a disagreement that stays fails below.
    deadline = time.monotonic() + 60
    while True:
        snap, errors = asyncio.run(_snapshot(bgp_lab))
        if time.monotonic() > deadline or not any(st.rib is not None and disagreements(st)
                                                  for st in snap.devices.values()):
            break
        time.sleep(1)
    for name, st in snap.devices.items():
        assert st.health.status is HealthStatus.OK, (name, st.health)
        if st.device.role is Role.CLIENT:
            assert st.rib is None
            continue
        assert st.device.platform == "frr" and st.rib is not None, name
        assert not errors[name], (name, errors[name])
        assert not disagreements(st), (name, disagreements(st))
    for s in bgp_lab.topo.role("spine"):
        c = rib_fib(snap.devices[s.name], ANY)
        assert c is not None and (c.bgp, c.zebra, c.kernel) == (4, 4, 4), (s.name, c)
        (mp,) = [b for b in snap.devices[s.name].rib.bgp if b.prefix == ANY]  # type: ignore[union-attr]
        assert mp.valid >= 4 and len(mp.multipath) == 4


def test_live_tcp_flows_counted_as_the_engine_counts_them(bgp_lab: Lab):
    assert bgp_lab.cfg.nohash_error is None, f"client tc program missing: {bgp_lab.cfg.nohash_error}"
    bgp_lab.start_services()
    flows = lab_flows(200, first_port=45000)
    tcp = sorted((Flow(6, f.src, f.sport, ANYCAST, PORT) for f in flows if f.proto == 6),
                 key=lambda f: (f.src, f.sport))
    inv = load_inventory(bgp_lab.cfg.inventory)

    async def run() -> tuple[LiveSession, ImpactTracker, object]:
        session = LiveSession(inv, interval_s=60.0)
        tracker = ImpactTracker(session.timeline, n_flows=500)
        try:
            first = await session.poll_once()
            bgp_lab.fail("leaf03")
            await asyncio.to_thread(bgp_lab.wait_converged)
            await session.poll_once()
            assert await asyncio.to_thread(tracker.wait, 120)
        finally:
            await session.stop()
            tracker.close()
        return session, tracker, first

    try:
        with held_traffic(bgp_lab, flows) as report:
            session, tracker, first = asyncio.run(run())
    finally:
        bgp_lab.restore("leaf03")
        bgp_lab.wait_converged()
    # the servers' ss, reversed, are exactly the client's TCP connections (UDP sockets are unconnected)
    assert sorted(live_flows(first, ANYCAST), key=lambda f: (f.src, f.sport)) == tcp  # type: ignore[arg-type]
    evs = [e for e in session.timeline.events if e.prefix == ANY]
    assert evs
    reset_total = 0
    for ev in evs:
        d, src = tracker.detail(ev), tracker.sources(ev)
        assert d is not None and src is not None
        seen = live_flows(d.before, ANYCAST)
        assert sorted(seen, key=lambda f: (f.src, f.sport)) == tcp
        # the lab has a client device: live flows enter there, as the kernels send them
        assert src["live"] == impact(d.before, d.after, FlowArray.from_flows(seen), "client").counts
        reset_total += src["live"]["tcp_reset"]
    real_resets = sum(1 for f, r in zip(flows, report) if f.proto == 6 and r["error"] is not None)
    # each change counts the connections it resets (before: delivered, after: elsewhere); summed over the
    # changes the failure made (one per device update), they are the connections that really died
    assert real_resets and reset_total == real_resets
