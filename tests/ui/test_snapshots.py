"""Snapshot tests (pytest-textual-snapshot): the simulator's state through the real parsers, fixed clock.

Regenerate after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look
at the SVGs in ``__snapshots__/`` before committing them.
"""

from __future__ import annotations

from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.demo import SimControls
from anycast_tui.lab.sim import SimFabric
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _app() -> tuple[AnycastApp, SimSession, Clock]:
    clock = Clock()
    sim = SimFabric(clock=clock)
    session = SimSession(sim, clock=clock)
    session.poll()
    clock.t += 1.0
    session.poll()
    tracker = ImpactTracker(session.timeline)
    incidents = IncidentTracker(session.timeline)
    app = AnycastApp(session, controls=SimControls(sim), title="anycast-tui demo", clock=clock, impact=tracker,
                     incidents=incidents)
    return app, session, clock


def _fail_leaf03(session: SimSession, clock: Clock, *keys: str, whatif: bool = False, device_event: bool = False):
    """Fail leaf03 (the picker's action), poll, select its incident (]) — or, ``device_event``, spine01's
    event (e ] [ [) — then press ``keys``."""

    async def run_before(pilot) -> None:
        app = pilot.app
        clock.t += 0.5
        await app.toggle("leaf03")
        clock.t += 0.75
        session.poll()
        assert app.impact.wait(60) and app.incidents.wait(60)
        clock.t += 0.25
        app.flush()
        await pilot.pause()
        if device_event:
            await pilot.press("e", "right_square_bracket", "left_square_bracket", "left_square_bracket")
            assert app.selected.device == "spine01"
        else:
            await pilot.press("right_square_bracket")
            assert app.selected_incident is not None and app.selected_incident.cause.startswith("leaf03")
        await pilot.press(*keys)
        await pilot.pause()
        if whatif:
            await app.workers.wait_for_complete()
        assert app.impact.wait(60) and app.incidents.wait(60)
        app.flush()
        await pilot.pause()

    return run_before


def test_fabric_steady_80x24(snap_compare):
    app, _, _ = _app()
    assert snap_compare(app, terminal_size=(80, 24))


def test_fabric_leaf03_failed_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_fail_leaf03(session, clock))


def test_groups_selected_event_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_fail_leaf03(session, clock, "2"))


def test_flows_selected_event_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_fail_leaf03(session, clock, "3", "o"))


def test_events_selected_event_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_fail_leaf03(session, clock, "4"))


def test_whatif_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24),
                        run_before=_fail_leaf03(session, clock, "5", "down", "enter", whatif=True))


def test_events_device_event_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_fail_leaf03(session, clock, "4", device_event=True))


def test_events_wide_160x40(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(160, 40), run_before=_fail_leaf03(session, clock, "4"))


def test_help_80x24(snap_compare):
    app, _, _ = _app()
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"])


def test_too_small_60x15(snap_compare):
    app, _, _ = _app()
    assert snap_compare(app, terminal_size=(60, 15))
