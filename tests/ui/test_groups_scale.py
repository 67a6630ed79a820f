"""The Groups view with many groups: only the lines on screen are drawn (line API), and what is drawn is
what the whole panel says; scrolling reaches the last group."""

from __future__ import annotations

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model import hashspace as model_views
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
        lines, entries = bars.layout_for(bars.bar_width)
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
    from anycast_tui.model.hashspace import cached_space, group_space, has_space, is_resilient, space_inputs
    from anycast_tui.model.memo import routes_to

    for cfg in (SimConfig(spines=3, leaves=3, servers_per_leaf=2), SimConfig(resilient=True)):
        snap = SimFabric(cfg, clock=lambda: T0).snapshot(int(T0 * 1000))
        for st in snap.devices.values():
            for prefix in (cfg.anycast4, cfg.anycast6, "203.0.113.0/24"):
                assert routes_to(st, prefix) == tuple(r for r in st.routes if r.dst == prefix)
                sp = group_space(st, prefix, cells=50)
                assert has_space(st, prefix) == (sp is not None)
                assert is_resilient(st, prefix) == (sp is not None and sp.kind == "resilient")
                assert cached_space(st, prefix, 50) == sp
                route = _anycast_route(st, prefix)
                assert (space_inputs(st, prefix) is None) == (route is None)
                if route is not None:
                    assert space_inputs(st, prefix)[0] == route


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


def _anycast_route(st, prefix):  # noqa: ANN001, ANN202
    """The device's forwarding route to ``prefix`` (main table, unicast; the simulator makes at most one)."""
    found = [r for r in st.routes if r.dst == prefix and r.table != "local" and r.type == "unicast"]
    assert len(found) <= 1
    return found[0] if found else None


def _expected_hops(sim: SimFabric, name: str) -> dict[str, int]:
    """Neighbour -> weight of ``name``'s anycast group, from the simulated topology itself: a leaf forwards
    to its servers that announce the prefix; a spine to the leaves that are up and have such a server."""
    cfg = sim.config
    announcing = set(sim.announcing())
    serving = {f"leaf{li:02d}": sorted(f"server{(li - 1) * cfg.servers_per_leaf + k:02d}"
                                       for k in range(1, cfg.servers_per_leaf + 1)
                                       if f"server{(li - 1) * cfg.servers_per_leaf + k:02d}" in announcing)
               for li in range(1, cfg.leaves + 1) if sim.is_up(f"leaf{li:02d}")}
    if name.startswith("leaf"):
        return dict.fromkeys(serving.get(name, []), 1)
    return dict.fromkeys((leaf for leaf, srv in serving.items() if srv), 1)


