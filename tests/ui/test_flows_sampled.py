"""The Flows view with the fabric's sampled traffic: the busiest sampled flows beside the synthetic sample, a
source column (``smp`` / ``syn``) shown only then, the filter words ``sampled`` / ``synthetic``, and each
sampled flow's ingress the spine it was sampled on."""

from __future__ import annotations

import ipaddress

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.sampled import SampledWindow
from anycast_tui.model.samples import ExportKind, FlowSample
from anycast_tui.model.types import Role
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.flowtable import FlowTable

T0 = 1_764_000_000.0
ANY = ipaddress.ip_address("192.0.2.53").packed


class Traffic:
    """What the app and the tracker read of a live session's sampled traffic (sampledtraffic.SampledTraffic)."""

    def __init__(self) -> None:
        self.window = SampledWindow(["192.0.2.53/32"])

    def flow_set(self, prefix: str, now: float):  # noqa: ANN201
        return self.window.flow_set(prefix, now=now)

    def agreements(self) -> dict:
        return {}


async def test_sampled_flows_join_the_flows_view_with_their_source_and_entry():
    sim = SimFabric(clock=lambda: T0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    traffic = Traffic()
    samples = [FlowSample("198.18.255.1", ExportKind.SFLOW, 1, 400, 3, 4, 4, 6, bytes([203, 0, 113, 250]), ANY, 50_000 + i, 443, received=T0) for i in range(30)]
    traffic.window.add("spine02", Role.SPINE, samples)
    tracker = ImpactTracker(session.timeline, n_flows=500)
    tracker.sampled = traffic
    tracker.clock = lambda: T0
    app = AnycastApp(session, clock=lambda: T0, impact=tracker, sampled=traffic)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert tracker.wait(60)
        app.flush()
        await pilot.press("3")
        await pilot.pause()
        app.flush()
        await pilot.pause()
        rows = app.flow_rows
        table = app.query_one(FlowTable)
        assert rows.total == 530 and rows.counts()["sampled"] == 30
        assert table.header(100).plain.startswith("  src prot")
        await pilot.press("slash", *"sampled", "enter")
        await pilot.pause()
        assert len(rows.rows) == 30
        line = table.line_text(0, 100).plain
        assert line.split()[0] == "smp" and "203.0.113.250:50000" in line and " spine02 " in line
        await pilot.press("slash", "ctrl+u", *"synthetic", "enter")
        await pilot.pause()
        assert len(rows.rows) == 500
    tracker.close()
