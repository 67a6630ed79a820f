"""The Fabric view's placement quality per device (= exact, ≈ approximate, ? unknown) and its hint,
over the simulator with some devices' hash seed set to 0, at 80x24 and 200x60."""

from __future__ import annotations

import dataclasses

import pytest

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.hashing import Placement
from anycast_tui.model.placement import PLACEMENTS, compile_device
from anycast_tui.model.types import Device, Role
from anycast_tui.model.views import SEED_HINT, device_quality
from anycast_tui.session import SimSession
from anycast_tui.ui import palette
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.widgets import FabricPanel

T0 = 1_764_000_000.0
SIZES = [(80, 24), (200, 60)]


def _session(seed0: tuple[str, ...]) -> SimSession:
    sim = SimFabric(clock=lambda: T0)
    for name in seed0:  # the device's sysctl then answers fib_multipath_hash_seed = 0
        sim.set_hash(name, seed=0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    return session


def test_quality_is_the_placement_engines_label():
    snap = _session(("leaf03", "spine02")).timeline.snapshot
    for name, st in snap.devices.items():
        q = device_quality(st)
        hashed = [d for d in compile_device(st).decisions if d.hashed]
        worst = max((d.placement for d in hashed), default=0)
        if hashed:  # the engine's label of every multipath route of the device
            assert q.placement is PLACEMENTS[worst], name
        want = Placement.UNKNOWN if name in ("leaf03", "spine02") else Placement.EXACT
        assert q.placement is want, name
        assert (q.hint == SEED_HINT) == (want is Placement.UNKNOWN)
    st = snap.devices["leaf01"]
    hw = dataclasses.replace(st, device=Device("leaf01", Role.LEAF, "cumulus"))
    assert device_quality(hw).placement is Placement.UNKNOWN and "cumulus" in device_quality(hw).hint
    neigh = dataclasses.replace(st, hash=dataclasses.replace(st.hash, use_neigh=True))
    assert device_quality(neigh).placement is Placement.APPROXIMATE
    assert device_quality(dataclasses.replace(st, collected_at_ms=None)) is None


@pytest.mark.parametrize("size", SIZES)
async def test_fabric_view_shows_quality_per_device_and_the_seed_hint(size):
    app = AnycastApp(_session(("leaf03", "spine02")), clock=lambda: T0)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        panel = app.query_one(FabricPanel)
        lines = panel.render().plain.splitlines()
        assert {r.name: r.placement for r in panel.rows if r.placement is not Placement.EXACT} == \
            {"leaf03": Placement.UNKNOWN, "spine02": Placement.UNKNOWN}
        hint = [ln for ln in lines if SEED_HINT in ln]
        assert hint == [f"? spine02, leaf03: {SEED_HINT}"]  # one line, whole
        assert len(hint[0]) <= panel.content_size.width
        if size[0] >= 84 + 4:  # table: a placement column
            assert any("leaf03" in ln and ln.rstrip().endswith("? unknown") for ln in lines)
            assert any("leaf01" in ln and ln.rstrip().endswith("= exact") for ln in lines)
        else:  # compact: a glyph after each name and a count line
            assert any("leaf03 ?" in ln and "leaf01 =" in ln for ln in lines)
            assert any(ln.startswith("placement") and "= exact 8" in ln and "? unknown 2" in ln for ln in lines)
        assert panel.region.bottom <= size[1]  # the whole panel is on screen
        svg = app.export_screenshot()
    assert palette.BAD.lower() in svg.lower()  # unknown: vermillion, beside its glyph


async def test_exact_fabric_has_no_hint_and_no_color_keeps_the_glyphs(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = AnycastApp(_session(("leaf03",)), clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.query_one(FabricPanel).render().plain
        svg = app.export_screenshot()
    assert "leaf03 ?" in text and "leaf01 =" in text
    for colour in (palette.OK, palette.BAD, palette.WARN):
        assert colour.lower() not in svg.lower()
    app = AnycastApp(_session(()), clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.query_one(FabricPanel).render().plain
    assert "= exact 10" in text and "?" not in text
