"""``anycast-tui replay FILE``: the TUI over a recording (play/pause, speed, seek, event by event)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from anycast_tui.commands.argtypes import Subcommands

if TYPE_CHECKING:  # imported where used (start-up time of the other commands)
    from anycast_tui.record.reader import Recording
    from anycast_tui.record.replay import RecordedEventImpacts
    from anycast_tui.ui.app import AnycastApp

EXAMPLES = """examples:
  anycast-tui replay ~/.local/share/anycast-tui/recordings/fabric-20261126.atrec
  anycast-tui replay session.atrec --speed 10 --play     start playing at x10
keys: space play/pause · [ ] previous/next event · + - speed x1..x60 · g seek (HH:MM:SS UTC, +SECONDS)
"""


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("replay", help="replay a recording in the TUI",
                       description="Open a recording made by `anycast-tui record` and drive it like a live "
                       "session: play, pause, speed, seek and step through its events.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="recording (.atrec)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed, 1..60 (default 1)")
    p.add_argument("--play", action="store_true", help="start playing at once")
    from anycast_tui.ui.options import add_ui_options

    add_ui_options(p)
    return p


def prefixes_of(rec: Recording) -> tuple[str, ...]:
    """The anycast prefixes the recording was made with (its inventory, else its first snapshot)."""
    try:
        inv = json.loads(rec.meta.get("inventory") or "null")
    except ValueError:
        inv = None
    if isinstance(inv, dict) and inv.get("anycast_prefixes"):
        return tuple(inv["anycast_prefixes"])
    return ()


def build(rec: Recording, *, speed: float = 1.0, **ui: Any) -> tuple[AnycastApp, RecordedEventImpacts]:
    """(app, tracker) over a ReplaySession of ``rec``."""
    from anycast_tui.record.replay import RecordedEventImpacts, RecordedIncidents, ReplaySession
    from anycast_tui.session import DEFAULT_PREFIXES
    from anycast_tui.ui.app import AnycastApp

    session = ReplaySession(rec, speed=speed)
    snap = session.timeline.snapshot
    prefixes = prefixes_of(rec) or (snap.anycast_prefixes if snap is not None else ()) or DEFAULT_PREFIXES
    session.timeline.anycast_prefixes = tuple(prefixes)
    tracker = RecordedEventImpacts(rec, session.timeline)
    incidents = RecordedIncidents(rec)
    app = AnycastApp(session, title=f"anycast-tui replay · {rec.path.name}", impact=tracker, prefixes=prefixes,
                     clock=lambda: session.position_ms / 1000, replay=session, incidents=incidents, **ui)
    return app, tracker


def run(args: argparse.Namespace) -> int:
    from anycast_tui.errors import CliError
    from anycast_tui.record.reader import Recording, RecordingError
    from anycast_tui.ui.options import ui_options

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("the TUI needs a terminal; use `anycast-tui report FILE` for a text summary")
    ui = ui_options(args)
    try:
        rec = Recording.open(args.file)
    except RecordingError as exc:
        raise CliError(str(exc)) from None
    with rec:
        try:
            app, tracker = build(rec, speed=args.speed, **ui)
        except RecordingError as exc:
            raise CliError(str(exc)) from None
        if args.play:
            app.replay.play()
        try:
            asyncio.run(app.run_async())
        finally:
            tracker.close()
    return 0
