"""The panels: fabric health, ECMP groups, event log, status line.

Each widget holds the last view data it was given (``show``) and renders it to
fit its current width; colours are Okabe–Ito and always come with a glyph.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from rich.console import RenderableType
from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from anycast_tui.model.incident_impact import IncidentImpact
from anycast_tui.model.incidents import Incident
from anycast_tui.model.types import Event, HealthStatus, Role
from anycast_tui.ui import view

from anycast_tui.ui.palette import ACCENT, BAD, INFO, NAME, OK, WARN  # noqa: F401 - re-exported
from anycast_tui.ui.palette import placement_style

STATUS_STYLE = {HealthStatus.OK: OK, HealthStatus.STALE: WARN, HealthStatus.ERROR: BAD, HealthStatus.UNKNOWN: "dim"}
GLYPH_STYLE = {"✓": OK, "✗": BAD, "−": BAD, "+": OK, "~": WARN}
WIDE = 84  # panel width from which the tabular layouts are used
LABEL_W = 10  # the compact fabric panel's row labels (spines, hash, placement)


Cell = Text | str


def columns(header: Sequence[str], rows: Sequence[Sequence[Cell]], *, width: int, flex: int,
            right: frozenset[int] = frozenset()) -> Text:
    """A plain, fast table: columns padded to their widest cell, two spaces apart; column ``flex``
    shrinks (ellipsis) when the line would be wider than ``width``.  (Rich's Table is ~50x slower.)"""
    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    widths = [len(h) for h in header]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], c.cell_len)
    widths = fit_widths(header, widths, width, flex)
    out = table_line([Text(h, style="bold") for h in header], widths, right)
    for row in cells:
        out.append("\n")
        out.append_text(table_line(row, widths, right))
    return out


def fit_widths(header: Sequence[str], widths: list[int], width: int, flex: int) -> list[int]:
    """``widths`` (each column's widest cell) with column ``flex`` shrunk so a line fits ``width``."""
    widths = list(widths)
    over = sum(widths) + 2 * (len(widths) - 1) - width
    if over > 0:
        widths[flex] = max(len(header[flex]), widths[flex] - over)
    return widths


