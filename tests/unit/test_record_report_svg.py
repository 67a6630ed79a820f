"""Groups-view pictures: valid standalone SVG drawn from plain rows, offline, changes marked."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from anycast_tui.record.report_svg import groups_svg, share_of

ROWS = [
    ["spine01", "before", "via 198.19.0.1 dev swp1", "1", "50.0%"],
    ["spine01", "before", "via 198.19.0.5 dev swp3", "1", "50.0%"],
    ["spine01", "after", "via 198.19.0.1 dev swp1", "1", "100.0%"],
    ["leaf01", "before", "id 7 via 198.19.0.9 dev swp1", "1", "100.0% (128/128 buckets)"],
    ["leaf01", "after", "id 7 via 198.19.0.9 dev swp1", "1", "100.0% (128/128 buckets)"],
    ["server01", "after", "dev lo", "1", "100.0%"],
]


def _text(svg: str) -> str:
    """The characters the SVG draws (rich splits lines into <text> runs and escapes spaces)."""
    root = ET.fromstring(svg)
    return "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")).replace("\xa0", " ")


def test_svg_is_standalone_and_shows_every_device_and_share():
    svg = groups_svg("Picture 1: 192.0.2.53/32", ROWS)
    assert svg.startswith("<svg") and ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    assert not re.search(r"@font-face|https?://[^\s\"<]*\.(woff2?|css|js)|url\((?![\"']?#)", svg)
    drawn = _text(svg)
    for dev in ("spine01", "leaf01", "server01"):
        assert dev in drawn
    assert "192.0.2.53/32" in drawn and "128/128 buckets" in drawn and "100.0%" in drawn


def test_changes_are_marked():
    drawn = _text(groups_svg("t", ROWS))
    assert re.search(r"via 198\.19\.0\.5 dev swp3 +gone", drawn)  # next hop lost
    assert "swp1 gone" not in drawn
    assert "(no route)" in drawn  # server01 had no route before
    new = _text(groups_svg("t", [["a", "before", "x", "1", "100.0%"], ["a", "after", "y", "1", "100.0%"]]))
    assert re.search(r"y +new", new)


@pytest.mark.parametrize("cell,pct", [("25.0%", 25.0), ("33.3% (43/128 buckets)", 33.3), ("0%", 0.0), ("", 0.0)])
def test_share_of(cell, pct):
    assert share_of(cell) == pytest.approx(pct)
