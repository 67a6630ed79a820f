"""Okabe–Ito colours (safe for the common colour-vision deficiencies) and the glyph paired with each."""

from __future__ import annotations

from anycast_tui.model.hashing import Placement

OK = "#009E73"  # bluish green
WARN = "#E69F00"  # orange
BAD = "#D55E00"  # vermillion
INFO = "#56B4E9"  # sky blue
NAME = "#0072B2"  # blue
ACCENT = "#CC79A7"  # reddish purple
YELLOW = "#F0E442"

# Next hops in a bucket bar: colour i with glyph i, so the bar reads without colour too.
HOP_COLOURS = (WARN, INFO, OK, YELLOW, NAME, BAD, ACCENT, "#999999")
HOP_GLYPHS = ("█", "▓", "▒", "░", "▚", "▞", "▤", "▥")


def hop_style(i: int) -> tuple[str, str]:
    """(glyph, colour) of the ``i``-th next hop of a group."""
    return HOP_GLYPHS[i % len(HOP_GLYPHS)], HOP_COLOURS[i % len(HOP_COLOURS)]


_PLACEMENT_STYLE = {Placement.EXACT: OK, Placement.APPROXIMATE: WARN, Placement.UNKNOWN: BAD}


def placement_style(placement: Placement | None) -> str:
    """Colour of a placement quality (exact / approximate / unknown), shown beside its glyph = ≈ ?; dim for
    none (before the first poll)."""
    return "dim" if placement is None else _PLACEMENT_STYLE[placement]

