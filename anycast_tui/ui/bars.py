"""Bucket bars: each device's ECMP group for the anycast prefix as a strip coloured per next hop.

Cells come from :func:`anycast_tui.model.hashspace.group_space` at the bar's
width; ``^`` under a cell marks the selected event moved it; resilient groups
get a row of ``•`` busy / ``·`` idle buckets.  Shares are shown beside targets.

Line API: the layout (which devices have a bar, how many lines each) is worked
out from cheap facts (a route index, whether a group's inputs changed), and
only the lines on screen are drawn, so 500 groups cost what a screenful does.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from rich.console import RenderableType
from rich.text import Text

from anycast_tui.model.types import FabricSnapshot, Role
from textual.strip import Strip

from anycast_tui.model.hashspace import (
    Space,
    cached_space,
    has_space,
    is_resilient,
    moved_cells,
    sample,
    space_inputs,
)
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

    def __init__(self, *, id: str | None = None, title: str = "") -> None:
        super().__init__(id=id, title=title)
        self._layout: tuple[int, list[tuple[int, str]], list[tuple]] | None = None  # (width, lines, entries)
        self._strips: dict[tuple[int, int], Strip] = {}
        self._owners: Mapping[str, str] | None = None
        self._layouts: dict[tuple, tuple] = {}  # the last few layouts, by (snapshot, before, prefixes, width)

    def show(self, snapshot: FabricSnapshot | None, prefixes: Sequence[str], *,
             before: FabricSnapshot | None = None, device: str | None = None, caption: str = "") -> None:
        new = (snapshot, tuple(prefixes), before, device, caption)
        if new == (self.snapshot, self.prefixes, self.before, self.focus_device, self.caption):
            return
        if snapshot is not self.snapshot:
            self._owners = None
        self.snapshot, self.prefixes, self.before, self.focus_device, self.caption = new
        self._layout = None
        self._strips.clear()
        self.changed()

    def on_resize(self) -> None:
        self._layout = None
        self._strips.clear()

    @property
    def bar_width(self) -> int:
        """Cells a bar gets at the widget's present size (its content width less the name column): the width
        ``layout_for`` lays the bars out at when drawn."""
        return self._width()

    def _width(self, content_width: int | None = None) -> int:
        return max(8, (self.content_size.width if content_width is None else content_width) - NAME_W)

    def _entries(self) -> list[tuple[str, str, object, object]]:
        """(device, prefix, state, state before the event or None) per device with a multipath group."""
        snap = self.snapshot
        if snap is None:
            return []
        out = []
        states = sorted(snap.devices.values(), key=lambda s: (ROLE_ORDER.index(s.device.role), s.device.name))
        for prefix in self.prefixes:
            for st in states:
                if st.device.role is Role.SERVER or not has_space(st, prefix):
                    continue
                old = self.before.devices.get(st.device.name) if self.before is not None else None
                out.append((st.device.name, prefix, st, old))
        return out

    def _changed(self, st, old, prefix: str) -> bool:  # noqa: ANN001
        """The selected event may have moved cells of this group (cheap: no cells computed)."""
        return self.before is not None and old is not st and \
            (old is None or space_inputs(old, prefix) != space_inputs(st, prefix))

    def _moved(self, st, old, prefix: str, width: int) -> tuple[bool, ...]:  # noqa: ANN001
        sp = cached_space(st, prefix, width)
        if sp is None:
            return ()
        if not self._changed(st, old, prefix):
            return (False,) * len(sp.owners)
        return moved_cells(cached_space(old, prefix, width) if old is not None else None, sp)

    def layout_for(self, width: int) -> tuple[list[tuple[int, str]], list[tuple]]:
        """(lines as (entry, kind), entries) at ``width`` cells; kinds: caption, bar, moved, busy, legend."""
        if self._layout is not None and self._layout[0] == width:
            return self._layout[1], self._layout[2]
        key = (id(self.snapshot), id(self.before), self.prefixes, self.caption, width)
        hit = self._layouts.get(key)
        if hit is not None and hit[0] is self.snapshot and hit[1] is self.before:  # [ ] back to an event
            self._layout = (width, hit[2], hit[3])
            return hit[2], hit[3]
        entries = self._entries()
        lines: list[tuple[int, str]] = [(-1, "caption")] if self.caption and entries else []
        for n, (device, prefix, st, old) in enumerate(entries):
            lines.append((n, "bar"))
            if self._changed(st, old, prefix) and any(self._moved(st, old, prefix, width)):
                lines.append((n, "moved"))
            if is_resilient(st, prefix):
                lines.append((n, "busy"))
            lines.append((n, "legend"))
        self._layout = (width, lines, entries)
        if len(self._layouts) >= 4:
            del self._layouts[next(iter(self._layouts))]
        self._layouts[key] = (self.snapshot, self.before, lines, entries)
        return lines, entries

    def spaces(self, width: int) -> list[tuple[str, str, Space, tuple[bool, ...]]]:
        """(device, prefix, space at ``width`` cells, moved cells) for every device with a multipath group."""
        out = []
        for device, prefix, st, old in self.layout_for(width)[1]:
            sp = cached_space(st, prefix, width)
            if sp is not None:
                out.append((device, prefix, sp, self._moved(st, old, prefix, width)))
        return out

    def get_content_height(self, container, viewport, width: int) -> int:  # noqa: ANN001
        return max(1, len(self.layout_for(self._width(width))[0]))

    def render_line(self, y: int) -> Strip:
        cw = self.content_size.width
        base = self.rich_style
        key = (y, cw)
        hit = self._strips.get(key)
        if hit is not None:
            return hit
        text = self.line_text(y, cw)
        if text is None:
            return Strip.blank(cw, base)
        text.truncate(cw, overflow="ellipsis")
        strip = Strip(text.render(self.app.console), text.cell_len).apply_style(base).extend_cell_length(cw, base)
        self._strips[key] = strip
        return strip

    def line_text(self, y: int, content_width: int) -> Text | None:
        """Line ``y`` of the panel (plain via ``.plain`` for tests)."""
        width = self._width(content_width)
        lines, entries = self.layout_for(width)
        if not lines:
            return Text.assemble(("no multipath group for " + ", ".join(self.prefixes), "dim")) if y == 0 else None
        if y >= len(lines):
            return None
        n, kind = lines[y]
        if kind == "caption":
            return Text.assemble((self.caption, "dim"))
        device, prefix, st, old = entries[n]
        sp = cached_space(st, prefix, width)
        assert sp is not None
        t = Text(no_wrap=True, overflow="ellipsis")
        if kind == "bar":
            index = {m.label: i for i, m in enumerate(sp.members)}
            mark = "▸" if device == self.focus_device else " "
            t.append(f"{mark}{device:<{NAME_W - 1}}", style="bold")
            for o in sample(sp.owners, width):
                if o is None:
                    t.append("×", style=pal.BAD)
                else:
                    g, colour = pal.hop_style(index[o])
                    t.append(g, style=colour)
        elif kind == "moved":
            t.append(" " * NAME_W)
            t.append("".join("^" if m else " " for m in sample(self._moved(st, old, prefix, width), width)),
                     style=f"bold {pal.ACCENT}")
        elif kind == "busy":
            t.append(" " * NAME_W)
            t.append("".join("•" if b else "·" for b in sample(sp.busy, width)), style="dim")
        else:
            if self._owners is None:
                self._owners = address_owners(self.snapshot) if self.snapshot is not None else {}
            t.append(" " * NAME_W)
            for i, m in enumerate(sp.members):
                g, colour = pal.hop_style(i)
                name = self._owners.get(m.label, m.label)
                t.append(f"{g} ", style=colour)
                off = abs(m.share - m.target) > 0.02
                t.append(name if m.usable else f"{name} ✗", style="" if m.usable else pal.BAD)
                t.append(f" {m.share:.0%}", style=pal.WARN if off else "")
                if off or m.weight != 1:
                    t.append(f"/{m.target:.0%}", style="dim")
                t.append("  ")
        return t

    def render(self) -> RenderableType:
        """Every line as one Text (report pictures, tests); the screen uses :meth:`render_line`."""
        cw = self.content_size.width
        lines = self.layout_for(self._width(cw))[0]
        return Text("\n").join(self.line_text(y, cw) or Text() for y in range(max(1, len(lines))))
