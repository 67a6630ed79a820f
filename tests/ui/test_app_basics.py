"""Pilot tests of the app shell that need no fabric: size limits, keys, help, quit."""

from __future__ import annotations

from dataclasses import dataclass, field

from anycast_tui.model.timeline import Timeline
from anycast_tui.ui.app import AnycastApp, TooSmall
from anycast_tui.ui.help import HelpScreen
from anycast_tui.ui.widgets import StatusLine

NOW = 1_764_000_000.0


@dataclass
class IdleSession:
    """A session whose poller never ran: just an empty timeline."""

    timeline: Timeline = field(default_factory=lambda: Timeline(anycast_prefixes=("192.0.2.53/32",),
                                                                clock=lambda: NOW))


def _text(widget) -> str:
    return str(widget.render())


async def test_too_small_message_and_q_still_quits():
    app = AnycastApp(IdleSession(), clock=lambda: NOW)
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause()
        msg = app.query_one(TooSmall)
        assert msg.display and msg.region.width > 0
        assert "terminal too small: 60×15, need 80×24" in _text(msg)
        assert not app.query_one("#views").display
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_normal_size_hides_the_too_small_message():
    app = AnycastApp(IdleSession(), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not app.query_one(TooSmall).display
        assert app.query_one("#views").display
        assert app.screen.has_class("-narrow")
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        assert app.screen.has_class("-wide")


async def test_help_lists_every_enabled_binding_and_closes():
    app = AnycastApp(IdleSession(), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.lines)
        table = app.screen.query_one("#help-keys")
        assert table.region.height >= len(app.screen.lines) and table.region.width >= 30  # really visible
        assert keys["q"].startswith("quit") and keys["?"].startswith("this help") and "pause" in keys["p"]
        assert "all events" in keys["a"]
        # No controls (not a demo): the fail/restore keys are not offered.
        assert not any("fail" in what for what in keys.values())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_pause_counts_waiting_updates_and_resume_applies_them():
    from anycast_tui.model.types import Device, DeviceState, Health, HealthStatus, Role

    session = IdleSession()
    app = AnycastApp(session, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert app.paused
        for i in range(3):
            session.timeline.update(DeviceState(Device(f"leaf0{i + 1}", Role.LEAF), collected_at_ms=int(NOW * 1000),
                                                health=Health(HealthStatus.OK, last_ok_ms=int(NOW * 1000))))
        app.tick()
        await pilot.pause()
        status = _text(app.query_one(StatusLine))
        assert "paused, 3 updates waiting" in status
        assert app.query_one("#fabric-panel").rows == ()  # nothing applied while paused
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused
        assert [r.name for r in app.query_one("#fabric-panel").rows] == ["leaf01", "leaf02", "leaf03"]
        assert "live" in _text(app.query_one(StatusLine))


async def test_no_color_renders_without_any_palette_colour(monkeypatch):
    from anycast_tui.ui import widgets

    monkeypatch.setenv("NO_COLOR", "1")
    session = IdleSession()
    from anycast_tui.model.types import Device, DeviceState, Health, HealthStatus, Role

    session.timeline.update(DeviceState(Device("spine01", Role.SPINE), collected_at_ms=int(NOW * 1000),
                                        health=Health(HealthStatus.OK, last_ok_ms=int(NOW * 1000))))
    app = AnycastApp(session, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.no_color
        svg = app.export_screenshot()
    assert "✓" in svg and "spine01" in svg  # the glyph carries the meaning
    for colour in (widgets.OK, widgets.WARN, widgets.BAD, widgets.NAME):
        assert colour.lower() not in svg.lower()


async def test_with_colour_the_palette_is_used():
    from anycast_tui.model.types import Device, DeviceState, Health, HealthStatus, Role
    from anycast_tui.ui import widgets

    session = IdleSession()
    session.timeline.update(DeviceState(Device("spine01", Role.SPINE), collected_at_ms=int(NOW * 1000),
                                        health=Health(HealthStatus.OK, last_ok_ms=int(NOW * 1000))))
    app = AnycastApp(session, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        svg = app.export_screenshot()
    assert widgets.OK.lower() in svg.lower()


async def test_updates_are_coalesced_into_one_redraw_per_tick():
    from anycast_tui.model.types import Device, DeviceState, Health, HealthStatus, Role

    session = IdleSession()
    app = AnycastApp(session, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        before = app.redraws
        for i in range(200):  # a burst: the listener only marks the view dirty
            session.timeline.update(DeviceState(Device(f"leaf{i % 4:02d}", Role.LEAF),
                                                collected_at_ms=int(NOW * 1000) + i,
                                                health=Health(HealthStatus.OK, last_ok_ms=int(NOW * 1000))))
        assert app.redraws == before
        app.tick()
        assert app.redraws == before + 1
        app.tick()  # nothing new since: no redraw (ages redraw only on the once-a-second tick)
        assert app.redraws == before + 1


async def test_a_redraw_tick_during_shutdown_draws_nothing():
    """Textual removes the views before it stops the app's timers: a tick then (seen under load at the end
    of a pilot test) must not query them (it raised NoMatches out of run_test)."""
    now = [NOW]
    app = AnycastApp(IdleSession(), clock=lambda: now[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert not app.is_running
    now[0] += 2  # a second went by since the last redraw: a running app would redraw now
    app.tick()  # the timer's callback, as it runs in that window
