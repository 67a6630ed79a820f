"""The Textual app: fabric health, ECMP groups and the event log of one session.

The app renders a session's Timeline; it never collects.  Timeline changes
only mark the view dirty; a 4 Hz timer redraws (coalescing bursts), so a busy
fabric cannot make the UI busy.  ``p`` freezes the view while updates keep
arriving (counted, shown as waiting).
"""

from __future__ import annotations

import inspect
import time
from typing import Callable, Mapping, Protocol, Sequence

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from rich.text import Text

from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import Event
from anycast_tui.ui import view
from anycast_tui.ui.help import HelpScreen
from anycast_tui.ui.widgets import EventLog, FabricPanel, GroupsPanel, StatusLine

MIN_SIZE = (80, 24)
DEFAULT_PREFIXES = ("192.0.2.53/32",)
REFRESH_S = 0.25  # at most 4 redraws a second
MAX_TARGETS = 9  # keys 1..9


class Session(Protocol):
    """What the app needs of a session: its timeline (start/stop belong to the caller)."""

    @property
    def timeline(self) -> Timeline: ...


class Controls(Protocol):
    """Failure injection for a lab fabric (the demo): keys 1..N toggle ``targets[N-1]``."""

    @property
    def targets(self) -> Sequence[str]: ...

    def is_failed(self, name: str) -> bool: ...

    def fail(self, name: str) -> object: ...  # may be a coroutine

    def restore(self, name: str) -> object: ...


class Impacts(Protocol):
    """Flow counts per event (session.ImpactTracker); ``on_result`` is set by the app."""

    on_result: Callable[[], None] | None

    def counts(self, event: Event) -> Mapping[str, int] | None: ...


class TooSmall(Widget):
    """Shown instead of the panels below the minimum size."""

    def render(self) -> Text:
        w, h = self.app.size
        return Text(f"terminal too small: {w}×{h}, need {MIN_SIZE[0]}×{MIN_SIZE[1]}\n(q quits)", justify="center")


def _toggle_bindings() -> list[Binding]:
    out = [Binding("1", "toggle(0)", "leaf down/up", key_display="1-4")]
    out += [Binding(str(i + 1), f"toggle({i})", f"fail/restore target {i + 1}", show=False)
            for i in range(1, MAX_TARGETS)]
    return out


