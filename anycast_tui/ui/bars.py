"""Bucket bars: each device's ECMP group for the anycast prefix as a strip coloured per next hop.

Cells come from :func:`anycast_tui.model.views.group_space` at the bar's
width; ``^`` under a cell marks the selected event moved it; resilient groups
get a row of ``•`` busy / ``·`` idle buckets.  Shares are shown beside targets.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from rich.console import RenderableType
from rich.text import Text

from anycast_tui.model.types import FabricSnapshot, Role
from anycast_tui.model.views import Space, group_space, moved_cells, sample
from anycast_tui.ui import palette as pal
from anycast_tui.ui.view import ROLE_ORDER, address_owners
from anycast_tui.ui.widgets import Panel

NAME_W = 9


class BucketBars(Panel):
    """Bars of ``snapshot`` (and the marks of ``before``→``snapshot`` when an event is selected)."""

    snapshot: FabricSnapshot | None = None
    before: FabricSnapshot | None = None
    prefixes: tuple[str, ...] = ()
    focus_device: str | None = None
    caption = ""

    def show(self, snapshot: FabricSnapshot | None, prefixes: Sequence[str], *,
             before: FabricSnapshot | None = None, device: str | None = None, caption: str = "") -> None:
        new = (snapshot, tuple(prefixes), before, device, caption)
        if new == (self.snapshot, self.prefixes, self.before, self.focus_device, self.caption):
            return
        self.snapshot, self.prefixes, self.before, self.focus_device, self.caption = new
        self.changed()

    def spaces(self, width: int) -> list[tuple[str, str, Space, tuple[bool, ...]]]:
        """(device, prefix, space at ``width`` cells, moved cells) for every device with a multipath group."""
        snap = self.snapshot
        if snap is None:
            return []
        out = []
        states = sorted(snap.devices.values(), key=lambda s: (ROLE_ORDER.index(s.device.role), s.device.name))
        for prefix in self.prefixes:
            for st in states:
                if st.device.role is Role.SERVER:
                    continue
                sp = group_space(st, prefix, cells=width)
                if sp is None:
                    continue
                old = self.before.devices.get(st.device.name) if self.before is not None else None
                moved = moved_cells(group_space(old, prefix, cells=width) if old is not None else None, sp) \
                    if self.before is not None else (False,) * len(sp.owners)
                out.append((st.device.name, prefix, sp, moved))
        return out

    def render(self) -> RenderableType:
        width = max(8, self.content_size.width - NAME_W)
        rows = self.spaces(width)
        if not rows:
            return Text("no multipath group for " + ", ".join(self.prefixes), style="dim")
        owners = address_owners(self.snapshot) if self.snapshot is not None else {}
        out = Text(no_wrap=True, overflow="ellipsis")
        if self.caption:
            out.append(self.caption + "\n", style="dim")
        for n, (device, prefix, sp, moved) in enumerate(rows):
            if n:
                out.append("\n")
            out.append_text(self._bar(device, sp, moved, owners, width))
        return out

    def _bar(self, device: str, sp: Space, moved: tuple[bool, ...], owners: Mapping[str, str], width: int) -> Text:
        index = {m.label: i for i, m in enumerate(sp.members)}
        t = Text(no_wrap=True, overflow="ellipsis")
        mark = "▸" if device == self.focus_device else " "
        t.append(f"{mark}{device:<{NAME_W - 1}}", style="bold")
        cells = sample(sp.owners, width)
        for o in cells:
            if o is None:
                t.append("×", style=pal.BAD)
            else:
                g, colour = pal.hop_style(index[o])
                t.append(g, style=colour)
        if any(moved):
            t.append("\n" + " " * NAME_W)
            t.append("".join("^" if m else " " for m in sample(moved, width)), style=f"bold {pal.ACCENT}")
        if sp.busy:
            t.append("\n" + " " * NAME_W)
            t.append("".join("•" if b else "·" for b in sample(sp.busy, width)), style="dim")
        t.append("\n" + " " * NAME_W)
        for i, m in enumerate(sp.members):
            g, colour = pal.hop_style(i)
            name = owners.get(m.label, m.label)
            t.append(f"{g} ", style=colour)
            off = abs(m.share - m.target) > 0.02
            t.append(name if m.usable else f"{name} ✗", style="" if m.usable else pal.BAD)
            t.append(f" {m.share:.0%}", style=pal.WARN if off else "")
            if off or m.weight != 1:
                t.append(f"/{m.target:.0%}", style="dim")
            t.append("  ")
        return t
