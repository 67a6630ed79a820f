"""``anycast-tui report FILE``: the postmortem of a recording (Markdown, self-contained HTML or JSON)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from anycast_tui.commands.argtypes import Subcommands

EXAMPLES = """examples:
  anycast-tui report session.atrec                              Markdown on stdout
  anycast-tui report session.atrec -o postmortem.html           one self-contained HTML file
  anycast-tui report session.atrec --format json                the incidents as data (schema in the README)
  anycast-tui report session.atrec --all -o pm.md               every event in the timeline, SVGs beside pm.md
  anycast-tui report session.atrec --from 2026-11-26T14:00:00Z --to +600 --scrub
                                                                ten minutes, addresses and host names replaced
"""


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="postmortem of a recording (Markdown / HTML / JSON)",
                       description="Summarise a recorded session as a postmortem: window, devices, incidents (the "
                       "events of one cause) with the flows they moved, measured on live connections and estimated "
                       "on synthetic flows, the worst incident, placement quality, the anycast timeline, and per "
                       "incident its events, from→to servers and the ECMP groups that changed (pictures inline in "
                       "HTML; SVG files beside OUT.md).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="session file (.atrec)")
    p.add_argument("--from", dest="t_from", metavar="T",
                   help="start: ISO time (UTC unless it says), epoch ms, or +SECONDS after the recording's start")
    p.add_argument("--to", dest="t_to", metavar="T", help="end: same forms (+SECONDS counts from --from)")
    p.add_argument("--format", choices=("md", "html", "json"),
                   help="default: html if OUT ends in .html, json if .json, else md")
    p.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    p.add_argument("--all", dest="all_events", action="store_true",
                   help="every event in the timeline (default: anycast events and device/link health)")
    p.add_argument("-o", "--output", metavar="OUT", type=Path, help="write here (mode 0600) instead of stdout")
    p.add_argument("--scrub", action="store_true", help="replace addresses and host names by consistent pseudonyms")
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.errors import CliError
    from anycast_tui.record.report import report
    from anycast_tui.record.reader import Recording, RecordingError
    from anycast_tui.record.timefmt import parse_time

    try:
        rec = Recording.open(args.file)
    except RecordingError as exc:
        raise CliError(str(exc)) from None
    with rec:
        w = rec.window
        start = w[0] if w else 0
        try:
            t0 = parse_time(args.t_from, start_ms=start) if args.t_from else None
            t1 = parse_time(args.t_to, start_ms=t0 if t0 is not None else start) if args.t_to else None
        except ValueError as exc:
            raise CliError(f"bad time: {exc}") from None
        if t0 is not None and t1 is not None and t1 < t0:
            raise CliError("--to is before --from")
        suffix = args.output.suffix.lower() if args.output else ""
        fmt = args.format or ("html" if suffix in (".html", ".htm") else "json" if suffix == ".json" else "md")
        if rec.damage is not None:
            print(f"anycast-tui report: {args.file}: {rec.damage}", file=sys.stderr)
        files: dict[str, str] | None = {} if args.output is not None and fmt == "md" else None
        prefix = f"{args.output.stem}-" if args.output is not None else ""
        text = report(rec, fmt=fmt, t0=t0, t1=t1, scrub=args.scrub, pictures=True,
                      files=files, file_prefix=prefix, all_events=args.all_events)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    _write(args.output, text)
    for name, svg in (files or {}).items():
        _write(args.output.parent / name, svg)
    extra = f" and {len(files)} SVG pictures beside it" if files else ""
    print(f"wrote {args.output} ({fmt}, {args.output.stat().st_size} bytes){extra}", file=sys.stderr)
    return 0


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
