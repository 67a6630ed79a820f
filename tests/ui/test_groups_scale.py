"""The Groups view with many groups: only the lines on screen are drawn (line API), and what is drawn is
what the whole panel says; scrolling reaches the last group."""

from __future__ import annotations

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model import views as model_views
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.bars import BucketBars
from anycast_tui.ui.widgets import GroupsPanel

T0 = 1_764_000_000.0


def _app() -> AnycastApp:
    cfg = SimConfig(spines=40, leaves=4, servers_per_leaf=2)
    sim = SimFabric(cfg, clock=lambda: T0)
    session = SimSession(sim, clock=lambda: T0, prefixes=(cfg.anycast4, cfg.anycast6))
    session.poll()
    return AnycastApp(session, clock=lambda: T0)


async def test_only_visible_group_lines_are_drawn(monkeypatch):
    app = _app()
    drawn: list[int] = []
    spaces: list[str] = []
    line_text = BucketBars.line_text
    group_space = model_views.group_space

    def spy_line(self, y, width):  # noqa: ANN001, ANN202
        drawn.append(y)
        return line_text(self, y, width)

    def spy_space(state, prefix, cells=64):  # noqa: ANN001, ANN202
        spaces.append(state.device.name)
        return group_space(state, prefix, cells)

    monkeypatch.setattr(BucketBars, "line_text", spy_line)
    monkeypatch.setattr(model_views, "group_space", spy_space)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        panel, bars = app.query_one(GroupsPanel), app.query_one(BucketBars)
        n_groups = len(panel.groups)
        assert n_groups == 2 * (40 + 4 + 8)  # every device, IPv4 and IPv6 anycast
        lines, entries = bars.layout_for(bars._width())
        assert len(entries) == 2 * 44 and len(lines) >= 2 * len(entries)
        # the bars start below the groups table, off screen: none of their lines was drawn
        assert panel.region.height > 24 and drawn == [] and spaces == []
        scroller = app.query_one("#groups")
        scroller.scroll_to(y=bars.region.y - scroller.region.y + scroller.scroll_offset.y, animate=False)
        await pilot.pause()
        assert drawn and max(drawn) < 24 and len(set(spaces)) < 24
        scroller.scroll_end(animate=False)
        await pilot.pause()
        assert max(drawn) == len(lines) - 1  # the last line, reached by scrolling
        whole = bars.render().plain.splitlines()
        assert len(whole) == len(lines)
        for y in set(drawn):
            assert bars.line_text(y, bars.content_size.width).plain == whole[y]
        assert whole[-2].startswith(" spine40") or any(ln.startswith(" leaf04") for ln in whole[-4:])


def test_cheap_group_facts_agree_with_the_spaces():
    """The facts the bars lay out with (route index, has_space, is_resilient, space_inputs) agree with
    group_space itself, on plain multipath and resilient fabrics."""
    from anycast_tui.model.views import cached_space, group_space, has_space, is_resilient, routes_to, space_inputs

    for cfg in (SimConfig(spines=3, leaves=3, servers_per_leaf=2), SimConfig(resilient=True)):
        snap = SimFabric(cfg, clock=lambda: T0).snapshot(int(T0 * 1000))
        for st in snap.devices.values():
            for prefix in (cfg.anycast4, cfg.anycast6, "203.0.113.0/24"):
                assert routes_to(st, prefix) == tuple(r for r in st.routes if r.dst == prefix)
                sp = group_space(st, prefix, cells=50)
                assert has_space(st, prefix) == (sp is not None)
                assert is_resilient(st, prefix) == (sp is not None and sp.kind == "resilient")
                assert cached_space(st, prefix, 50) == sp
                assert cached_space(st, prefix, 50) is cached_space(st, prefix, 50)
                assert space_inputs(st, prefix) == space_inputs(st, prefix)


async def test_groups_table_lines_are_the_whole_table():
    """Wide layout: each lazily drawn line equals the same line of the whole table, and the columns fit."""
    app = _app()
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        panel = app.query_one(GroupsPanel)
        w = panel.content_size.width
        whole = panel.render().plain.splitlines()
        assert len(whole) == panel.line_count(w) == 1 + sum(max(1, len(g.hops)) for g in panel.groups)
        assert whole[0].split() == ["device", "group", "next", "hop", "dev", "neighbour", "weight", "buckets",
                                    "flags"]
        for y in (1, len(whole) // 2, len(whole) - 1):
            assert panel.line(y, w).plain == whole[y] and len(whole[y]) <= w
        assert any(ln.startswith("spine40") for ln in whole)


def test_identity_memo_is_bounded_and_forgets_replaced_states():
    from anycast_tui.model.views import IdentityMemo

    memo = IdentityMemo(3)
    objs = [object() for _ in range(10)]
    for o in objs:
        assert memo.get(o, "k", lambda o=o: id(o)) == id(o)
    assert len(memo._d) <= 3  # even a tiny memo evicts (the owners memo holds whole snapshots)
    calls = []
    memo.get(objs[-1], "k", lambda: calls.append(1))
    assert calls == []  # still there
    memo.retain(set())
    assert memo._d == {}
