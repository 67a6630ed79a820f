"""A filter as you type changes the row count on every key: the scrollbar follows it (without a screen
layout while it stays), the end of the list is reachable, and field-wise token matching finds exactly
the rows a whole-key search finds."""

from __future__ import annotations

import numpy as np

from anycast_tui.lab.sim import SimFabric
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.flowtable import FlowTable

T0 = 1_764_000_000.0


async def test_filter_keeps_the_scrollbar_and_rows_right():
    sim = SimFabric(clock=lambda: T0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    tracker = ImpactTracker(session.timeline, n_flows=20_000)
    app = AnycastApp(session, clock=lambda: T0, impact=tracker)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert tracker.wait(60)
        app.flush()
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one(FlowTable)
        rows = app.flow_rows
        keys = [rows.key(i) for i in range(rows.total)]  # what the filter matches, row by row
        for word, n_keys in (("tcp", 1), ("203.0.113.7", 1), ("tcp 203.0.113.1", 2), ("server0", 1)):
            await pilot.press("slash", "ctrl+u", *word)
            await pilot.pause()
            toks = word.split()
            term = [rows.server(i) for i in range(rows.total)]
            want = [i for i in range(rows.total) if all(t in keys[i] or t in term[i] for t in toks)]
            assert rows.rows.tolist() == want, word
            assert table.virtual_size.height == 1 + len(want)
            assert table.vertical_scrollbar.window_virtual_size == 1 + len(want)
            table.scroll_end(animate=False)
            await pilot.pause()
            last = table.scroll_offset.y + table.scrollable_content_region.height - 2
            assert last == len(want) - 1
            assert table.line_text(last, 80).plain.split()[1].startswith(_addr_port(rows, want[-1]))
            table.scroll_home(animate=False)
            await pilot.press("enter")
            await pilot.pause()
        assert np.array_equal(rows.rows, np.asarray(want))
    tracker.close()


def _addr_port(rows, i: int) -> str:  # noqa: ANN001
    return rows.key(i).split(" ")[1]
