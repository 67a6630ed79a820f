"""The Health view: the fabric's findings by severity (``model.health``), one line each, navigable with the keys
(↑/↓ or k/j select, enter shows or hides the selected finding's evidence, home/end), and under the selected one
its fix and its own evidence — for ``imbalance`` the prefix's server shares as bars against the fair mark, for
``polarized`` the device's next-hop distribution against what uniform input would give, for the connection
rules (outbound / long-lived TCP, multi-connection protocols) the sessions; then every anycast prefix's server
shares.  Colour-blind safe: a glyph beside each colour (``✗`` error, ``!`` warning, ``i`` info; ``▶`` the
selection; ``!`` beside a bar: over 1.5× fair, under half / over twice uniform); device text is data (escaped
``Text``, never markup), one line each (long summaries wrap only under the selection)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region
from textual.widget import Widget

from anycast_tui.model.health import DeviceSpread, Finding, HealthReport, ServerShare, Severity
from anycast_tui.safetext import safe
from anycast_tui.ui.palette import BAD, INFO, OK, WARN
from anycast_tui.ui.widgets import Panel

GLYPH = {Severity.ERROR: ("✗", BAD), Severity.WARNING: ("!", WARN), Severity.INFO: ("i", INFO)}
EVIDENCE_SHOWN = 12  # evidence lines under the selected finding (the rest counted)
BAR_W = 24
SESSION_RULES = ("outbound-tcp-anycast", "long-lived-tcp", "multi-connection-protocol")
INDENT = "    "


def ordered(report: HealthReport) -> list[Finding]:
    """The findings as the view lists them: errors first, then by rule and subject."""
    return sorted(report.findings, key=lambda f: (-int(f.severity), f.rule, f.subject))


def finding_text(f: Finding, selected: bool = False) -> Text:
    glyph, style = GLYPH[f.severity]
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("▶ " if selected else "  ", style="bold" if selected else "")
    out.append(f"{glyph} {f.severity.label:<8}", style=f"bold {style}")
    out.append(f"{safe(f.subject)}  ", style="bold")
    out.append(safe(f.summary), style="reverse" if selected else "")
    out.append(f"  [{f.rule}]", style="dim")
    return out


def bar(share: float, mark: float, style: str) -> Text:
    """``BAR_W`` cells: ``█`` up to ``share``, ``│`` at ``mark`` (``┃`` when inside the filled part)."""
    n = max(0, min(BAR_W, round(BAR_W * share)))
    at = max(0, min(BAR_W - 1, round(BAR_W * mark)))
    cells = ["█"] * n + [" "] * (BAR_W - n)
    cells[at] = "│" if cells[at] == " " else "┃"
    return Text("".join(cells), style=style)


def share_lines(shares: list[ServerShare], indent: str = "  ") -> Text:
    """One line per server: its bar against the fair mark, the share, the fair share (and the hash space's share
    when measured on sampled traffic)."""
    out = Text()
    for i, s in enumerate(sorted(shares, key=lambda s: (-s.share, s.server))):
        over = s.fair > 0 and s.share / s.fair > 1.5
        out.append("\n" if i else "")
        out.append(f"{indent}{safe(s.server):<10} ")
        out.append_text(bar(s.share, s.fair, WARN if over else INFO))
        out.append(f" {100 * s.share:5.1f} % (fair {100 * s.fair:.1f} %"
                   + (f", hash {100 * s.hash_share:.1f} %" if s.hash_share is not None else "") + ")")
        if over:
            out.append("  ! >1.5× fair", style=WARN)
    return out


def spread_lines(sp: DeviceSpread, indent: str = "  ") -> Text:
    """One line per next hop of the device: its share of the flows reaching it, ``│`` at the uniform share."""
    uni = dict(sp.uniform)
    out = Text()
    for i, (hop, s) in enumerate(sp.shares):
        u = uni.get(hop, 0.0)
        off = u > 0 and (s < u / 2 or s > 2 * u)
        out.append("\n" if i else "")
        out.append(f"{indent}{safe(hop):<10} ")
        out.append_text(bar(s, u, WARN if off else INFO))
        out.append(f" {100 * s:5.1f} % (uniform {100 * u:.1f} %)")
        if off:
            out.append("  ! " + ("< half" if s < u / 2 else "> twice"), style=WARN)
    return out


def _wrapped(text: str, width: int, indent: str = INDENT) -> list[str]:
    """``text`` in lines of at most ``width`` cells (words kept whole where they fit), each after ``indent``."""
    room = max(20, width - len(indent))
    lines = Text(text).wrap(_CONSOLE, room)
    return [indent + line.plain.rstrip() for line in lines] or [indent]


def _console():  # noqa: ANN202 - a rich Console measuring only (never printing)
    from rich.console import Console

    return Console(width=200, color_system=None, force_terminal=False, legacy_windows=False)


_CONSOLE = _console()


def evidence_text(f: Finding, report: HealthReport, width: int = 78) -> Text:
    """What shows under the selected finding: its summary in full, its fix, and its own evidence."""
    out = Text()
    for line in _wrapped(safe(f.summary), width):
        out.append(line + "\n")
    if f.fix:
        for i, line in enumerate(_wrapped("fix: " + safe(f.fix), width)):
            out.append(line + "\n", style="dim" if i == 0 else "")
    rest = list(f.evidence)
    if f.rule == "imbalance":
        mine = [s for s in report.shares if s.prefix == f.subject]
        if mine:
            out.append(INDENT + f"server shares, │ fair · {safe(mine[0].basis)}\n", style="bold")
            out.append_text(share_lines(mine, INDENT))
            out.append("\n")
            rest = []  # the bars are the evidence lines (and the basis is said above)
    elif f.rule == "polarized":
        device, _, prefix = f.subject.partition(" ")
        sp = next((s for s in report.spreads if s.device == device and s.prefix == prefix), None)
        if sp is not None:
            out.append(INDENT + f"the {sp.flows:,} flows reaching {safe(device)} by next hop, │ uniform input\n",
                       style="bold")
            out.append_text(spread_lines(sp, INDENT))
            out.append("\n")
            hops = {h for h, _ in sp.shares}
            rest = [line for line in rest if line.split(":", 1)[0] not in hops]  # the hash settings remain
    elif f.rule in SESSION_RULES and rest:
        out.append(INDENT + f"sessions ({len(rest)}):\n", style="bold")
    for line in rest[:EVIDENCE_SHOWN]:
        out.append(INDENT + "  " + safe(line) + "\n", style="dim")
    if len(rest) > EVIDENCE_SHOWN:
        out.append(INDENT + f"  … {len(rest) - EVIDENCE_SHOWN} more lines\n", style="dim")
    out.rstrip()
    return out


def health_text(report: HealthReport | None, waiting: str = "checks not run yet", *,
                selected: tuple[str, str] | None = None, expanded: bool = True, width: int = 78) -> Text:
    """The view's text (see ``health_layout``)."""
    return health_layout(report, waiting, selected=selected, expanded=expanded, width=width)[0]


