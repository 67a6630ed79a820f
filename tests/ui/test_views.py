"""Pilot tests of the views over the simulator (real parsers, fixed clock), at 80x24 and 200x60.

What the UI highlights is checked against a fresh engine computation from
snapshots this test records itself (a timeline listener), never against the
UI's own data.
"""

from __future__ import annotations

import numpy as np
import pytest
from textual.command import CommandPalette
from textual.widgets import ContentSwitcher

from anycast_tui.lab.demo import SimControls
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.impact import compare_mappings, impact
from anycast_tui.model.whatif import each_single_failure
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.paths import trace
from anycast_tui.model.types import EventKind
from anycast_tui.model.hashspace import group_space, moved_cells
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.bars import BucketBars
from anycast_tui.ui.flowtable import FlowTable
from anycast_tui.ui.whatif import MAPPING_NAMES, WhatIfView

T0 = 1_764_000_000.0
P = "192.0.2.53/32"
SIZES = [(80, 24), (200, 60)]
N = 4_000


class Clock:
    t = T0

    def __call__(self) -> float:
        return self.t


class Lab:
    """SimSession + tracker + app, and every timeline change as this test saw it."""

    def __init__(self, **kw) -> None:
        self.clock = Clock()
        self.sim = SimFabric(clock=self.clock)
        self.session = SimSession(self.sim, clock=self.clock)
        self.changes = []
        self.session.timeline.subscribe(self.changes.append)
        self.session.poll()
        self.clock.t += 1
        self.session.poll()
        self.tracker = ImpactTracker(self.session.timeline, n_flows=N)
        self.app = AnycastApp(self.session, controls=SimControls(self.sim), clock=self.clock, impact=self.tracker,
                              **kw)

    async def settle(self, pilot) -> None:
        await pilot.pause()
        assert self.tracker.wait(60)
        self.app.flush()
        await pilot.pause()

    async def fail(self, pilot, name: str) -> None:
        await self.app.toggle(name)
        self.clock.t += 1
        self.session.poll()
        await self.settle(pilot)

    def change_of(self, ev):
        return next(c for c in self.changes if ev in c.events)

    @staticmethod
    def flows_and_ingress(snapshot):
        """The sample and where each flow enters, per the one ingress rule (model.ingress)."""
        flows = synthetic_flows(200, N, dst="192.0.2.53")
        got, _ = ingress_of(snapshot, flows)
        return flows, np.asarray(got[0], dtype=object)[got[1]]


async def _select(lab, pilot, pred):
    """Press [ from the newest event until ``pred(selected)``."""
    await pilot.press("right_square_bracket")
    for _ in range(20):
        if lab.app.selected is not None and pred(lab.app.selected):
            return lab.app.selected
        await pilot.press("left_square_bracket")
    raise AssertionError("event not found")


def _spine_removed(ev):
    return ev.kind is EventKind.NEXTHOP_REMOVED and ev.device == "spine01" and ev.prefix == P


@pytest.mark.parametrize("size", SIZES)
async def test_number_keys_switch_views_and_nothing_overlaps(size):
    lab = Lab()
    async with lab.app.run_test(size=size) as pilot:
        await lab.settle(pilot)
        for key, name in zip("12345", ("fabric", "groups", "flows", "events", "whatif")):
            await pilot.press(key)
            await pilot.pause()
            assert lab.app.query_one(ContentSwitcher).current == name and lab.app.view == name
            shown = lab.app.query_one(f"#{name}")
            bar, status = lab.app.query_one("#eventbar"), lab.app.query_one("#status")
            assert shown.region.height >= 10 and shown.region.width == size[0]
            for a, b in ((bar, shown), (shown, status), (bar, status)):
                assert not a.region.overlaps(b.region)
            assert f"[{lab.app.query_one(ContentSwitcher).current}" in f"[{name}"
        await pilot.press("6")
        await pilot.pause()
        assert type(lab.app.screen).__name__ == "HelpScreen"


