"""Pilot tests over the real demo fabric (sim over SSH on 127.0.0.1), polled explicitly, fixed clock."""

from __future__ import annotations

import pytest

from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.help import HelpScreen

from .conftest import NOW

pytestmark = pytest.mark.ssh


def _spine_groups(app):
    return {g.device: g for g in app.query_one("#groups-panel").groups if g.device.startswith("spine")}


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_fail_and_restore_leaf03_by_key(demo, size):
    await demo.poll()
    await demo.poll()
    app = AnycastApp(demo.session, controls=demo.fabric, clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.flush()
        spines = _spine_groups(app)
        assert set(spines) == {"spine01", "spine02"}
        assert all(len(g.hops) == 4 for g in spines.values())
        assert {h.neighbour for h in spines["spine01"].hops} == {"leaf01", "leaf02", "leaf03", "leaf04"}

        await pilot.press("f", "down", "down", "enter")  # the picker lists leaf01..leaf04
        await pilot.pause()
        assert demo.fabric.is_failed("leaf03")
        await demo.poll()
        app.flush()
        await pilot.pause()
        spines = _spine_groups(app)
        assert all(len(g.hops) == 3 for g in spines.values())
        assert all("leaf03" not in {h.neighbour for h in g.hops} for g in spines.values())
        shown = app.query_one("#events").events
        removed = [e for e in shown if e.kind is EventKind.NEXTHOP_REMOVED and e.prefix == "192.0.2.53/32"]
        assert {e.device for e in removed} == {"spine01", "spine02"}
        rows = {r.name: r for r in app.query_one("#fabric-panel").rows}
        assert rows["leaf03"].status is HealthStatus.STALE and rows["leaf03"].glyph == "!"
        log_text = "\n".join(app.query_one("#events").text_lines())
        assert "spine01" in log_text and "removed" in log_text

        await pilot.press("f", "down", "down", "enter")
        await pilot.pause()
        assert not demo.fabric.is_failed("leaf03")
        await demo.poll()
        app.flush()
        await pilot.pause()
        spines = _spine_groups(app)
        assert all(len(g.hops) == 4 for g in spines.values())
        added = [e for e in app.query_one("#events").events if e.kind is EventKind.NEXTHOP_ADDED]
        assert {e.device for e in added} == {"spine01", "spine02"}


async def test_help_in_the_demo_lists_the_failure_picker(demo):
    app = AnycastApp(demo.session, controls=demo.fabric, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        lines = dict(app.screen.lines)
        assert "fail or restore" in lines["f"] and "[demo.fail]" in lines["f"]
        assert "restore every device" in lines["r"] and lines["q"].startswith("quit") and "pause" in lines["p"]
        assert "Flows view" in lines["3"] and "What-if" in lines["5"]


async def test_paused_view_ignores_a_failure_until_resumed(demo):
    await demo.poll()
    await demo.poll()
    app = AnycastApp(demo.session, controls=demo.fabric, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.press("f", "enter")  # leaf01
        await pilot.pause()
        assert demo.fabric.is_failed("leaf01")
        await demo.poll()
        app.tick()
        assert app.waiting == len(demo.fabric.devices)  # one update per polled device
        assert all(len(g.hops) == 4 for g in _spine_groups(app).values())
        assert f"paused, {app.waiting} updates waiting" in str(app.query_one("#status").render())
        await pilot.press("p")
        await pilot.pause()
        assert all(len(g.hops) == 3 for g in _spine_groups(app).values())
