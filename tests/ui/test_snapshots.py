"""Snapshot tests (pytest-textual-snapshot): the simulator's state through the real parsers, fixed clock.

Regenerate after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look
at the SVGs in ``__snapshots__/`` before committing them.
"""

from __future__ import annotations

from anycast_tui.lab.demo import SimControls
from anycast_tui.lab.sim import SimFabric
from anycast_tui.session import ImpactTracker, SimSession
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
    app = AnycastApp(session, controls=SimControls(sim), title="anycast-tui demo", clock=clock, impact=tracker)
    return app, session, clock


def _fail_leaf03(session: SimSession, clock: Clock):
    async def run_before(pilot) -> None:
        clock.t += 0.5
        await pilot.press("3")
        clock.t += 0.75
        session.poll()
        assert pilot.app.impact.wait(60)
        clock.t += 0.25
        pilot.app.flush()
        await pilot.pause()

    return run_before


def test_steady_state_80x24(snap_compare):
    app, _, _ = _app()
    assert snap_compare(app, terminal_size=(80, 24))


def test_leaf03_failed_80x24(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=_fail_leaf03(session, clock))


def test_leaf03_failed_wide_160x40(snap_compare):
    app, session, clock = _app()
    assert snap_compare(app, terminal_size=(160, 40), run_before=_fail_leaf03(session, clock))


def test_help_80x24(snap_compare):
    app, _, _ = _app()
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"])


def test_too_small_60x15(snap_compare):
    app, _, _ = _app()
    assert snap_compare(app, terminal_size=(60, 15))
