"""The Fabric view of a large fabric: only the lines on screen are drawn (line API), each drawn line is the
same line of the plain table (``widgets.columns``) over the same cells, scrolling reaches the last device, and
a device failing shows on its own row and in the hint lines below the table; the topology below it draws each
role's line only as far as the width, which shows the same as the whole line cut there."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import Role
from anycast_tui.session import SimSession
from anycast_tui.ui import view
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.widgets import STATUS_STYLE, FabricPanel, TopologyPanel, columns

T0 = 1_764_000_000.0
SIZE = (120, 30)


def _session() -> tuple[SimFabric, SimSession]:
    cfg = SimConfig(spines=4, leaves=60, servers_per_leaf=1)
    sim = SimFabric(cfg, clock=lambda: T0)
    for name in ("leaf07", "spine03"):  # placement unknown: one hint line below the table
        sim.set_hash(name, seed=0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    return sim, session


def _plain_table(panel: FabricPanel, width: int) -> list[str]:
    """The panel's rows as ``columns`` lays them out (the whole-Text table the panel drew before)."""
    rows, last = [], None
    for r in panel.rows:
        rows.append([view.ROLE_TITLE[r.role] if r.role is not last else "",
                     Text(("▸" if r.name == panel.focus else "") + r.name),
                     Text(f"{r.glyph} {r.word}", style=STATUS_STYLE[r.status]), r.age, r.hash, r.placement_text])
        last = r.role
    return columns(FabricPanel.HEADER, rows, width=width, flex=2, right=frozenset({3})).plain.splitlines()


async def test_only_visible_fabric_lines_are_drawn(monkeypatch):
    sim, session = _session()
    app = AnycastApp(session, clock=lambda: T0)
    drawn: list[int] = []
    line = FabricPanel.line

    def spy(self, y, width):  # noqa: ANN001, ANN202
        drawn.append(y)
        return line(self, y, width)

    monkeypatch.setattr(FabricPanel, "line", spy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = app.query_one(FabricPanel)
        w = panel.content_size.width
        assert len(panel.rows) == 4 + 60 + 60
        assert panel.region.height > SIZE[1] and drawn and max(drawn) < SIZE[1]  # a screenful, not 124 rows
        scroller = app.query_one("#fabric")
        scroller.scroll_end(animate=False)
        await pilot.pause()
        n = panel.line_count(w)
        assert max(drawn) == n - 1  # the last line, reached by scrolling
        assert len(set(drawn)) < 2 * SIZE[1]
        drawn.clear()
        whole = panel.render().plain.splitlines()
    table = _plain_table(panel, w)
    assert whole[: len(table)] == table  # every row, with the widths of the whole table
    assert whole[len(table):] == [f"? spine03, leaf07: {r.hint}" for r in panel.rows if r.name == "leaf07"]
    assert table[-1].split()[0] == "server60" and all(len(ln) <= w for ln in whole)


async def test_a_failed_device_off_screen_shows_on_its_own_row():
    sim, session = _session()
    app = AnycastApp(session, clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = app.query_one(FabricPanel)
        sim.fail_device("leaf59")
        session.poll()
        app.flush()
        await pilot.pause()
        w = panel.content_size.width
        y = 1 + [r.name for r in panel.rows].index("leaf59")
        row = panel.line(y, w).plain
        assert row.split()[0] == "leaf59" and ("stale" in row or "error" in row)
        assert panel.render().plain.splitlines()[y] == row
        assert _plain_table(panel, w)[y] == row
        panel.show(panel.rows, focus="leaf59")  # the selected event's device: marked, the columns widened for it
        assert panel.line(y, w).plain.split()[0] == "▸leaf59"
        assert panel.render().plain.splitlines()[: 1 + len(panel.rows)] == _plain_table(panel, w)


def _role_line(panel: TopologyPanel, role: Role) -> str:
    """A role's whole topology line, every device of it, as the panel wrote it before it stopped at the width."""
    hops = {g.device: g for g in panel.groups}
    out = f"{view.ROLE_TITLE[role]:<8}"
    for r in (r for r in panel.rows if r.role is role):
        out += f"{r.glyph} {r.name}"
        g = hops.get(r.name)
        if g is not None and g.hops:
            usable = sum(1 for h in g.hops if h.usable)
            if role is Role.SPINE:
                out += f" ⇉{usable}" if usable == len(g.hops) else f" ⇉{usable}/{len(g.hops)}"
            else:
                out += "→" + ",".join(h.neighbour or h.gateway for h in g.hops)
        out += "  "
    return out


async def test_topology_lines_are_the_whole_role_lines_cut_at_the_width():
    sim, session = _session()
    sim.fail_device("leaf59")
    session.poll()
    app = AnycastApp(session, clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = app.query_one(TopologyPanel)
        w = panel.content_size.width
        text = panel.render()
        lines = [ln.plain for ln in text.split("\n")]
        roles = (Role.SPINE, Role.LEAF, Role.SERVER)
        assert len(text.plain) < sum(len(_role_line(panel, r)) for r in roles) / 3  # not the 60-device lines
        console = Console(width=w, color_system=None, legacy_windows=False)
        for role, drawn in zip(roles, console.render_lines(text, console.options.update(width=w), pad=False)):
            whole = Text(_role_line(panel, role), no_wrap=True, overflow="ellipsis")
            (want,) = console.render_lines(whole, console.options.update(width=w), pad=False)
            assert "".join(s.text for s in drawn) == "".join(s.text for s in want)
            if role is not Role.SPINE:  # 60 leaves, 60 servers: cut where the width ends
                assert cell_len("".join(s.text for s in want)) == w and want[-1].text.endswith("…")
        assert lines[3] == "✗ failed or unreachable: leaf59"