def _check_groups_against_the_fabric(sim: SimFabric, snap, weights: dict[tuple[str, str, str], int]) -> int:  # noqa: ANN001
    """Every group view and (memoised) bucket bar of ``snap`` against what the simulator built."""
    from anycast_tui.model.hashspace import cached_space
    from anycast_tui.ui import view

    cfg = sim.config
    seen = 0
    gateway_of = {}  # (device, neighbour) -> the neighbour's address on their link, from the neighbour's side
    for g in view.group_views(snap, (cfg.anycast4, cfg.anycast6)):
        st = snap.devices[g.device]
        assert sim.is_up(g.device)
        if g.role.name == "SERVER":
            # the server answers the prefix itself (IPv4: a local address; IPv6: also a route via lo)
            assert g.kind in ("local address", "single path") and all(h.dev == "lo" for h in g.hops)
            continue
        want = {n: weights.get((g.device, g.prefix, n), w) for n, w in _expected_hops(sim, g.device).items()}
        got = {h.neighbour: h.weight for h in g.hops}
        assert got == want, (g.device, g.prefix)
        assert all(h.usable for h in g.hops)
        seen += 1
        sp = cached_space(st, g.prefix, 64)
        if len(want) < 2 and not (cfg.resilient and g.role.name == "SPINE"):
            assert sp is None and g.kind in ("single path", "no route")
            continue
        assert sp is not None
        held = {h.gateway: sp.owners.count(h.gateway) for h in g.hops}
        assert sum(held.values()) == len(sp.owners)  # every cell owned by one of the group's next hops
        for h in g.hops:
            gateway_of[(g.device, h.neighbour)] = h.gateway
        if cfg.resilient and g.role.name == "SPINE":
            # the kernel's bucket table as the simulator holds it: buckets per member, by next hop id
            nh_gw = {o.id: o.gateway for o in sim.nexthops(g.device).objects}
            table = [b for b in sim.buckets(g.device) if b.group_id == (200 if g.prefix == cfg.anycast4 else 206)]
            assert g.kind.startswith("resilient group") and len(sp.owners) == len(table) == cfg.buckets
            assert held == {gw: sum(1 for b in table if nh_gw[b.nhid] == gw) for gw in held}
            assert {h.gateway: h.buckets for h in g.hops} == held
        else:
            total = sum(want.values())
            for h in g.hops:  # hash-threshold: each next hop holds its weight's part of the space, in order
                assert abs(held[h.gateway] - 64 * h.weight / total) <= 1, (g.device, h.neighbour)
            runs = [sp.owners[0]] + [b for a, b in zip(sp.owners, sp.owners[1:]) if a != b]
            assert runs == [h.gateway for h in g.hops]
    # each spine's next hop to a leaf is the leaf's own address on the link between them
    for (dev, nb), gw in gateway_of.items():
        assert view.address_owners(snap)[gw] == nb
        assert any(a.local == gw for itf in snap.devices[nb].interfaces for a in itf.addresses)
    return seen


def test_group_views_of_a_large_fabric_are_its_topology():
    """The Groups view and its bucket bars of a 40-spine fabric, before and after a leaf fails, a server
    withdraws and a spine re-weights, say what the simulated fabric forwards to (neighbours, weights, share
    of the hash space, the resilient bucket table); the bars memoised on the first snapshot's states are
    not reused for the changed fabric's, and an equal snapshot taken apart gives the same answers."""
    from anycast_tui.model.hashspace import cached_space, group_space

    for cfg in (SimConfig(spines=40, leaves=6, servers_per_leaf=2),
                SimConfig(spines=40, leaves=6, servers_per_leaf=2, resilient=True)):
        sim = SimFabric(cfg, clock=lambda: T0)
        before = sim.snapshot(int(T0 * 1000))
        assert _check_groups_against_the_fabric(sim, before, {}) == 2 * (40 + 6)
        sim.fail_device("leaf03")
        sim.withdraw("server01")
        sim.withdraw("server09")
        sim.withdraw("server10")  # leaf05 has no server left: no spine forwards to it
        weights = {}
        if not cfg.resilient:
            sim.set_weight("spine07", cfg.anycast4, "swp2", 3)
            weights[("spine07", cfg.anycast4, "leaf02")] = 3
        after = sim.snapshot(int(T0 * 1000) + 1000)
        seen = _check_groups_against_the_fabric(sim, after, weights)
        assert seen == 2 * (40 + 5)  # leaf03 is down: no view (leaf05's says "no route")
        again = sim.snapshot(int(T0 * 1000) + 1000)
        for name, st in again.devices.items():
            if st.collected_at_ms is None:
                continue
            assert st == after.devices[name] and st is not after.devices[name]
            for prefix in (cfg.anycast4, cfg.anycast6):
                assert cached_space(st, prefix, 64) == cached_space(after.devices[name], prefix, 64) \
                    == group_space(st, prefix, 64)
        assert _check_groups_against_the_fabric(sim, again, weights) == seen


def test_identity_memo_is_bounded_and_forgets_replaced_states():
    from anycast_tui.model.memo import IdentityMemo

    memo = IdentityMemo(3)
    objs = [object() for _ in range(10)]
    for o in objs:
        assert memo.get(o, "k", lambda o=o: id(o)) == id(o)
    assert len(memo) <= 3  # even a tiny memo evicts (the owners memo holds whole snapshots)
    calls = []
    memo.get(objs[-1], "k", lambda: calls.append(1))
    assert calls == []  # still there
    memo.retain(set())
    assert len(memo) == 0