def table_line(items: Sequence[Cell], widths: Sequence[int], right: frozenset[int] = frozenset()) -> Text:
    """One line of :func:`columns`: each cell padded (or cut with an ellipsis) to its column's width."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, c in enumerate(items):
        c = c.copy() if isinstance(c, Text) else Text(c)
        if c.cell_len > widths[i]:
            c.truncate(widths[i], overflow="ellipsis")
        pad = " " * (widths[i] - c.cell_len)
        if i in right:
            out.append(pad)
        out.append_text(c)
        if i not in right and i < len(items) - 1:
            out.append(pad)
        if i < len(items) - 1:
            out.append("  ")
    return out


class Panel(Widget):
    """A widget that renders its last ``show``n data to its width."""

    DEFAULT_CSS = "Panel { height: auto; }"

    def __init__(self, *, id: str | None = None, title: str = "") -> None:
        super().__init__(id=id)
        self.border_title = title
        self._stale = False

    def changed(self, layout: bool = True) -> None:
        """Redraw for new data; while hidden (another view is shown) only remember to, so a hidden
        view never costs a screen layout."""
        if not self.region.area:
            self._stale = True
            return
        self.refresh(layout=layout)

    def on_show(self) -> None:
        if self._stale:
            self._stale = False
            self.refresh(layout=True)


class LinesPanel(Panel):
    """A Panel drawn with the line API: its ``render()`` text is built once per data change and width, and
    only the lines on screen are turned into strips (a 500-group table scrolls and redraws for the cost
    of a screenful).  ``render()`` reads :attr:`render_width`."""

    _width_override: int | None = None

    def __init__(self, *, id: str | None = None, title: str = "") -> None:
        super().__init__(id=id, title=title)
        self._text_lines: tuple[int, list[Text]] | None = None
        self._strips: dict[tuple[int, int], Strip] = {}

    @property
    def render_width(self) -> int:
        return self._width_override if self._width_override is not None else self.content_size.width

    def changed(self, layout: bool = True) -> None:
        self._text_lines = None
        self._strips.clear()
        super().changed(layout=layout)

    def on_resize(self) -> None:
        self._strips.clear()

    def lines_at(self, width: int) -> list[Text]:
        if self._text_lines is None or self._text_lines[0] != width:
            self._width_override = width
            try:
                text = self.render()
            finally:
                self._width_override = None
            text = text if isinstance(text, Text) else Text(str(text))
            self._text_lines = (width, list(text.split("\n", allow_blank=True)))
            self._strips.clear()
        return self._text_lines[1]

    def line_count(self, width: int) -> int:
        return len(self.lines_at(width))

    def line(self, y: int, width: int) -> Text:
        return self.lines_at(width)[y].copy()

    def get_content_height(self, container, viewport, width: int) -> int:  # noqa: ANN001
        return max(1, self.line_count(width))

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        base = self.rich_style
        hit = self._strips.get((y, width))
        if hit is not None:
            return hit
        if y >= self.line_count(width):
            return Strip.blank(width, base)
        text = self.line(y, width)
        text.truncate(width, overflow="ellipsis")
        strip = Strip(text.render(self.app.console), text.cell_len).apply_style(base).extend_cell_length(width, base)
        self._strips[(y, width)] = strip
        return strip


class FabricPanel(LinesPanel):
    """Devices by role: health glyph and word, age of the last good poll, hash policy and seed, placement
    quality (``=`` exact, ``≈`` approximate, ``?`` unknown, with a one-line hint why when not exact).

    The wide table is drawn with the line API: its column widths come from the rows' plain lengths and only
    the lines on screen become Text, so a 2,000-device fabric redraws (every age changes each second) for
    the cost of a screenful.  The compact layout (narrow terminals) is a line per role and is drawn whole."""

    rows: Sequence[view.DeviceRow] = ()
    focus: str | None = None  # device of the selected event
    HEADER = ("role", "device", "health", "last ok", "hash", "placement")
    RIGHT = frozenset({3})
    _specs: tuple[int, list[int], list[Text]] | None = None  # (width, column widths, the lines after the rows)

    def show(self, rows: Sequence[view.DeviceRow], focus: str | None = None) -> None:
        rows = tuple(rows)
        if rows == self.rows and focus == self.focus:
            return
        relayout = len(rows) != len(self.rows) or [(r.status, r.hint, bool(r.checked and r.checked.disagreements))
                                                   for r in rows] != \
            [(r.status, r.hint, bool(r.checked and r.checked.disagreements)) for r in self.rows]
        self.rows = rows
        self.focus = focus
        self.changed(layout=relayout)

    def changed(self, layout: bool = True) -> None:
        self._specs = None
        super().changed(layout=layout)

    def render(self) -> RenderableType:
        """The whole panel as one Text (tests, the compact layout); the screen draws only the visible lines."""
        if not self.rows:
            return Text("no devices polled yet", style="dim")
        w = self.render_width
        if w < WIDE:
            return self._compact()
        return Text("\n").join(self.line(y, w) for y in range(self.line_count(w)))

    def _layout(self, width: int) -> tuple[list[int], list[Text]]:
        """The table's column widths (from the cells' plain lengths, no Text built) and the hint lines below it."""
        if self._specs is not None and self._specs[0] == width:
            return self._specs[1], self._specs[2]
        widths = [len(h) for h in self.HEADER]
        last_role: Role | None = None
        for r in self.rows:
            if r.role is not last_role:
                widths[0] = max(widths[0], cell_len(view.ROLE_TITLE[r.role]))
                last_role = r.role
            name = ("▸" if r.name == self.focus else "") + r.name
            for i, n in ((1, cell_len(name)), (2, cell_len(f"{r.glyph} {r.word}")), (3, cell_len(r.age)),
                         (4, cell_len(r.hash)), (5, cell_len(r.placement_text))):
                if n > widths[i]:
                    widths[i] = n
        widths = fit_widths(self.HEADER, widths, width, flex=2)
        tail = Text()
        self._hints(tail)
        after = tail.split("\n", allow_blank=True)[1:] if tail.plain else []  # _hints starts each line with "\n"
        self._specs = (width, widths, list(after))
        return widths, self._specs[2]

    def line_count(self, width: int) -> int:
        if not self.rows or width < WIDE:
            return super().line_count(width)
        return 1 + len(self.rows) + len(self._layout(width)[1])

    def line(self, y: int, width: int) -> Text:
        if not self.rows or width < WIDE:
            return super().line(y, width)
        widths, after = self._layout(width)
        if y == 0:
            return table_line([Text(h, style="bold") for h in self.HEADER], widths, self.RIGHT)
        if y > len(self.rows):
            return after[y - 1 - len(self.rows)].copy()
        r = self.rows[y - 1]
        role = view.ROLE_TITLE[r.role] if y == 1 or self.rows[y - 2].role is not r.role else ""
        name = Text(("▸" if r.name == self.focus else "") + r.name,
                    style="bold reverse" if r.name == self.focus else "bold")
        place = Text(r.placement_text, style=BAD if r.checked is not None and r.checked.suspect
                     else placement_style(r.placement))
        return table_line([role, name, Text(f"{r.glyph} {r.word}", style=STATUS_STYLE[r.status]), r.age, r.hash,
                           place], widths, self.RIGHT)

    def _hints(self, out: Text) -> None:
        """One line per reason some devices' placements are not exact (unknown first)."""
        for p, names, hint in view.placement_hints(self.rows):
            who = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])} +{len(names) - 2} more"
            out.append("\n")
            out.append(f"{view.PLACEMENT_GLYPH[p]} {who}: {hint}", style=placement_style(p))
        for line in view.disagreement_lines(self.rows):
            out.append("\n")
            out.append(f"✗ {line}", style=BAD)

    def _compact(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        by_role: dict[Role, list[view.DeviceRow]] = {}
        for r in self.rows:
            by_role.setdefault(r.role, []).append(r)
        for role, rows in by_role.items():
            out.append(f"{view.ROLE_TITLE[role]:<{LABEL_W}}", style="bold")
            for r in rows:
                out.append(f"{r.glyph} ", style=STATUS_STYLE[r.status])
                out.append(r.name, style="reverse" if r.name == self.focus else "")
                if r.status is not HealthStatus.OK:  # the others' ages are summed up below
                    out.append(f" {r.age}", style=STATUS_STYLE[r.status])
                if r.placement is not None:
                    out.append(f" {r.placement_glyph}", style=placement_style(r.placement))
                out.append("  ")
            out.append("\n")
        out.append(f"{'hash':<{LABEL_W}}", style="bold")
        out.append(view.hash_summary(self.rows))
        ok_ages = [r.age for r in self.rows if r.status is HealthStatus.OK]
        if ok_ages:
            out.append(f" · oldest ok poll {max(ok_ages, key=view.age_seconds)} ago", style="dim")
        summary = view.placement_summary(self.rows)
        if summary:
            out.append("\n")
            out.append(f"{'placement':<{LABEL_W}}", style="bold")
            for k, (p, n, _) in enumerate(summary):
                out.append(" · " if k else "")
                out.append(f"{view.PLACEMENT_GLYPH[p]} {p.value} {n}", style=placement_style(p))
        self._hints(out)
        for r in self.rows:
            if r.status in (HealthStatus.STALE, HealthStatus.ERROR):
                out.append("\n")
                out.append(f"{r.glyph} {r.name} {r.word}", style=STATUS_STYLE[r.status])
        return out


class GroupsPanel(LinesPanel):
    """Per device and anycast prefix: the ECMP group's next hops (line API: only visible rows drawn)."""

    groups: Sequence[view.GroupView] = ()
    many_prefixes = False

    def show(self, groups: Sequence[view.GroupView]) -> None:
        groups = tuple(groups)
        if groups == self.groups:
            return
        self.groups = groups
        self.many_prefixes = len({g.prefix for g in self.groups}) > 1
        self.changed()

    HEADER = ("device", "group", "next hop", "dev", "neighbour", "weight", "buckets", "flags")
    RIGHT = frozenset({5, 6})
    _specs: tuple[int, list[tuple], list[int]] | None = None  # (width, lines, column widths)

    def changed(self, layout: bool = True) -> None:
        self._specs = None
        super().changed(layout=layout)

    def render(self) -> RenderableType:
        """The whole panel as one Text (tests); the screen draws only the visible lines (:meth:`line`)."""
        w = self.render_width
        return Text("\n").join(self.line(y, w) for y in range(self.line_count(w)))

    def _kind_text(self, g: view.GroupView) -> Text:
        kind = Text(g.prefix + " " if self.many_prefixes else "")
        kind.append(g.kind, style="dim")
        if g.stale:
            kind.append(" ! stale", style=WARN)
        if g.rib:
            kind.append(f" · {g.rib}", style=WARN if g.rib.endswith("≠") else "dim")
        return kind

    def _layout(self, width: int) -> tuple[list[tuple], list[int]]:
        """What each line shows, worked out from plain lengths (no Text built): the table's
        (group, next hop) rows and column widths, or the compact view's groups and kinds."""
        if self._specs is not None and self._specs[0] == width:
            return self._specs[1], self._specs[2]
        lines: list[tuple] = []
        widths: list[int] = []
        if not self.groups:
            lines.append(("empty",))
        elif width >= WIDE:
            widths = [len(h) for h in self.HEADER]
            lines.append(("header",))
            for gi, g in enumerate(self.groups):
                kind = len(g.prefix) + 1 if self.many_prefixes else 0
                kind += len(g.kind) + (8 if g.stale else 0) + (len(g.rib) + 3 if g.rib else 0)
                widths[0], widths[1] = max(widths[0], len(g.device)), max(widths[1], kind)
                if not g.hops:
                    lines.append(("row", gi, -1))
                for hi, h in enumerate(g.hops):
                    lines.append(("row", gi, hi))
                    for c, n in ((2, 2 + len(h.gateway)), (3, len(h.dev)), (4, len(h.neighbour)),
                                 (5, len(str(h.weight))), (6, 0 if h.buckets is None else len(str(h.buckets))),
                                 (7, len(" ".join(h.flags)))):
                        widths[c] = max(widths[c], n)
            widths = fit_widths(self.HEADER, widths, width, flex=1)
        else:
            plain: dict[str, list[view.GroupView]] = {}  # groups without next hops, one line per kind
            for gi, g in enumerate(self.groups):
                if g.hops:
                    lines.append(("group", gi))
                else:
                    plain.setdefault(g.kind, []).append(g)
            lines += [("kind", kind, tuple(gs)) for kind, gs in plain.items()]
        self._specs = (width, lines, widths)
        return lines, widths

    def line_count(self, width: int) -> int:
        return len(self._layout(width)[0])

    def line(self, y: int, width: int) -> Text:
        lines, widths = self._layout(width)
        spec = lines[y]
        if spec[0] == "empty":
            return Text.assemble(("no ECMP groups yet", "dim"))
        if spec[0] == "header":
            return table_line([Text(h, style="bold") for h in self.HEADER], widths, self.RIGHT)
        if spec[0] == "row":
            g = self.groups[spec[1]]
            first = Text(g.device, style="bold") if spec[2] <= 0 else ""
            kind = self._kind_text(g) if spec[2] <= 0 else ""
            if spec[2] < 0:
                return table_line([first, kind, "", "", "", "", "", ""], widths, self.RIGHT)
            h = g.hops[spec[2]]
            flags = Text(" ").join(Text(f, style=BAD if f in ("dead", "linkdown") else "dim") for f in h.flags)
            mark = Text("✗ " if not h.usable else "● ", style=BAD if not h.usable else OK)
            return table_line([first, kind, mark + Text(h.gateway), h.dev, Text(h.neighbour, style=NAME),
                               str(h.weight), "" if h.buckets is None else str(h.buckets), flags], widths, self.RIGHT)
        out = Text(no_wrap=True, overflow="ellipsis")
        if spec[0] == "kind":
            out.append(f"{spec[1]}: ", style="dim")
            out.append(" ".join(g.device + (" !" if g.stale else "") for g in spec[2]))
            return out
        g = self.groups[spec[1]]
        out.append(f"{g.device:<9}", style="bold")
        n = len(g.hops)
        usable = sum(1 for h in g.hops if h.usable)
        out.append(f"{usable}/{n} " if usable != n else f"{n}-way ", style=OK if usable == n else WARN)
        out.append_text(Text("  ").join(self._hop_text(h, short=True) for h in g.hops))
        if g.stale:
            out.append("  ! stale", style=WARN)
        if g.rib:
            out.append(f"  {g.rib}", style=WARN if g.rib.endswith("≠") else "dim")
        return out

    @staticmethod
    def _hop_text(h: view.HopRow, *, short: bool) -> Text:
        t = Text()
        bad = not h.usable
        t.append("✗ " if bad else "● ", style=BAD if bad else OK)
        t.append(h.neighbour or (h.gateway if h.gateway != "-" else h.dev), style=NAME if h.neighbour else "")
        if short:
            if h.weight != 1:
                t.append(f" w{h.weight}", style=WARN)
            if h.buckets is not None:
                t.append(f" {h.buckets}b", style="dim")
            for f in h.flags:
                if f in ("dead", "linkdown"):
                    t.append(f" {f}", style=BAD)
        return t


class EventLog(ScrollView):
    """Newest first: each incident's line (duration, numbers, cause) with its device events under it,
    other events alone: UTC time, glyph, device, detail; ``hidden`` counts the filtered-out ones.

    Line API: only the visible lines are rendered (each once per width), so a
    long log costs nothing to redraw.
    """

    DEFAULT_CSS = "EventLog { height: 1fr; text-wrap: nowrap; }"
    MAX_SHOWN = 10_000
    events: Sequence[Event] = ()
    rows: Sequence[view.LogRow] = ()
    hidden = 0
    owners: Mapping[str, str] = {}
    prefixes: tuple[str, ...] = ()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: dict[tuple[int, int], Strip] = {}  # (row index from the top, width) -> rendered

    impact: Callable[[Event], Mapping[str, int] | None] | None = None  # hop-local flow counts per event
    incident_of: Callable[[Event], Incident | None] | None = None
    incident_impact: Callable[[int], IncidentImpact | None] | None = None
    now_ms = 0
    impact_version = 0

    selected: Event | None = None
    selected_incident: int | None = None

    def show(self, events: Sequence[Event], hidden: int = 0, owners: Mapping[str, str] | None = None,
             prefixes: Sequence[str] = (), impact_version: int = 0, selected: Event | None = None,
             selected_incident: int | None = None, now_ms: int = 0) -> None:
        new = (tuple(events[-self.MAX_SHOWN:]), hidden, dict(owners or {}), tuple(prefixes), impact_version)
        if new == (self.events, self.hidden, self.owners, self.prefixes, self.impact_version):
            # same rows: only an open incident's duration (a new second) or the selection can change a line
            ticked = now_ms // 1000 != self.now_ms // 1000 and any(
                r.event is None and r.incident is not None and r.incident.open for r in self.rows)
            self.now_ms = now_ms
            if ticked or (selected, selected_incident) != (self.selected, self.selected_incident):
                self.selected, self.selected_incident = selected, selected_incident
                self._lines.clear()
                self.refresh()
            return
        self.events, self.hidden, self.owners, self.prefixes, self.impact_version = new
        self.now_ms = now_ms
        self.rows = view.log_rows(self.events, self.incident_of)
        self.selected, self.selected_incident = selected, selected_incident
        self._lines.clear()
        self.virtual_size = Size(0, max(1, len(self.rows)))
        self.refresh()

    def on_resize(self) -> None:
        self._lines.clear()

    def _row_of(self, ev: Event | None, incident: int | None) -> int | None:
        for i, r in enumerate(self.rows):
            if ev is not None and r.event == ev or ev is None and r.event is None and r.incident is not None \
                    and r.incident.id == incident:
                return i
        return None

    def scroll_to_event(self, ev: Event | None, incident: int | None = None) -> None:
        """Scroll so that ``ev``'s line (or the incident's) is visible."""
        i = self._row_of(ev, incident)
        if i is None:
            return
        h = self.scrollable_content_region.height
        y = self.scroll_offset.y
        if i < y or i >= y + h:
            self.scroll_to(y=max(0, i - h // 2), animate=False)

    def text_lines(self) -> list[str]:
        """Every line as plain text, newest first, at the current width (tests, headless checks)."""
        if not self.rows:
            return [self._empty().plain]
        return [self._text(i).plain for i in range(len(self.rows))]

    def _empty(self) -> Text:
        more = f" ({self.hidden} other events hidden, a shows all)" if self.hidden else ""
        return Text("no events yet: the fabric is as first seen" + more, style="dim")

    def _incident_text(self, inc: Incident) -> Text:
        imp = self.incident_impact(inc.id) if self.incident_impact is not None else None
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("◆ ", style=f"bold {ACCENT}")
        out.append(view.incident_row_text(inc, imp, self.now_ms), style="bold")
        if inc.id == self.selected_incident and self.selected is None:
            out = Text("▸", style="bold") + out
            out.stylize("reverse")
            return out
        return Text(" ") + out

    def _text(self, i: int) -> Text:
        """The richest wording that fits: detail with gateways, then neighbour names only; long, then
        short flow counts (an event's own, hop-local: the incident line carries the total)."""
        row = self.rows[i]
        ev = row.event
        if ev is None:
            assert row.incident is not None
            return self._incident_text(row.incident)
        width = self.scrollable_content_region.width
        wide = width >= 100
        head = Text(no_wrap=True, overflow="ellipsis")
        if row.nested:
            head.append("  ")
        g = view.event_glyph(ev.kind)
        head.append(view.hms(ev.time_ms) if wide else view.hms(ev.time_ms)[:8], style="dim")
        head.append(f" {g} ", style=GLYPH_STYLE.get(g, ""))
        head.append(f"{ev.device:<8} ", style="bold")
        counts = self.impact(ev) if self.impact is not None else None
        local = "hop-local " if row.nested else ""
        tails = [""] if counts is None else [f" · {local}{view.impact_text(counts)}",
                                             f" · {local}{view.impact_text(counts, short=True)}"]
        bodies = [view.event_text(ev, self.owners, short=short, known=self.prefixes)
                  for short in ((False, True) if wide else (True,))]
        choices = [(b, t) for t in tails for b in bodies]
        body, tail = next(((b, t) for b, t in choices if 1 + head.cell_len + len(b) + len(t) <= width),
                          choices[-1])
        out = head
        out.append(body)
        if tail:
            out.append(tail, style=ACCENT if counts and counts["moved"] else "dim")
        if ev is self.selected or ev == self.selected:
            out = Text("▸", style="bold") + out
            out.stylize("reverse")
            return out
        return Text(" ") + out

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        i = self.scroll_offset.y + y
        base = self.rich_style
        if not self.rows:
            text = self._empty() if i == 0 else None
        elif i < len(self.rows):
            cached = self._lines.get((i, width))
            if cached is not None:
                return cached
            text = self._text(i)
        else:
            text = None
        if text is None:
            return Strip.blank(width, base)
        text.truncate(width, overflow="ellipsis")
        strip = Strip(text.render(self.app.console), text.cell_len).apply_style(base).extend_cell_length(width, base)
        if self.rows:
            self._lines[(i, width)] = strip
        return strip


class StatusLine(Widget):
    """One line: live or paused (with the waiting count), event and device counts."""

    DEFAULT_CSS = "StatusLine { height: 1; }"
    paused: bool = False
    waiting: int = 0
    counts: view.Counts | None = None
    dropped: int = 0
    note: str = ""  # the last thing the user did (``you failed leaf03``)
    view: str = ""
    replay: str = ""

    def show(self, *, paused: bool, waiting: int, counts: view.Counts, dropped: int = 0, view: str = "",
             replay: str = "") -> None:
        new = (paused, waiting, counts, dropped, view, replay)
        if new == (self.paused, self.waiting, self.counts, self.dropped, self.view, self.replay):
            return
        self.paused, self.waiting, self.counts, self.dropped, self.view, self.replay = new
        self.refresh()

    def render(self) -> RenderableType:
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.view:
            t.append(f"[{self.view}] ", style="bold")
        if self.replay:
            t.append(self.replay + "  ", style=f"bold {INFO}")
        if self.paused:
            t.append(f"‖ paused, {self.waiting} update{'s' if self.waiting != 1 else ''} waiting", style=f"bold {WARN}")
        elif not self.replay:  # a replay says where it plays instead: never "live"
            t.append("● live", style=f"bold {OK}")
        c = self.counts
        if c is not None:
            t.append(f"  events {c.total} (")
            t.append(f"−{c.removed}", style=BAD)
            t.append(f" +{c.added}", style=OK)
            t.append(f" ~{c.changed}", style=WARN)
            t.append(")")
            glyph, style = ("✓", OK) if c.devices_ok == c.devices else ("!", WARN)
            t.append(f"  {glyph} {c.devices_ok}/{c.devices} ok", style=style)
        if self.dropped:
            t.append(f"  ({self.dropped} oldest events dropped)", style="dim")
        if self.note:
            t.append(f"  · {self.note}", style=ACCENT)
        return t


class EventBar(Widget):
    """One line above every view: the selected event, its position and the flows it moved."""

    DEFAULT_CSS = "EventBar { height: 1; }"
    text: Text = Text("")

    def show(self, ev: Event | None, pos: int | None, total: int, counts: Mapping[str, int] | None,
             owners: Mapping[str, str], prefixes: Sequence[str], incident: str | None = None,
             moved: bool = False) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        if incident is not None:
            t.append("◆ ", style=f"bold {ACCENT}")
            t.append(incident, style=ACCENT if moved else "")
        elif ev is None:
            t.append(f"nothing selected · {total} events · [ ] select an incident to see what it moved",
                     style="dim")
        else:
            g = view.event_glyph(ev.kind)
            t.append(f"event {pos or '?'}/{total} ", style="bold")
            t.append(view.hms(ev.time_ms), style="dim")
            t.append(f" {g} ", style=GLYPH_STYLE.get(g, ""))
            t.append(f"{ev.device} ", style="bold")
            t.append(view.event_text(ev, owners, short=True, known=prefixes))
            if counts is not None:
                t.append(f" · hop-local {view.impact_text(counts, short=True)}",
                         style=ACCENT if counts["moved"] else "dim")
            elif ev.prefix in prefixes:
                t.append(" · computing…", style="dim")
        if t.plain != self.text.plain or t.spans != self.text.spans:
            self.text = t
            self.refresh()

    def render(self) -> RenderableType:
        return self.text


class TopologyPanel(Panel):
    """Spines → leaves → servers, each with its health glyph; next hops per device; failed ones marked."""

    rows: Sequence[view.DeviceRow] = ()
    groups: Sequence[view.GroupView] = ()

    def show(self, rows: Sequence[view.DeviceRow], groups: Sequence[view.GroupView]) -> None:
        rows, groups = tuple(rows), tuple(groups)
        if (rows, groups) == (self.rows, self.groups):
            return
        self.rows, self.groups = rows, groups
        self.changed()

    def render(self) -> RenderableType:
        if not self.rows:
            return Text("no devices yet", style="dim")
        hops = {g.device: g for g in self.groups}
        out = Text(no_wrap=True, overflow="ellipsis")
        # a role's line is cut at the width (ellipsis): its devices are drawn only until they pass it (a
        # 2,000-device fabric's leaves make a 30,000-column line, redrawn on every change).  The container's
        # width bounds it and is known during layout (content_size there would arrange the whole screen again)
        width = self.container_size.width or None
        first = True
        for role in (Role.SPINE, Role.LEAF, Role.SERVER):
            rs = [r for r in self.rows if r.role is role]
            if not rs:
                continue
            if not first:
                out.append("\n")
            first = False
            out.append(f"{view.ROLE_TITLE[role]:<8}", style="bold")
            cells = 8
            for r in rs:
                if width is not None and cells > width:
                    break
                out.append(f"{r.glyph} ", style=STATUS_STYLE[r.status])
                out.append(r.name)
                cells += cell_len(r.glyph) + 1 + cell_len(r.name) + 2
                g = hops.get(r.name)
                if g is not None and g.hops:
                    usable = sum(1 for h in g.hops if h.usable)
                    to = [h.neighbour or h.gateway for h in g.hops]
                    if role is Role.SPINE:
                        tail = f" ⇉{usable}" if usable == len(g.hops) else f" ⇉{usable}/{len(g.hops)}"
                        out.append(tail, style=OK if usable == len(g.hops) else WARN)
                    else:
                        tail = "→" + ",".join(to)
                        out.append(tail, style="dim")
                    cells += cell_len(tail)
                out.append("  ")
        down = [r.name for r in self.rows if r.status in (HealthStatus.STALE, HealthStatus.ERROR)]
        if down:
            out.append("\n✗ failed or unreachable: " + ", ".join(down), style=BAD)
        return out