def health_layout(report: HealthReport | None, waiting: str = "checks not run yet", *,
                  selected: tuple[str, str] | None = None, expanded: bool = True,
                  width: int = 78) -> tuple[Text, int, int]:
    """(the view's text, the selected finding's line, how many lines it and its evidence take).  ``selected``:
    the key of the selected finding (None, or one no longer found: the first)."""
    out = Text()
    if report is None:
        out.append(waiting, style="dim")
        return out, 0, 1
    found = ordered(report)
    counts = {s: sum(1 for f in found if f.severity is s) for s in Severity}
    if not found:
        out.append("✓ no findings: every check passed", style=f"bold {OK}")
    else:
        out.append(" · ".join(f"{GLYPH[s][0]} {counts[s]} {s.label}" for s in reversed(Severity) if counts[s]),
                   style="bold")
        out.append("   ↑↓ select · enter evidence", style="dim")
    keys = [f.key for f in found]
    cur = keys.index(selected) if selected in keys else 0
    at, size, line = 0, 1, 1
    for i, f in enumerate(found):
        out.append("\n")
        out.append_text(finding_text(f, i == cur))
        if i == cur:
            at = line
            if expanded:
                detail = evidence_text(f, report, width)
                out.append("\n")
                out.append_text(detail)
                size = 1 + len(detail.plain.split("\n"))
                line += size - 1
        line += 1
    for prefix in sorted({s.prefix for s in report.shares}):
        shares = [s for s in report.shares if s.prefix == prefix]
        imb = report.imbalance(prefix)
        out.append("\n\n")
        out.append(f"{safe(prefix)} server shares", style="bold")
        out.append(f" · {safe(shares[0].basis)}", style="dim")
        if imb is not None:
            out.append(f" · imbalance {imb:.2f}×", style=WARN if imb > 1.5 else "")
        out.append("\n")
        out.append_text(share_lines(shares))
    return out, at, size


