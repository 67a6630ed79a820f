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
