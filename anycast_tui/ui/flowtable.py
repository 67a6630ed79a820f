"""The Flows view's table: a line-API ScrollView that renders only the visible rows."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from anycast_tui.ui import palette as pal
from anycast_tui.ui.flowrows import GLYPH, FlowRows

MARK_STYLE = {1: pal.BAD, 2: pal.INFO, 3: pal.WARN}
PATH_AT = 2 + 5 + 22 + 17 + 9 + 24  # column of the path (wide terminals only)


class FlowTable(ScrollView, can_focus=True):
    """One line per flow of ``rows`` (filtered, sorted); a header line on top."""

    DEFAULT_CSS = "FlowTable { height: 1fr; text-wrap: nowrap; }"
    BINDINGS = [("j", "scroll_down", "down"), ("k", "scroll_up", "up")]
    data: FlowRows | None = None
    _version: tuple[int, int] = (0, -1)

    def show(self, data: FlowRows | None) -> None:
        """Show ``data``; a no-op unless it changed since the last call (timer redraws cost nothing)."""
        version = (id(data), data.version if data is not None else -1)
        if version == self._version:
            return
        self._version = version
        self.data = data
        size = Size(0, 1 + (len(data) if data is not None else 0))
        if size != self.virtual_size:
            h = self.scrollable_content_region.height
            if h and self.virtual_size.height > h and size.height > h:
                # the vertical scrollbar stays: move its thumb without a layout of the whole screen (a filter
                # as you type changes the row count on every key)
                self.set_reactive(FlowTable.virtual_size, size)
                self._follow_scrollbar(size)
            else:
                self.virtual_size = size
        self.refresh()

    def _follow_scrollbar(self, size: Size) -> None:
        """What Textual does on a new virtual size while the scrollbars shown stay the same, through public
        attributes only: the vertical bar's window (its thumb) and the scroll offset kept in range."""
        if self.show_vertical_scrollbar and self.styles.scrollbar_size_vertical:
            bar = self.vertical_scrollbar
            bar.window_virtual_size = size.height
            bar.window_size = self.container_size.height - self.scrollbar_size_horizontal
            bar.refresh()
        self.scroll_x = self.validate_scroll_x(self.scroll_x)
        self.scroll_y = self.validate_scroll_y(self.scroll_y)

    def header(self, width: int) -> Text:
        src = "src " if self.data is not None and self.data.has_sampled else ""
        head = f"  {src}{'prot':<5}{'client':<22}{'service':<17}{'ingress':<9}"
        if width >= 110:
            head += f"{'server':<{max(PATH_AT + len(src) - len(head), 1)}}path"
        else:
            head += "server"
        return Text(head, style="bold", no_wrap=True)

    def line_text(self, pos: int, width: int) -> Text:
        """The text of the ``pos``-th shown row (plain for tests via ``.plain``)."""
        d = self.data
        assert d is not None
        i = int(d.rows[pos])
        kind = int(d.marks.kind[i])
        key = d.key(i).split(" ")
        proto, src, dst, ingress = key[0], key[1], key[3], key[4]
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(GLYPH[kind], style=MARK_STYLE.get(kind, ""))
        t.append("⑂" if d.marks.split[i] else " ", style=pal.ACCENT)
        if d.has_sampled:
            t.append(f"{d.source(i)} ", style=pal.ACCENT if d.source(i) == "smp" else "dim")
        t.append(f"{proto:<4} {src:<21} {dst:<16} {ingress:<8} ")
        moved = d.marks.from_to(i)
        if moved is not None:
            t.append(f"{_short(moved[0])}→{_short(moved[1])}", style=MARK_STYLE.get(kind, ""))
        else:
            t.append(_short(d.server(i)))
        if width >= 110:
            t.append(" " * max(1, PATH_AT + (4 if d.has_sampled else 0) - t.cell_len))
            t.append(d.path(i), style="dim")
        return t

    _base = None  # rich_style, looked up once per render pass (it walks the DOM)

    def render_lines(self, crop):  # noqa: ANN001, ANN201
        self._base = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._base = None

    _strips: dict[int, Strip] | None = None
    _strips_key: tuple = ()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._base if self._base is not None else self.rich_style
        d = self.data
        # one key press can repaint the screen more than once (input, layout, scroll): rows already turned
        # into strips for this data version, width and style are reused
        key = (id(d), d.version if d is not None else -1, width, base)
        if key != self._strips_key or self._strips is None or len(self._strips) > 4096:
            self._strips, self._strips_key = {}, key
        row = -1 if y == 0 else self.scroll_offset.y + y - 1
        hit = self._strips.get(row)
        if hit is not None:
            return hit
        strip = self._render_row(y, width, base)
        self._strips[row] = strip
        return strip

    def _render_row(self, y: int, width: int, base) -> Strip:  # noqa: ANN001
        d = self.data
        if y == 0:
            text = self.header(width) if d is not None else Text("no flows yet (waiting for the first trace)",
                                                                  style="dim")
        else:
            pos = self.scroll_offset.y + y - 1
            if d is None or pos >= len(d):
                if d is not None and len(d) == 0 and y == 1:
                    text = Text("no flow matches the filter", style="dim")
                else:
                    return Strip.blank(width, base)
            else:
                text = self.line_text(pos, width)
        text.truncate(width, overflow="ellipsis")
        return Strip(text.render(self.app.console), text.cell_len).apply_style(base).extend_cell_length(width, base)


def _short(label: str) -> str:
    """``leaf01 via 198.18.0.9 dev eth1`` → ``leaf01 via 198.18.0.9``; server names unchanged."""
    return label.split(" dev ")[0]