@pytest.mark.parametrize("size", SIZES)
async def test_selected_event_marks_exactly_the_flows_the_engine_moved(size):
    lab = Lab()
    async with lab.app.run_test(size=size) as pilot:
        await lab.settle(pilot)
        await lab.fail(pilot, "leaf03")
        ev = await _select(lab, pilot, _spine_removed)
        await lab.settle(pilot)
        ch = lab.change_of(ev)
        flows, ingress = lab.flows_and_ingress(ch.after)
        fresh = impact(ch.before, ch.after, flows, ingress)
        assert fresh.moved.any()
        await pilot.press("3")
        await lab.settle(pilot)
        rows = lab.app.flow_rows
        kind = rows.marks.kind
        assert np.array_equal(kind > 0, fresh.moved)
        assert np.array_equal(kind == 1, fresh.tcp_reset)
        assert np.array_equal(kind == 2, fresh.udp & ~fresh.tcp_reset)
        # what is on screen: each visible row's glyph agrees with the engine
        table = lab.app.query_one(FlowTable)
        visible = table.scrollable_content_region.height - 1
        glyph = {1: "✗", 2: "↷", 3: "→"}
        for pos in range(visible):
            i = int(rows.rows[pos])
            text = table.line_text(pos, size[0]).plain
            want = " " if not fresh.moved[i] else glyph[1 if fresh.tcp_reset[i] else 2 if fresh.udp[i] else 3]
            assert text[0] == want
        # the filter "moved" shows exactly those flows
        await pilot.press("slash", *"moved", "enter")
        await lab.settle(pilot)
        assert set(rows.rows.tolist()) == set(np.flatnonzero(fresh.moved).tolist())
        assert f"flows {int(fresh.moved.sum())}/{N}" in table.border_title
        # the event bar and the Events view show the engine's counts
        assert f"{int(fresh.moved.sum())} moved" in str(lab.app.query_one("#eventbar").render())
        await pilot.press("4")
        await pilot.pause()
        log = lab.app.query_one("#events")
        sel = [ln for ln in log.text_lines() if ln.startswith("▸")]
        assert len(sel) == 1 and "spine01" in sel[0]


@pytest.mark.parametrize("size", SIZES)
async def test_filter_sort_and_escape_in_the_flows_view(size):
    lab = Lab()
    async with lab.app.run_test(size=size) as pilot:
        await lab.settle(pilot)
        await pilot.press("3")
        await lab.settle(pilot)
        snap = lab.session.timeline.snapshot
        flows, ingress = lab.flows_and_ingress(snap)
        ends = trace(snap, flows, ingress).final_labels()
        await pilot.press("slash", *"server02", "enter")
        await lab.settle(pilot)
        rows = lab.app.flow_rows
        assert set(rows.rows.tolist()) == set(np.flatnonzero(ends == "server02").tolist()) != set()
        await pilot.press("slash", "ctrl+u", *"udp server02", "enter")
        await lab.settle(pilot)
        want = (ends == "server02") & (np.asarray(flows.proto) == 17)
        assert set(rows.rows.tolist()) == set(np.flatnonzero(want).tolist())
        await pilot.press("o", "o")  # flow → moved first → server
        assert rows.sort == "server"
        await pilot.press("slash")
        await pilot.press("escape")  # closes and clears the filter
        await pilot.pause()
        assert len(rows) == N and rows.query == ""
        labels = [rows.server(int(i)) for i in rows.rows]
        assert labels == sorted(labels)


@pytest.mark.parametrize("size", SIZES)
async def test_bucket_bars_mark_the_cells_the_selected_event_moved(size):
    lab = Lab()
    async with lab.app.run_test(size=size) as pilot:
        await lab.settle(pilot)
        await lab.fail(pilot, "leaf03")
        ev = await _select(lab, pilot, _spine_removed)
        await lab.settle(pilot)
        await pilot.press("2")
        await pilot.pause()
        bars = lab.app.query_one(BucketBars)
        width = 40
        got = {d: m for d, _, _, m in bars.spaces(width)}
        ch = lab.change_of(ev)
        want = moved_cells(group_space(ch.before.devices["spine01"], P, width),
                           group_space(ch.after.devices["spine01"], P, width))
        assert got["spine01"] == want and any(want)
        assert not any(got["spine02"])  # the selected event did not touch spine02
        lines = bars.render().plain.splitlines()
        at = next(i for i, ln in enumerate(lines) if "spine01" in ln)
        assert set(lines[at + 1].strip()) == {"^", " "}  # the marks row under spine01's bar
        assert "leaf01" in lines[at + 2] and "leaf03" not in lines[at + 2]  # its legend: leaf03 is gone
        await pilot.press("escape")  # clears the selection: no marks
        await pilot.pause()
        assert lab.app.selected is None and "^" not in bars.render().plain


