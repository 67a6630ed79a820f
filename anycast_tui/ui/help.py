"""The help screen: every key binding, generated from the app's bindings."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

ABOUT = ("Views: 1 Fabric · 2 Groups · 3 Flows · 4 Events · 5 What-if · 6 or ? this help.  "
         "[ ] select an event: every view marks what it changed.\n"
         "Health: ✓ ok · ! stale (last good data shown) · ✗ error · ? not polled yet.  Placement: = exact · "
         "≈ approximate · ? unknown (a line says why, e.g. hash seed 0).\n"
         "Events: − removed · + added · ~ changed · ✗ unreachable · ✓ back.  Times are UTC.\n"
         "Flows: ✗ TCP reset · ↷ UDP moved, continues · → other moved · ⑂ the client's flows were split "
         "across servers.  Sample client flows (203.0.113.0/24) entering at the spines.\n"
         "Bucket bars: one glyph and colour per next hop (█ ▓ ▒ ░ ▚ ▞ …); ^ under a cell: the selected "
         "event moved it; • busy / · idle resilient buckets; share/target when they differ.\n"
         "Keys can be rebound by id (shown in brackets) in the [keymap] table of a TOML config.")


class HelpScreen(ModalScreen[None]):
    """Modal list of (key, action); escape or ? closes it (q still quits)."""

    BINDINGS = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark", "dismiss", "close", show=False),
    ]

    def __init__(self, lines: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        t = Table(box=None, show_header=False, pad_edge=False)
        t.add_column("key", style="bold", no_wrap=True)
        t.add_column("action")
        for key, what in self.lines:
            t.add_row(Text(key), Text(what))  # plain text: "[view.flows]" is not markup
        with VerticalScroll(id="help-box") as box:
            box.border_title = "keys"
            box.border_subtitle = "esc closes"
            yield Static(t, id="help-keys")
            yield Static(ABOUT, id="help-about", markup=False)  # "[keymap]", "[ ]": text, not markup
