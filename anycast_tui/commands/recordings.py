"""``anycast-tui recordings [DIR]``: list session files with their window, size and event count."""

from __future__ import annotations

import argparse
from pathlib import Path

from anycast_tui.commands import jsonout
from anycast_tui.commands.argtypes import Subcommands

EXAMPLES = """examples:
  anycast-tui recordings                     the default directory (~/.local/share/anycast-tui/recordings)
  anycast-tui recordings /var/lib/atui --json
"""


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("recordings", help="list recorded sessions: window, size, events",
                       description="List the session files of a directory, oldest first: their time window, "
                       "size on disk, number of events, and whether they were closed cleanly or are damaged.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", type=Path, help="recordings directory (default: the user's data directory)")
    p.add_argument("--json", action="store_true", help="one JSON object per session, as a list")
    return p


def describe(path: Path) -> dict:
    """Window, size, ticks, events and state of one session file; a damaged file says what is lost, one that
    cannot be read says why (never an exception: one file never stops the listing of the others)."""
    from anycast_tui.record.retention import _size
    from anycast_tui.record.reader import Recording, RecordingError

    out: dict = {"file": str(path), "bytes": _size(path)}
    try:
        with Recording.open(path) as rec:  # every CRC checked (~25 % of an open): a damaged data block is said too
            w = rec.window
            out.update(start_ms=w[0] if w else None, end_ms=w[1] if w else None, ticks=len(rec.ticks()),
                       events=len(rec.events), schema=rec.schema_version,
                       state="closed" if "closed_ms" in rec.meta else "open or interrupted")
            if rec.damage is not None:
                out.update(state="damaged", damage=str(rec.damage))
    except RecordingError as exc:
        out.update(state="unreadable", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a reader bug must not hide the other files
        out.update(state="unreadable", error=f"{path}: {type(exc).__name__}: {exc}")
    return out


def _human(n: int) -> str:
    x = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if x < 1000 or unit == "GB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1000
    return str(x)


def run(args: argparse.Namespace) -> int:
    from anycast_tui.errors import CliError
    from anycast_tui.record.paths import default_dir, list_recordings
    from anycast_tui.record.timefmt import iso

    d = args.dir or default_dir()
    if args.dir is not None and not d.is_dir():
        raise CliError(f"{d}: not a directory")
    rows = [describe(p) for p in list_recordings(d)]
    if args.json:
        jsonout.emit(rows, indent=2)
        return 0
    if not rows:
        print(f"no recordings in {d}")
        return 0
    print(f"{'FILE':40} {'START (UTC)':20} {'DURATION':>9} {'SIZE':>9} {'EVENTS':>7}  STATE")
    for r in rows:
        start = iso(r["start_ms"], ms=False) if r.get("start_ms") is not None else "-"
        dur = "-"
        if r.get("start_ms") is not None:
            s = (r["end_ms"] - r["start_ms"]) // 1000
            dur = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
        why = r.get("damage") or r.get("error", "").replace(f"{r['file']}: ", "", 1)
        state = r["state"] if not why else f"{r['state']}: {why.removeprefix('damaged: ')}"
        print(f"{Path(r['file']).name:40} {start:20} {dur:>9} {_human(r['bytes']):>9} {r.get('events', '-'):>7}  "
              f"{state}")
    return 0