class AnycastApp(App[int]):
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    TITLE = "anycast-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (MIN_SIZE[0], "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (MIN_SIZE[1], "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "quit", priority=True, tooltip="quit (works at any size)"),
        Binding("question_mark", "help", "help", key_display="?", tooltip="this help (esc closes)"),
        Binding("p", "pause", "pause", tooltip="pause / resume the view; updates keep coming and are counted"),
        Binding("a", "all_events", "all events", tooltip="all events / only anycast, reachability and group events"),
        *_toggle_bindings(),
        Binding("r", "restore_all", "restore all", tooltip="restore every leaf you failed"),
    ]

    def __init__(self, session: Session, *, controls: Controls | None = None, title: str = "anycast-tui",
                 clock: Callable[[], float] = time.time, prefixes: Sequence[str] | None = None,
                 impact: Impacts | None = None) -> None:
        super().__init__()
        self.session = session
        self.controls = controls
        self.impact = impact
        self._impact_version = 0
        if impact is not None:
            impact.on_result = self._on_impact
        self.title = title
        self.clock = clock
        tl = session.timeline
        self.prefixes = tuple(prefixes or tl.anycast_prefixes or DEFAULT_PREFIXES)
        self.paused = False
        self.all_events = False  # False: only events about the anycast prefixes, health and groups
        self.waiting = 0  # timeline updates not yet shown (while paused)
        self.redraws = 0  # how many times the panels were redrawn (tests, bench)
        self._dirty = True
        self._shown = None  # snapshot object last drawn
        self._ticks = 0
        self._drawn_at = 0.0  # clock time of the last redraw
        self._shown_impact = 0
        self._last_counts = view.counts(None, ())
        self._feed = view.EventFeed(self.prefixes, keep=EventLog.MAX_SHOWN)
        self._unsubscribe = tl.subscribe(self._on_change)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        from textual.widgets import Footer, Header

        yield Header(show_clock=False, icon="◆")
        with Horizontal(id="main"):
            with VerticalScroll(id="left"):
                yield FabricPanel(id="fabric", title="fabric")
                yield GroupsPanel(id="groups", title="ECMP groups · " + ", ".join(self.prefixes))
            log = EventLog(id="events")
            log.border_title = "anycast events · newest first · UTC"
            yield log
        yield StatusLine(id="status")
        yield TooSmall(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self._tick)
        self.flush()

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(TooSmall).refresh()

    def on_unmount(self) -> None:
        self._unsubscribe()

    # ------------------------------------------------------------------ updates

    def _on_change(self, change: Change) -> None:
        """Timeline listener: may run on any thread; only counts and marks dirty."""
        self._dirty = True
        if self.paused:
            self.waiting += 1

    def _on_impact(self) -> None:
        """Impact worker finished a change: may run on its thread; only counts and marks dirty."""
        self._impact_version += 1
        self._dirty = True

    def _tick(self) -> None:
        self._ticks += 1
        if self.paused:
            self.query_one(StatusLine).show(paused=True, waiting=self.waiting, counts=self._counts(),
                                            dropped=self.session.timeline.dropped_events)
            return
        # Ages move with the clock: redraw once a second (of the injected clock) even when nothing changed.
        if self._dirty or self.clock() - self._drawn_at >= 1.0:
            self.flush()

    def _counts(self) -> view.Counts:
        """The counts last drawn (frozen while paused)."""
        return self._last_counts

    def flush(self) -> None:
        """Draw the timeline's current state now (unless paused)."""
        if self.paused:
            return
        tl = self.session.timeline
        self._dirty = False
        self._drawn_at = self.clock()
        snap = tl.snapshot
        now_ms = int(self.clock() * 1000)
        self.query_one(FabricPanel).show(view.device_rows(snap, now_ms))
        if snap is not self._shown:
            self.query_one(GroupsPanel).show(view.group_views(snap, self.prefixes))
        if self._feed.pull(tl.events, tl.dropped_events) or self._impact_version != self._shown_impact \
                or snap is not self._shown:
            self._show_events()
            self._shown_impact = self._impact_version
        self._shown = snap
        self._last_counts = self._feed.counts(snap)
        self.query_one(StatusLine).show(paused=False, waiting=0, counts=self._last_counts,
                                        dropped=tl.dropped_events)
        self.redraws += 1

    def _show_events(self) -> None:
        feed = self._feed
        shown = tuple(feed.all if self.all_events else feed.relevant)
        hidden = 0 if self.all_events else feed.total - feed.relevant_total
        snap = self.session.timeline.snapshot
        owners = view.address_owners(snap) if snap is not None else {}
        log = self.query_one(EventLog)
        log.impact = self.impact.counts if self.impact is not None else None
        log.show(shown, hidden=hidden, owners=owners, prefixes=self.prefixes, impact_version=self._impact_version)
        what = "all events" if self.all_events else "anycast events"
        more = f" ({hidden} more: a)" if hidden else ""
        self.query_one(EventLog).border_title = f"{what}{more} · newest first · UTC"

    # ------------------------------------------------------------------ actions

    def action_all_events(self) -> None:
        self.all_events = not self.all_events
        if not self.paused:
            self._show_events()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.help_lines()))

    def help_lines(self) -> list[tuple[str, str]]:
        """(key, what it does) for every binding that is enabled here, in declaration order."""
        lines: list[tuple[str, str]] = []
        targets = list(self.controls.targets)[:MAX_TARGETS] if self.controls else []
        for key, active in self.active_bindings.items():
            b = active.binding
            if active.node is not self or not active.enabled or not b.description:
                continue
            if not b.show and not b.action.startswith("toggle("):
                continue
            if b.action.startswith("toggle("):
                i = int(b.action[7:-1])
                lines.append((key, f"fail / restore {targets[i]}"))
                continue
            lines.append((b.key_display or self.get_key_display(b), b.tooltip or b.description))
        lines.append(("tab ↑ ↓ pgup pgdn", "move between panels and scroll them"))
        lines.append(("ctrl+q", "quit"))
        return lines

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.waiting = 0
            self.flush()
        else:
            self.query_one(StatusLine).show(paused=True, waiting=self.waiting, counts=self._counts(),
                                            dropped=self.session.timeline.dropped_events)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle":
            if self.controls is None:
                return False
            return int(parameters[0]) < len(self.controls.targets)  # type: ignore[call-overload]
        if action == "restore_all":
            return self.controls is not None
        return True

    async def action_toggle(self, index: int) -> None:
        if self.controls is None or index >= len(self.controls.targets):
            return
        name = self.controls.targets[index]
        op = self.controls.restore if self.controls.is_failed(name) else self.controls.fail
        await _maybe_await(op(name))
        self._note(f"you {'restored' if op == self.controls.restore else 'failed'} {name}")

    async def action_restore_all(self) -> None:
        if self.controls is None:
            return
        names = [n for n in self.controls.targets if self.controls.is_failed(n)]
        for name in names:
            await _maybe_await(self.controls.restore(name))
        self._note(f"you restored {', '.join(names)}" if names else "nothing to restore")

    def _note(self, text: str) -> None:
        status = self.query_one(StatusLine)
        status.note = text
        status.refresh()


async def _maybe_await(x: object) -> None:
    if inspect.isawaitable(x):
        await x
