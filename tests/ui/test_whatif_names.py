"""What-if rows name the neighbour a next hop leads to (the fabric's own interface addresses say which), not its
gateway address; a device name is shown as text, never read as markup."""

from __future__ import annotations

from anycast_tui.lab.demo import SimControls
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.whatif import WhatIfKind
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.whatif import WhatIfView

T0 = 1_764_000_000.0


def _app() -> tuple[AnycastApp, SimFabric]:
    t = [T0]
    clock = lambda: t[0]  # noqa: E731
    sim = SimFabric(clock=clock)
    session = SimSession(sim, clock=clock)
    session.poll()
    t[0] += 1
    session.poll()
    return AnycastApp(session, controls=SimControls(sim), clock=clock,
                      impact=ImpactTracker(session.timeline, n_flows=2000)), sim


def _holder(sim: SimFabric, gateway: str) -> str:
    """The device whose own `ip -j addr show` holds ``gateway``."""
    (name,) = [n for n in sim.devices
               if f'"local":"{gateway}"' in sim.handle(n, "ip -j addr show").stdout.replace(" ", "")]
    return name


async def _run(app: AnycastApp, pilot, *keys: str) -> str:
    await pilot.press(*keys)
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    return app.query_one(WhatIfView).result.plain


async def test_result_rows_name_neighbours_not_gateways():
    app, sim = _app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.impact.wait(60)
        await pilot.press("5")
        await pilot.pause()
        w = app.query_one(WhatIfView)
        first = w.candidates[0]
        assert first.device == "spine01" and first.kind is WhatIfKind.FAIL_NEXTHOP
        leaf = _holder(sim, first.target)
        assert leaf.startswith("leaf")
        text = await _run(app, pilot, "down", "enter")
        title = text.splitlines()[0]
        assert title.startswith(f"spine01: fail {leaf}") and first.target not in title
        # each, one at a time: the spines' next hops by their leaves
        text = await _run(app, pilot, "home", "enter")
        rows = [ln for ln in text.splitlines()[3:] if ln.strip()]
        hops = [c for c in w.candidates if c.kind is WhatIfKind.FAIL_NEXTHOP and c.device == "spine01"]
        labels = {ln.split("  ")[-1] for ln in rows if "spine01: fail " in ln}
        assert len(labels) == len(hops) == 8  # 4 leaves, IPv4 and IPv6: told apart, each named
        for c in hops:
            assert c.target not in text
            assert len([lb for lb in labels if lb.startswith(f"spine01: fail {_holder(sim, c.target)}")]) == 2
        # the safest drain order of two marked next hops
        text = await _run(app, pilot, "home", "down", "m", "down", "m", "d")
        assert "safest drain order of 2" in text
        for c in w.candidates[:2]:
            assert f"fail {_holder(sim, c.target)}" in text and c.target not in text