class HealthPanel(Panel):
    """Findings by severity, one selectable line each, the selected one's evidence under it; then server shares
    per prefix (``│`` marks the fair share).  Focused when shown: its keys work as soon as the view is up."""

    can_focus = True
    BINDINGS = [
        Binding("up,k", "move(-1)", "previous finding", show=False),
        Binding("down,j", "move(1)", "next finding", show=False),
        Binding("home", "move(-1000000)", "first finding", show=False),
        Binding("end", "move(1000000)", "last finding", show=False),
        Binding("enter", "toggle", "evidence", show=False),
    ]

    report: HealthReport | None = None

    def __init__(self, *, id: str | None = None, title: str = "") -> None:
        super().__init__(id=id, title=title)
        self.selected: tuple[str, str] | None = None  # the selected finding's key (rule, subject)
        self.expanded = True  # its evidence shown
        self._at = (0, 1)

    def show(self, report: HealthReport | None) -> None:
        if report is self.report:
            return
        self.report = report
        self.changed()

    def on_show(self) -> None:
        super().on_show()
        self.focus()

    @property
    def selection_lines(self) -> tuple[int, int]:
        """(first line, lines) of the selected finding and its evidence in the panel's content, as last drawn."""
        return self._at

    def selected_finding(self) -> Finding | None:
        if self.report is None or not self.report.findings:
            return None
        found = ordered(self.report)
        return next((f for f in found if f.key == self.selected), found[0])

    def action_move(self, step: int) -> None:
        if self.report is None or not self.report.findings:
            return
        keys = [f.key for f in ordered(self.report)]
        cur = keys.index(self.selected) if self.selected in keys else 0
        self.selected = keys[max(0, min(len(keys) - 1, cur + step))]
        self.changed()
        self.call_after_refresh(self._scroll_to_selection)

    def action_toggle(self) -> None:
        self.expanded = not self.expanded
        self.changed()
        self.call_after_refresh(self._scroll_to_selection)

    def _scroll_to_selection(self) -> None:
        """Keep the selected finding and as much of its evidence as fits on screen."""
        parent = self.parent
        if not isinstance(parent, Widget):  # not mounted (yet)
            return
        at, size = self._at
        top = self.virtual_region.y + self.gutter.top + at
        if at <= 1:  # the first finding: its heading too (the panel's top)
            top, size = self.virtual_region.y, size + self.gutter.top + at
        height = max(1, min(size, parent.scrollable_content_region.height))
        parent.scroll_to_region(Region(0, top, 1, height), animate=False, immediate=True)

    def render(self) -> Text:
        width = self.content_size.width or 78
        text, at, size = health_layout(self.report, selected=self.selected, expanded=self.expanded, width=width)
        self._at = (at, size)
        return text
