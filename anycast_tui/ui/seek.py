"""Replay seek prompt: ``HH:MM[:SS]`` (UTC, the recording's first day), ``+SECONDS`` or ISO 8601."""

from __future__ import annotations

import datetime as _dt

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input


def parse_hms(text: str, start_ms: int) -> int | None:
    """Epoch ms of ``text`` relative to a recording starting at ``start_ms``; None when unreadable."""
    from anycast_tui.record.timefmt import parse_time

    s = text.strip()
    parts = s.split(":")
    if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
        h, m, sec = (int(p) for p in (parts + ["0"])[:3])
        if h > 23 or m > 59 or sec > 59:
            return None
        day = _dt.datetime.fromtimestamp(start_ms / 1000, tz=_dt.timezone.utc).replace(
            hour=h, minute=m, second=sec, microsecond=0)
        return int(day.timestamp() * 1000)
    try:
        return parse_time(s, start_ms=start_ms)
    except ValueError:
        return None


class SeekScreen(ModalScreen[str | None]):
    """One input line; enter seeks, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        box = Input(placeholder="seek to HH:MM:SS (UTC), +SECONDS or ISO time", id="seek-input")
        box.border_title = "seek"
        yield box

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)
