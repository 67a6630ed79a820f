"""SVG picture of the groups view at an event: per device, the anycast ECMP group before and after.

Drawn with rich (``Console(record=True)`` + ``export_svg``) from plain rows, so the
report can scrub the rows before drawing.  Rows: ``[device, side, next hop,
weight, share]`` with ``side`` ``before`` or ``after`` and ``share`` as the
report prints it (``"50.0%"`` or ``"50.0% (64/128 buckets)"``).
"""

from __future__ import annotations

import io
import re
from typing import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

WIDTH = 110
BAR = 14
_PCT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)%")
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}\s*")  # rich links a web font: the report stays offline


def share_of(share: str) -> float:
    """The percentage at the start of a share cell (0 when there is none)."""
    m = _PCT.match(share)
    return float(m.group(1)) if m else 0.0


def _bar(pct: float) -> str:
    full = round(BAR * max(0.0, min(pct, 100.0)) / 100)
    return "█" * full + "░" * (BAR - full)


def _side(rows: list[Sequence[str]], other: list[Sequence[str]], after: bool) -> Text:
    """One side of a device's row.  Before: next hops gone after in red.  After: new or re-weighted
    next hops in yellow, unchanged ones dimmed."""
    if not rows:
        return Text("(no route)", style="dim")
    shares = {r[2]: r[4] for r in other}
    out = Text()
    for k, (_dev, _side_name, hop, weight, share) in enumerate(rows):
        if k:
            out.append("\n")
        pct = share_of(share)
        if after:
            changed = shares.get(hop) != share
            colour, note = ("yellow" if changed else "green"), ("  new" if hop not in shares else "")
        else:
            changed = hop not in shares
            colour, note = ("red" if changed else "green"), ("  gone" if changed else "")
        if pct == 0:
            colour = "red"
        out.append(f"{hop}{note}\n", style="bold" if changed else "")
        out.append(_bar(pct), style=colour)
        out.append(f" {share}  w{weight}", style="bold" if changed else "dim")
    return out


def groups_svg(title: str, rows: Sequence[Sequence[str]], *, width: int = WIDTH) -> str:
    """One SVG document: a table of devices with their group before and after (bars = shares)."""
    table = Table(title=title, title_justify="left", expand=True, show_lines=True)
    table.add_column("Device", no_wrap=True, style="bold cyan")
    table.add_column("Before")
    table.add_column("After")
    devices: list[str] = []
    for r in rows:
        if r[0] not in devices:
            devices.append(r[0])
    for dev in devices:
        before = [r for r in rows if r[0] == dev and r[1] == "before"]
        after = [r for r in rows if r[0] == dev and r[1] == "after"]
        table.add_row(dev, _side(before, after, False), _side(after, before, True))
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor", force_terminal=True,
                      legacy_windows=False)
    console.print(table)
    return _FONT_FACE.sub("", console.export_svg(title="anycast-tui: groups view"))
