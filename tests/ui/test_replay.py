"""``anycast-tui replay``: the same app over a ReplaySession of a real recording (recorded here, tick by tick)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

from record_helpers import record_session  # noqa: E402

from anycast_tui.commands.replay import build  # noqa: E402
from anycast_tui.model.flows import synthetic_flows  # noqa: E402
from anycast_tui.model.impact import impact  # noqa: E402
from anycast_tui.model.ingress import ingress_of  # noqa: E402
from anycast_tui.record import incidentlog  # noqa: E402
from anycast_tui.record.reader import Recording  # noqa: E402
from anycast_tui.ui.view import concerns  # noqa: E402

P = "192.0.2.53/32"


def entry(snapshot, flows):  # noqa: ANN001, ANN201
    """Where the sample flows enter, per the one ingress rule (model.ingress)."""
    got, _ = ingress_of(snapshot, flows)
    return np.asarray(got[0], dtype=object)[got[1]]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("replay-ui") / "s.atrec", ticks=8)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_replay_keys_and_the_selected_event_marks_what_the_engine_moved(recorded, size):
    with Recording.open(recorded.path) as rec:
        app, tracker = build(rec)
        r = app.replay
        try:
            async with app.run_test(size=size) as pilot:
                await pilot.pause()
                start = r.position_ms
                await pilot.press("space")
                assert r.playing
                await pilot.press("space")
                assert not r.playing
                await pilot.press("plus", "plus")
                assert r.speed == 5
                await pilot.press("minus")
                assert r.speed == 2
                # e: [ ] step device events; the first ] moves the replay to the first anycast event, selected
                await pilot.press("e")
                await pilot.press("right_square_bracket")
                ev = app.selected
                assert ev is not None and ev.prefix == P and ev == next(e for e in rec.events if e.prefix == P)
                k = next(i for i, st in enumerate(recorded.states) if st.taken_at_ms >= r.position_ms)
                assert tracker.wait(60)
                app.flush()
                await pilot.press("3")
                await pilot.pause()
                app.flush()
                await pilot.pause()
                flows = synthetic_flows(200, tracker.n_flows, dst="192.0.2.53")
                before, after = recorded.states[k - 1], recorded.states[k]
                fresh = impact(before, after, flows, entry(before, flows), ingress_after=entry(after, flows))
                assert fresh.moved.any()
                assert np.array_equal(app.flow_rows.marks.kind > 0, fresh.moved)
                assert "replay ‖ ×2" in str(app.query_one("#status").render())
                # g seeks (+SECONDS from the start)
                await pilot.press("g", *"+1", "enter")
                await pilot.pause()
                assert r.position_ms == start + 1000
                assert ev.time_ms > r.position_ms and ev not in app.query_one("#events").events  # back before it
                assert app.selected is None and "nothing selected" in str(app.query_one("#eventbar").render())
                assert "live" not in str(app.query_one("#status").render())
        finally:
            tracker.close()


async def test_replay_steps_every_anycast_event_one_by_one(recorded):
    with Recording.open(recorded.path) as rec:
        app, tracker = build(rec)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                await pilot.press("e")
                seen = []
                for _ in range(len(rec.events) + 1):
                    await pilot.press("right_square_bracket")
                    if app.selected is None or (seen and app.selected == seen[-1]):
                        break
                    seen.append(app.selected)
                # every anycast / health / group event, in order, the ones of one poll included
                assert seen == [e for e in rec.events if concerns(e, (P,))]
                assert len({e.time_ms for e in seen}) < len(seen)  # several of them share a tick
        finally:
            tracker.close()


async def test_replay_steps_incidents_with_the_recorded_numbers(tmp_path):
    rec_made = record_session(tmp_path / "i.atrec", ticks=12, incidents=True)
    with Recording.open(rec_made.path) as rec:
        found, recorded_ = incidentlog.of_recording(rec)
        assert recorded_ and found
        app, tracker = build(rec)
        try:
            async with app.run_test(size=(200, 60)) as pilot:
                await pilot.pause()
                await pilot.press("right_square_bracket")
                first = found[0]
                assert app.selected_incident == first.incident
                bar = str(app.query_one("#eventbar").render())
                assert f"{first.impact.onset.estimated.moved:,} moved" in bar and first.incident.cause[:30] in bar
                assert app.replay.position_ms >= first.incident.start_ms
        finally:
            tracker.close()
