"""Keymap config ([keymap] table of binding ids) and the replay seek prompt's time forms."""

from __future__ import annotations

import pytest

from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.keymap import KeymapError, load_keymap
from anycast_tui.ui.seek import parse_hms

START = 1_764_000_000_000  # 2025-11-24 16:00:00 UTC


def test_keymap_table_is_read_and_its_ids_exist(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('[keymap]\n"view.flows" = "f3, 3"\n"event.next" = "n"\n')
    km = load_keymap(p)
    assert km == {"view.flows": "f3,3", "event.next": "n"}
    ids = {b.id for b in AnycastApp.BINDINGS}
    assert set(km) <= ids
    (tmp_path / "none.toml").write_text("[other]\nx = 1\n")
    assert load_keymap(tmp_path / "none.toml") == {}


@pytest.mark.parametrize("text", ['[keymap]\n"view.flows" = 3\n', "keymap = 1\n", "[keymap\n"])
def test_bad_keymap_is_one_clear_error(tmp_path, text):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(KeymapError, match="bad.toml"):
        load_keymap(p)


def test_seek_times():
    assert parse_hms("16:00:05", START) == START + 5000
    assert parse_hms("16:01", START) == START + 60_000
    assert parse_hms("+2.5", START) == START + 2500
    assert parse_hms("25:00:00", START) is None and parse_hms("soon", START) is None


async def test_help_lists_the_keys_the_keymap_gave():
    """The help screen's keys come from BINDINGS and the keymap (set_keymap): the rebound key, not the old."""
    from anycast_tui.lab.sim import SimFabric
    from anycast_tui.session import SimSession

    t0 = START / 1000
    sim = SimFabric(clock=lambda: t0)
    session = SimSession(sim, clock=lambda: t0)
    session.poll()
    app = AnycastApp(session, clock=lambda: t0, keymap={"view.flows": "f3,x", "event.next": "n"})

    def keys() -> dict[str, str]:
        return {what.rsplit("[", 1)[1].rstrip("]"): key for key, what in app.help_lines() if what.endswith("]")}

    assert keys()["view.flows"] == "f3,x" and keys()["event.next"] == "n"
    assert keys()["view.groups"] == "2" and keys()["app.help"] == "?" and keys()["event.previous"] == "["
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        assert app.view == "fabric"  # 3 is no longer the Flows view's key
        await pilot.press("x")
        await pilot.pause()
        assert app.view == "flows"
        app.update_keymap({"view.groups": "f2"})
        assert keys()["view.groups"] == "f2" and keys()["view.flows"] == "f3,x"
