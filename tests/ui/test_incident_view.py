"""The TUI's incident views over the simulator (real parsers, fixed clock): what they show is checked against
the incident tracker's own model objects and the simulator, not the app's data."""

from __future__ import annotations

from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.demo import SimControls
from anycast_tui.lab.sim import SimFabric
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp

T0 = 1_764_000_000.0


class Clock:
    t = T0

    def __call__(self) -> float:
        return self.t


def _lab():  # noqa: ANN202
    clock = Clock()
    sim = SimFabric(clock=clock)
    session = SimSession(sim, clock=clock)
    session.poll()
    clock.t += 1
    session.poll()
    tracker, incidents = ImpactTracker(session.timeline), IncidentTracker(session.timeline)
    app = AnycastApp(session, controls=SimControls(sim), clock=clock, impact=tracker, incidents=incidents)
    return app, sim, session, clock, incidents


async def _poll(app, session, clock, pilot) -> None:  # noqa: ANN001
    clock.t += 1
    session.poll()
    assert app.impact.wait(60) and app.incidents.wait(60)
    app.flush()
    await pilot.pause()


async def test_the_header_follows_the_selected_incident_as_it_ends():
    app, sim, session, clock, incidents = _lab()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("right_square_bracket")
        assert app.selected_incident is None  # nothing happened yet: nothing to select
        sim.fail_device("leaf03")
        await _poll(app, session, clock, pilot)
        await pilot.press("right_square_bracket")
        (inc,) = incidents.incidents()
        assert app.selected_incident == inc and inc.open
        bar = str(app.query_one("#eventbar").render())
        imp = incidents.impact(inc.id)
        assert bar.startswith(f"◆ #{inc.id} 1/1 open ") and f"{imp.onset.estimated.moved:,} moved" in bar
        # the flows it marks are the incident's own (end to end), not an event's
        marks = app.flow_rows.marks.kind > 0
        assert marks.sum() == imp.onset.estimated.moved
        sim.restore_device("leaf03")
        await _poll(app, session, clock, pilot)
        (inc,) = incidents.incidents()
        assert not inc.open
        assert app.selected_incident == inc
        assert " over after " in str(app.query_one("#eventbar").render())
        # e: the same keys step the device events instead
        await pilot.press("e", "right_square_bracket", "left_square_bracket")
        assert app.selected_incident is None and app.selected is not None
        assert app.selected.device.startswith("spine") and app.selected in inc.restore_events
        assert "hop-local" in str(app.query_one("#eventbar").render())
    incidents.close()
    app.impact.close()


async def test_the_flows_view_is_right_from_the_first_complete_poll():
    """Mounted on a partial first snapshot (only spine01 polled yet), the Flows view follows the fabric as
    the rest of the first poll arrives: every sample flow ends on a server, as the simulator says."""
    clock = Clock()
    sim = SimFabric(clock=clock)
    session = SimSession(sim, clock=clock)
    session.poll(["spine01"])
    tracker = ImpactTracker(session.timeline, n_flows=2_000)
    app = AnycastApp(session, clock=clock, impact=tracker)
    async with app.run_test(size=(80, 24)) as pilot:
        assert tracker.wait(60)
        app.flush()
        await pilot.pause()
        first = tracker.paths(app.prefixes[0])
        assert first is not None and not set(first[1].final_labels()) <= {f"server0{i}" for i in range(1, 5)}
        clock.t += 1
        session.poll()
        app.flush()
        await pilot.pause()
        assert tracker.wait(60)
        app.flush()
        await pilot.pause()
        snap, paths = tracker.paths(app.prefixes[0])
        assert snap is session.timeline.snapshot
        assert set(paths.final_labels()) == {"server01", "server02", "server03", "server04"}
        assert app.flow_rows is not None and app.flow_rows.paths is paths
    tracker.close()