@pytest.mark.parametrize("size", SIZES)
async def test_what_if_compares_mappings_like_the_engine(size):
    lab = Lab()
    async with lab.app.run_test(size=size) as pilot:
        await lab.settle(pilot)
        await pilot.press("5")
        await pilot.pause()
        w = lab.app.query_one(WhatIfView)
        snap = lab.session.timeline.snapshot
        assert sorted(map(repr, w.candidates)) == sorted(map(repr, each_single_failure(snap)))
        assert w.candidates[0].device == "spine01"  # the anycast group's next hops come first
        await pilot.press("down", "enter")  # the first candidate, action "fail"
        await pilot.pause()
        await lab.app.workers.wait_for_complete()
        await pilot.pause()
        flows, ingress = lab.flows_and_ingress(snap)
        fresh = compare_mappings(snap, w.candidates[0], flows, ingress)
        text = w.result.plain
        for r in fresh:
            line = next(ln for ln in text.splitlines() if MAPPING_NAMES[r.name] in ln)
            assert line.split()[-4:] == [str(r.moved), str(r.tcp_reset), str(r.udp), str(r.collateral)]
        # each, one at a time: one line per candidate
        await pilot.press("home", "enter")
        await pilot.pause()
        await lab.app.workers.wait_for_complete()
        assert f"{len(w.candidates)} changes" in w.result.plain
        # mark two, drain order
        await pilot.press("down", "m", "down", "m", "d")
        await pilot.pause()
        await lab.app.workers.wait_for_complete()
        assert "safest drain order of 2" in w.result.plain


async def test_picker_fails_and_restores_a_leaf():
    lab = Lab()
    async with lab.app.run_test(size=(80, 24)) as pilot:
        await lab.settle(pilot)
        await pilot.press("f", "down", "enter")
        await pilot.pause()
        assert not lab.sim.is_up("leaf02")
        await pilot.press("f", "down", "enter")
        await pilot.pause()
        assert lab.sim.is_up("leaf02")


async def test_screenshot_palette_and_keymap(tmp_path):
    lab = Lab(screenshot_dir=tmp_path, keymap={"view.flows": "x", "event.next": "n"})
    async with lab.app.run_test(size=(80, 24)) as pilot:
        await lab.fail(pilot, "leaf03")
        await pilot.press("s")
        await pilot.pause()
        assert [p.suffix for p in tmp_path.iterdir()] == [".svg"]
        await pilot.press("x")
        await pilot.pause()
        assert lab.app.view == "flows"
        await pilot.press("n")
        await pilot.pause()
        assert lab.app.selected == lab.app.shown_events()[-1]
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(lab.app.screen, CommandPalette)
        await pilot.press(*"View: What", "enter")
        await pilot.pause()
        await pilot.pause()
        assert lab.app.view == "whatif"


async def test_monochrome_mode_drops_the_palette():
    from anycast_tui.ui import palette

    lab = Lab(monochrome=True)
    async with lab.app.run_test(size=(80, 24)) as pilot:
        await lab.settle(pilot)
        await pilot.press("2")
        await pilot.pause()
        svg = lab.app.export_screenshot()
    assert "spine01" in svg and "█" in svg
    for colour in palette.HOP_COLOURS[:3]:
        assert colour.lower() not in svg.lower()


@pytest.mark.parametrize("size", SIZES)
async def test_pause_freezes_every_view_until_resumed(size):
    lab = Lab()
    async with lab.app.run_test(size=size) as pilot:
        await lab.settle(pilot)
        await pilot.press("4", "p")
        shown = lab.app.query_one("#events").events
        await lab.fail(pilot, "leaf03")  # polls; the app's flush is a no-op while paused
        lab.app.tick()
        await pilot.pause()
        assert lab.app.query_one("#events").events == shown
        status = str(lab.app.query_one("#status").render())
        assert f"paused, {lab.app.waiting} updates waiting" in status and lab.app.waiting == 10
        await pilot.press("p")
        await pilot.pause()
        removed = [e for e in lab.app.query_one("#events").events
                   if e.kind is EventKind.NEXTHOP_REMOVED and e.prefix == P]
        assert {e.device for e in removed} == {"spine01", "spine02"}
        assert "live" in str(lab.app.query_one("#status").render())
