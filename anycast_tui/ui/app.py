"""The Textual app: Fabric / Groups / Flows / Events / What-if views of one session.

The app renders a session's Timeline; it never collects and never computes
what the engine can (impact, paths, blast radius run on worker threads in
impacttracker.ImpactTracker and the What-if view).  Timeline changes only mark the
view dirty; a 4 Hz timer redraws (coalescing bursts).  ``p`` freezes the view
while updates keep arriving (counted, shown as waiting).  The selected event
(``[`` ``]``) drives the highlights of every view.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.filter import LineFilter, Monochrome
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.health import HealthReport
from anycast_tui.model.impact import EventImpact
from anycast_tui.model.incident_impact import IncidentImpact
from anycast_tui.model.incidents import Incident
from anycast_tui.model.paths import PathResult
from anycast_tui.model.placement_check import DeviceAgreement
from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import Event, FabricSnapshot
from anycast_tui.model.memo import retain as retain_states
from anycast_tui.model.views import same_picture
from anycast_tui.impacttracker import FlowView
from anycast_tui.ui import view
from anycast_tui.ui.bars import BucketBars
from anycast_tui.ui.flowrows import SORTS, FlowRows, Marks
from anycast_tui.ui.flowtable import FlowTable
from anycast_tui.ui.healthview import HealthPanel
from anycast_tui.ui.help import HelpScreen
from anycast_tui.ui.widgets import EventBar, EventLog, FabricPanel, GroupsPanel, StatusLine, TopologyPanel
from anycast_tui.ui.whatif import WhatIfView

MIN_SIZE = (80, 24)
DEFAULT_PREFIXES = ("192.0.2.53/32",)
REFRESH_S = 0.25  # at most 4 redraws a second
FRESH_S = 5.0  # ok devices polled within this many seconds show "<5s" (no per-second repaint of ages)
VIEWS = ("fabric", "groups", "flows", "events", "whatif")
VIEW_TITLES = {"fabric": "Fabric", "groups": "Groups", "flows": "Flows", "events": "Events", "whatif": "What-if",
               "health": "Health"}
SCREENSHOT_DIR = Path("screenshots")


class Session(Protocol):
    """What the app needs of a session: its timeline (start/stop belong to the caller)."""

    @property
    def timeline(self) -> Timeline: ...


class Controls(Protocol):
    """Failure injection for a lab fabric (the demo): ``f`` picks one of ``targets`` to fail or restore."""

    @property
    def targets(self) -> Sequence[str]: ...

    def is_failed(self, name: str) -> bool: ...

    def fail(self, name: str) -> Awaitable[None] | None: ...  # a coroutine (the demo's SSH farm) or done at once

    def restore(self, name: str) -> Awaitable[None] | None: ...


class Impacts(Protocol):
    """Hop-local flow impact per event and the sample's paths (impacttracker.ImpactTracker); ``on_result`` is
    set by the app."""

    on_result: Callable[[], None] | None

    def counts(self, event: Event) -> Mapping[str, int] | None: ...

    def detail(self, event: Event) -> EventImpact | None: ...

    def trace(self, prefix: str) -> None: ...

    def paths(self, prefix: str) -> tuple[FabricSnapshot, PathResult] | None: ...

    def flows(self, prefix: str) -> FlowArray | None: ...

    def ingress(self, snapshot: FabricSnapshot | None, prefix: str | None = None) -> "np.ndarray | None": ...

    def view(self, prefix: str) -> FlowView | None: ...


class Replay(Protocol):
    """A recorded session being played (record.replay.ReplaySession)."""

    playing: bool
    speed: float
    position_ms: int

    @property
    def window(self) -> tuple[int, int]: ...

    def update(self) -> Change | None: ...

    def seek(self, t_ms: int) -> Change | None: ...

    def step_event(self, current: Event | None, step: int, keep: Callable[[Event], bool] = ...) -> Event | None: ...

    def toggle(self) -> None: ...

    def play(self) -> None: ...

    def faster(self) -> float: ...

    def slower(self) -> float: ...


class Incidents(Protocol):
    """Incidents and their end-to-end impact (incidenttracker.IncidentTracker, or a recording's);
    ``on_result`` is set by the app."""

    on_result: Callable[[], None] | None

    def incidents(self) -> list[Incident]: ...

    def of_event(self, event: Event) -> Incident | None: ...

    def get(self, incident_id: int) -> Incident | None: ...

    def impact(self, incident_id: int) -> IncidentImpact | None: ...


SAMPLED_RETRACE_S = 5.0  # the Flows view takes in newly sampled flows this often


class HealthSource(Protocol):
    """The newest health report of the fabric (``healthwatch.HealthWatch``: checks run off the event loop)."""

    @property
    def report(self) -> HealthReport | None: ...


class Sampled(Protocol):
    """The fabric's sampled traffic (``sampledtraffic.SampledTraffic``), when a flow-export collector runs."""

    def agreements(self) -> Mapping[str, DeviceAgreement]: ...


class TooSmall(Widget):
    """Shown instead of the views below the minimum size."""

    def render(self) -> Text:
        w, h = self.app.size
        return Text(f"terminal too small: {w}×{h}, need {MIN_SIZE[0]}×{MIN_SIZE[1]}\n(q quits)", justify="center")


def _b(key: str, action: str, description: str, id: str, tooltip: str = "", *, show: bool = True,
       key_display: str | None = None, priority: bool = False) -> Binding:
    return Binding(key, action, description, show=show, key_display=key_display, priority=priority, id=id,
                   tooltip=tooltip or description)


def screenshots_dir() -> Path:
    """``screenshots`` next to the recordings' directory: ``$XDG_DATA_HOME/anycast-tui/screenshots``
    (``~/.local/share/...``)."""
    from anycast_tui.record.paths import default_dir

    return default_dir().parent / "screenshots"


class AnycastApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "anycast-tui"
    COMMAND_PALETTE_BINDING = "ctrl+p"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (MIN_SIZE[0], "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (MIN_SIZE[1], "-short"), (40, "-tall")]
    BINDINGS = [
        _b("q", "quit", "quit", "app.quit", "quit (works at any size)", priority=True),
        _b("question_mark", "help", "help", "app.help", "this help (esc closes)", key_display="?"),
        _b("1", "view('fabric')", "views", "view.fabric", "Fabric view: devices, health, hash, topology",
           key_display="1-5"),
        _b("2", "view('groups')", "groups", "view.groups", "Groups view: next hops and bucket bars", show=False),
        _b("3", "view('flows')", "flows", "view.flows", "Flows view: every sample flow, moved ones marked",
           show=False),
        _b("4", "view('events')", "events", "view.events", "Events view: the timeline with flows moved",
           show=False),
        _b("5", "view('whatif')", "what-if", "view.whatif", "What-if view: blast radius before you act",
           show=False),
        _b("6", "help", "help", "view.help", "Help view (same as ?)", show=False),
        _b("7", "view('health')", "health", "view.health", "Health view: findings by severity, server shares",
           show=False),
        _b("left_square_bracket", "event(-1)", "older", "event.previous",
           "select the previous (older) incident, or device event after e", key_display="["),
        _b("right_square_bracket", "event(1)", "newer", "event.next",
           "select the next (newer) incident, or device event after e", key_display="]"),
        _b("e", "step_unit", "incidents/events", "event.unit", "[ ] step incidents (default) or device events",
           show=False),
        _b("escape", "back", "back", "app.back", "back: close the filter, clear the selected event", show=False),
        _b("slash", "filter", "filter", "flows.filter", "filter the flows (words: tcp, 203.0.113.7, server02, "
           "moved, reset, udp-moved, split, sampled, synthetic)", key_display="/"),
        _b("o", "sort", "sort", "flows.sort", "sort the flows: " + ", ".join(SORTS), show=False),
        _b("p", "pause", "pause", "app.pause", "pause / resume the view; updates keep coming and are counted"),
        _b("a", "all_events", "all events", "events.all", "all events / only anycast, reachability and group "
           "events", show=False),
        _b("f", "pick", "fail…", "demo.fail", "fail or restore a device of the lab fabric (a picker)"),
        _b("r", "restore_all", "restore all", "demo.restore", "restore every device you failed", show=False),
        _b("s", "screenshot", "screenshot", "app.screenshot", "save an SVG screenshot", show=False),
        _b("colon", "command_palette", "commands", "app.commands", "command palette (also ctrl+p)",
           key_display=":", show=False),
        _b("space", "play", "play/pause", "replay.play", "replay: play / pause"),
        _b("plus", "speed(1)", "faster", "replay.faster", "replay: faster (×1…×60)", key_display="+"),
        _b("minus", "speed(-1)", "slower", "replay.slower", "replay: slower", key_display="-", show=False),
        _b("g", "seek", "seek", "replay.seek", "replay: seek to a time (HH:MM:SS, UTC)", show=False),
    ]

    def __init__(self, session: Session, *, controls: Controls | None = None, title: str = "anycast-tui",
                 clock: Callable[[], float] = time.time, prefixes: Sequence[str] | None = None,
                 impact: Impacts | None = None, keymap: Mapping[str, str] | None = None,
                 monochrome: bool = False, screenshot_dir: str | Path | None = None,
                 replay: Replay | None = None, incidents: Incidents | None = None,
                 sampled: Sampled | None = None, health: HealthSource | None = None) -> None:
        super().__init__()
        self.session = session
        self.controls = controls
        self.impact = impact
        self.replay = replay  # record.replay.ReplaySession when replaying
        self._impact_version = 0
        if impact is not None:
            impact.on_result = self._on_impact
        self.incidents = incidents
        self.sampled = sampled
        self.health = health
        if incidents is not None:
            incidents.on_result = self._on_impact
        self.selected_incident: Incident | None = None
        self.step_devices = incidents is None  # [ ] step incidents; e switches to device events
        self.title = title
        self.clock = clock
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir is not None else SCREENSHOT_DIR
        # --mono: Textual's own filters, then monochrome (get_line_filters); NO_COLOR already has Textual add it
        self.mono_filter: LineFilter | None = Monochrome() if monochrome and not self.no_color else None
        self.key_overrides: dict[str, str] = {}  # binding id -> "key[,key…]", as given to set_keymap
        if keymap:
            self.set_keymap(dict(keymap))
        tl = session.timeline
        self.prefixes = tuple(prefixes or tl.anycast_prefixes or DEFAULT_PREFIXES)
        self.view = "fabric"
        self.paused = False
        self.all_events = False  # False: only events about the anycast prefixes, health and groups
        self.waiting = 0  # timeline updates not yet shown (while paused)
        self.redraws = 0  # how many times the views were redrawn (tests, bench)
        self.selected: Event | None = None
        self.flow_rows: FlowRows | None = None
        self._dirty = True
        self._shown = None  # snapshot object last drawn
        self._drawn_at = 0.0  # clock time of the last redraw
        self._shown_impact = 0
        self._shown_paths: PathResult | None = None
        self._shown_view: FlowView | None = None
        self._traced_at = 0.0
        self._shown_marks: EventImpact | None = None  # the detail the marks were made of
        self._last_counts = view.counts(None, ())
        self._feed = view.EventFeed(self.prefixes, keep=EventLog.MAX_SHOWN)
        self._events_list = tl.events
        self._unsubscribe = tl.subscribe(self._on_change)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        from textual.widgets import Footer, Header

        yield Header(show_clock=False, icon="◆")
        yield EventBar(id="eventbar")
        with ContentSwitcher(initial="fabric", id="views"):
            with VerticalScroll(id="fabric"):
                yield FabricPanel(id="fabric-panel", title="fabric")
                yield TopologyPanel(id="topology", title="topology · " + ", ".join(self.prefixes))
            with VerticalScroll(id="groups"):
                yield GroupsPanel(id="groups-panel", title="ECMP groups · " + ", ".join(self.prefixes))
                yield BucketBars(id="bars", title="hash space per next hop (^ moved by the selection)")
            with Vertical(id="flows"):
                yield FlowTable(id="flow-table")
                yield Input(placeholder="filter: words all must match (esc clears)", id="flow-filter")
            log = EventLog(id="events")
            log.border_title = "anycast events · newest first · UTC"
            yield log
            yield WhatIfView(self._whatif_context, prefixes=self.prefixes, id="whatif")
            with VerticalScroll(id="health"):
                yield HealthPanel(id="health-panel", title="health · findings by severity · server shares")
        yield StatusLine(id="status")
        yield TooSmall(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.tick)
        self.query_one("#flow-filter", Input).display = False
        if self.impact is not None:
            self.impact.trace(self.prefixes[0])
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
        """Impact worker finished: may run on its thread; only counts and marks dirty."""
        self._impact_version += 1
        self._dirty = True

    def tick(self) -> None:
        """What the refresh timer runs every ``REFRESH_S``: advance a playing replay, and redraw when
        something changed or a second (of the injected clock) went by; nothing while paused but the status."""
        if not self.is_running:  # shutting down: Textual has removed the views, a late tick has nothing to draw
            return
        if self.replay is not None and self.replay.playing:
            self.replay.update()
        if self.paused:
            self._show_status()
            return
        # Ages move with the clock: redraw once a second (of the injected clock) even when nothing changed.
        if self._dirty or self.clock() - self._drawn_at >= 1.0:
            self.flush()

    def _show_status(self) -> None:
        self.query_one(StatusLine).show(paused=self.paused, waiting=self.waiting, counts=self._last_counts,
                                        dropped=self.session.timeline.dropped_events, view=VIEW_TITLES[self.view],
                                        replay=self._replay_text())

    def _replay_text(self) -> str:
        r = self.replay
        if r is None:
            return ""
        state = "▶" if r.playing else "‖"
        return f"replay {state} ×{r.speed:g} {view.hms_s(r.position_ms)}"

    def flush(self) -> None:
        """Draw the timeline's current state now (unless paused)."""
        if self.paused:
            return
        tl = self.session.timeline
        self._dirty = False
        self._drawn_at = self.clock()
        snap = tl.snapshot
        now_ms = int(self.clock() * 1000)
        checked = self.sampled.agreements() if self.sampled is not None else None
        self.query_one(FabricPanel).show(view.device_rows(snap, now_ms, FRESH_S, checked),
                                         focus=self.selected.device if self.selected else None)
        if tl.events is not self._events_list:  # a replay jumped: its event list was replaced
            self._events_list = tl.events
            self._feed = view.EventFeed(self.prefixes, keep=EventLog.MAX_SHOWN)
        new_events = self._feed.pull(tl.events, tl.dropped_events)
        impact_changed = self._impact_version != self._shown_impact
        new_picture = not same_picture(self._shown, snap)
        retrace = self.sampled is not None and self.clock() - self._traced_at >= SAMPLED_RETRACE_S
        if (new_picture or retrace) and self.impact is not None and snap is not None:
            self.impact.trace(self.prefixes[0])  # the Flows view follows the fabric from the first poll on
            self._traced_at = self.clock()  # and the sampled traffic as it comes
        if new_picture or impact_changed or new_events:
            self.query_one(TopologyPanel).show(view.device_rows(snap, 0), view.group_views(snap, self.prefixes))
            self._show_events()
            self._show_selected()
            self._shown_impact = self._impact_version
        self._show_flows()
        if self.health is not None:
            self.query_one(HealthPanel).show(self.health.report)
        self._shown = snap
        self._last_counts = self._feed.counts(snap)
        self._show_status()
        self.redraws += 1

    def shown_events(self) -> tuple[Event, ...]:
        """The events the Events view lists (oldest first)."""
        return tuple(self._feed.all if self.all_events else self._feed.relevant)

    def _show_events(self) -> None:
        feed = self._feed
        shown = self.shown_events()
        hidden = 0 if self.all_events else feed.total - feed.relevant_total
        snap = self.session.timeline.snapshot
        owners = view.address_owners(snap) if snap is not None else {}
        log = self.query_one(EventLog)
        log.impact = self.impact.counts if self.impact is not None else None
        if self.incidents is not None:
            log.incident_of = self.incidents.of_event
            log.incident_impact = self.incidents.impact
        log.show(shown, hidden=hidden, owners=owners, prefixes=self.prefixes, impact_version=self._impact_version,
                 selected=self.selected, now_ms=int(self.clock() * 1000),
                 selected_incident=self.selected_incident.id if self.selected_incident is not None else None)
        what = "all events" if self.all_events else "anycast events"
        more = f" ({hidden} more: a)" if hidden else ""
        unit = "device events" if self.step_devices else "incidents"
        log.border_title = f"{what}{more} by incident · newest first · UTC · [ ] {unit}"

    # ------------------------------------------------------------------ selected event

    def incident_impact(self) -> IncidentImpact | None:
        """The selected incident's end-to-end impact (None: no incident selected, or not computed yet)."""
        if self.selected_incident is None or self.incidents is None:
            return None
        return self.incidents.impact(self.selected_incident.id)

    def detail(self) -> EventImpact | None:
        """Which sample flows the selection moved: the selected incident's (end to end) or event's
        (hop-local); None while unknown."""
        if self.selected_incident is not None:
            imp = self.incident_impact()
            p = imp.headline if imp is not None else None
            return p.detail if p is not None else None
        if self.selected is None or self.impact is None:
            return None
        return self.impact.detail(self.selected)

    def _moment(self) -> tuple[str, FabricSnapshot | None, EventImpact | None]:
        """What the Groups table and the bucket bar show, said once: (caption, snapshot, detail)."""
        d = self.detail()
        if d is None:
            return "now (live)", self.session.timeline.snapshot, None
        inc, ev = self.selected_incident, self.selected
        what = f"incident #{inc.id}" if inc is not None else "the selected event"
        t = view.hms(inc.start_ms if inc is not None else ev.time_ms if ev is not None else None)
        return f"as right after {what} ({t}); ^ marks the hash space it moved", d.after, d

    def _show_selected(self) -> None:
        if self.selected_incident is not None and self.incidents is not None:  # its newest version (it grows, ends)
            self.selected_incident = self.incidents.get(self.selected_incident.id) or self.selected_incident
        ev, d = self.selected, self.detail()
        shown = self.shown_events()
        snap = self.session.timeline.snapshot
        owners = view.address_owners(snap) if snap is not None else {}
        inc = self.selected_incident
        if inc is not None and self.incidents is not None:
            incs = [i.id for i in self.incidents.incidents()]
            imp = self.incident_impact()
            p = imp.headline if imp is not None else None
            text = view.incident_bar_text(inc, imp, int(self.clock() * 1000),
                                          incs.index(inc.id) + 1 if inc.id in incs else 0, len(incs))
            self.query_one(EventBar).show(None, None, len(shown), None, owners, self.prefixes, incident=text,
                                          moved=bool(p is not None and p.estimated.moved))
        else:
            pos = shown.index(ev) + 1 if ev is not None and ev in shown else None
            counts = self.impact.counts(ev) if ev is not None and self.impact is not None else None
            self.query_one(EventBar).show(ev, pos, len(shown), counts, owners, self.prefixes)
        retain_states((snap, d.before if d is not None else None, d.after if d is not None else None))
        caption, at, d = self._moment()
        focus = ev.device if ev is not None else None
        groups = view.group_views(at, self.prefixes)
        panel = self.query_one(GroupsPanel)
        panel.show(groups)
        panel.border_title = f"ECMP groups · {', '.join(self.prefixes)} · {caption.split(';')[0]}"
        bars = self.query_one(BucketBars)
        if d is not None:
            bars.show(d.after, self.prefixes, before=d.before, device=focus, caption=caption)
        else:
            bars.show(snap, self.prefixes, device=focus)
        self.query_one(FabricPanel).show(self.query_one(FabricPanel).rows, focus=focus)

    def _show_flows(self) -> None:
        tr = self.impact
        if tr is None:
            return
        prefix = self.prefixes[0]
        got = tr.paths(prefix)
        if got is None:
            return
        rows = self.flow_rows
        fv = tr.view(prefix)  # with sampled traffic: the sample and the busiest sampled flows, one table
        if fv is not None and (rows is None or fv is not self._shown_view):
            old = rows
            rows = self.flow_rows = FlowRows(fv.flows, fv.ingress, fv.paths, fv.sources)
            self._shown_view, self._shown_paths, self._shown_marks = fv, fv.paths, None
            if old is not None:
                rows.query, rows.sort = old.query, old.sort
            rows.refilter()
            self.run_worker(rows.prepare, thread=True, group="flow-keys")
        elif rows is None:
            flows, ingress = tr.flows(prefix), tr.ingress(got[0], prefix)
            if flows is None or ingress is None:
                return
            rows = self.flow_rows = FlowRows(flows, ingress, got[1])
            self._shown_paths = got[1]
            self.run_worker(rows.prepare, thread=True, group="flow-keys")
        elif fv is None and got[1] is not self._shown_paths:
            self._shown_paths = got[1]
            rows.set_paths(got[1])
        d = self.detail()
        if d is not self._shown_marks or self._shown_marks is None and rows.marks.kind.any():
            self._shown_marks = d
            rows.set_marks(Marks.of(rows.total, d) if d is not None and d.prefix == prefix
                           else Marks.none(rows.total))
        table = self.query_one(FlowTable)
        table.show(rows)
        title = self._flows_title()
        if table.border_title != title:
            table.border_title = title

    def _flows_title(self) -> str:
        r = self.flow_rows
        if r is None:
            return "flows"
        c = r.counts()
        flt = f" · filter “{r.query}”" if r.query else ""
        what = f"incident #{self.selected_incident.id}" if self.selected_incident is not None else "selected event"
        moved = f" · {what}: ✗ {c['tcp_reset']} TCP reset  ↷ {c['udp']} UDP continue  → " \
                f"{c['moved'] - c['tcp_reset'] - c['udp']} other  ⑂ {c['split']}" \
            if self.selected is not None or self.selected_incident is not None else ""
        return f"flows {c['shown']}/{c['total']}{flt} · sort {r.sort}{moved}"

    def select(self, ev: Event | None) -> None:
        """Select ``ev`` (None clears): every view's highlights follow."""
        self._select(ev, None)

    def select_incident(self, inc: Incident | None) -> None:
        """Select an incident (None clears): the header, the flows, groups and bars show its total."""
        self._select(None, inc)

    def _select(self, ev: Event | None, inc: Incident | None) -> None:
        self.selected, self.selected_incident = ev, inc
        self._show_events()
        self._show_selected()
        self._show_flows()
        if ev is not None or inc is not None:
            self.query_one(EventLog).scroll_to_event(ev, inc.id if inc is not None else None)

    def action_step_unit(self) -> None:
        if self.incidents is None:
            self.notify_note("no incidents here: [ ] step device events")
            return
        self.step_devices = not self.step_devices
        self.notify_note("[ ] step " + ("device events" if self.step_devices else "incidents"))
        self._show_events()

    def _step_incident(self, step: int) -> None:
        assert self.incidents is not None
        incs = self.incidents.incidents()
        if self.replay is not None:
            r = self.replay
            cur = self.selected_incident
            at = cur.start_ms if cur is not None else r.position_ms
            later = [i for i in incs if (i.start_ms, i.id) > (at, cur.id if cur else -1)] if step > 0 else \
                [i for i in incs if (i.start_ms, i.id) < (at, cur.id if cur else 1 << 62)]
            if cur is None and step > 0:
                later = [i for i in incs if i.start_ms > at] or later
            if not later:
                self.notify_note("no more incidents")
                return
            inc = later[0] if step > 0 else later[-1]
            r.seek(max(e.time_ms for e in inc.events) if inc.events else inc.start_ms)
            self.flush()
            self.select_incident(inc)
            return
        if not incs:
            self.notify_note("no incidents yet (e: step device events)")
            return
        ids = [i.id for i in incs]
        cur = self.selected_incident
        if cur is None or cur.id not in ids:
            self.select_incident(incs[-1])
            return
        i = max(0, min(len(incs) - 1, ids.index(cur.id) + step))
        self.select_incident(incs[i])

    def action_event(self, step: int) -> None:
        if self.incidents is not None and not self.step_devices:
            self._step_incident(step)
            return
        if self.replay is not None:
            r = self.replay
            ev = r.step_event(self.selected, step,
                              (lambda e: True) if self.all_events else (lambda e: view.concerns(e, self.prefixes)))
            if ev is None:
                self.notify_note("no more events")
                return
            self.flush()
            self.select(ev)
            return
        shown = self.shown_events()
        if not shown:
            return
        if self.selected is None or self.selected not in shown:
            self.select(shown[-1])
            return
        i = shown.index(self.selected) + step
        self.select(shown[max(0, min(len(shown) - 1, i))])

    # ------------------------------------------------------------------ actions

    def action_view(self, name: str) -> None:
        self.view = name
        self.query_one(ContentSwitcher).current = name
        if name == "whatif":
            w = self.query_one(WhatIfView)
            w.refresh_candidates()
            self.screen.set_focus(w.query_one("#whatif-list"))
        elif name == "flows":
            self.screen.set_focus(self.query_one(FlowTable))
        elif name == "events":
            self.screen.set_focus(self.query_one(EventLog))
        else:  # the view's scroll container: the focus must not stay in a hidden view (its keys would show)
            self.screen.set_focus(self.query_one(f"#{name}"))
        self._show_status()

    def action_back(self) -> None:
        flt = self.query_one("#flow-filter", Input)
        if flt.display:
            flt.value = ""
            flt.display = False
            self._apply_filter("")
            self.query_one(FlowTable).focus()
        elif self.selected is not None:
            self.select(None)
        elif self.view != "fabric":
            self.action_view("fabric")

    def action_filter(self) -> None:
        if self.view != "flows":
            self.action_view("flows")
        flt = self.query_one("#flow-filter", Input)
        flt.display = True
        self.screen.set_focus(flt)  # now, not after a refresh: the next keys typed must land in the filter

    def on_input_changed(self, event: Input.Changed) -> None:
        """The filter applies as you type (enter only returns to the table)."""
        if event.input.id == "flow-filter" and self.flow_rows is not None and event.value.strip() != \
                self.flow_rows.query:
            self._apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "flow-filter":
            self._apply_filter(event.value)
            event.input.display = bool(event.value)
            self.query_one(FlowTable).focus()
        elif event.input.id == "seek":
            self._seek(event.value)

    def _apply_filter(self, text: str) -> None:
        if self.flow_rows is not None:
            self.flow_rows.set_query(text)
            table = self.query_one(FlowTable)
            table.scroll_to(y=0, animate=False)
            table.show(self.flow_rows)
            table.border_title = self._flows_title()

    def action_sort(self) -> None:
        if self.flow_rows is None:
            return
        self.flow_rows.set_sort(SORTS[(SORTS.index(self.flow_rows.sort) + 1) % len(SORTS)])
        table = self.query_one(FlowTable)
        table.show(self.flow_rows)
        table.border_title = self._flows_title()

    def action_all_events(self) -> None:
        self.all_events = not self.all_events
        if not self.paused:
            self._show_events()
            self._show_selected()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.help_lines()))

    def help_lines(self) -> list[tuple[str, str]]:
        """(key, what it does [binding id]) for every binding enabled here, in declaration order."""
        lines: list[tuple[str, str]] = []
        seen: set[str] = set()
        for b in self._bindings_in_order():
            if not self.check_action(b.action.split("(")[0], _params(b.action)) or b.id in seen:
                continue
            seen.add(b.id or b.action)
            keys = ",".join(self.get_key_display(Binding(k, b.action)) for k in self._keys_of(b))
            lines.append((keys, f"{b.tooltip or b.description}  [{b.id}]"))
        lines.append(("t m d ⏎", "What-if view: cycle action, mark for the drain order, drain order, blast radius"))
        lines.append(("↑↓ j k", "move and scroll (pgup pgdn home end too)"))
        lines.append(("ctrl+q", "quit"))
        return lines

    def _bindings_in_order(self) -> list[Binding]:
        return [b for b in self.BINDINGS if isinstance(b, Binding)]

    def _keys_of(self, b: Binding) -> list[str]:
        """The keys ``b`` answers to: the keymap's for its id (as Textual applies it), else its own."""
        keys = (self.key_overrides.get(b.id) if b.id else None) or b.key
        return [k.strip() for k in keys.split(",") if k.strip()] or [b.key]

    def set_keymap(self, keymap: Mapping[str, str]) -> None:
        """Textual's ``set_keymap``; the keymap is kept for the help screen's keys."""
        self.key_overrides = dict(keymap)
        super().set_keymap(dict(keymap))

    def update_keymap(self, keymap: Mapping[str, str]) -> None:
        """Textual's ``update_keymap`` (merged over the keymap set before); kept for the help screen too."""
        self.key_overrides = {**self.key_overrides, **keymap}
        super().update_keymap(dict(keymap))

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's enabled line filters, then monochrome for ``--mono``."""
        filters = super().get_line_filters()
        return [*filters, self.mono_filter] if self.mono_filter is not None else filters

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pick", "restore_all"):
            return self.controls is not None
        if action in ("play", "speed", "seek"):
            return self.replay is not None
        if action in ("filter", "sort"):
            return self.impact is not None
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for name in VIEWS:
            yield SystemCommand(f"View: {VIEW_TITLES[name]}", f"switch to the {VIEW_TITLES[name]} view",
                                lambda n=name: self.action_view(n))
        yield SystemCommand("Next event", "select the next (newer) event", lambda: self.action_event(1))
        yield SystemCommand("Previous event", "select the previous (older) event", lambda: self.action_event(-1))
        yield SystemCommand("Pause / resume", "freeze the view", self.action_pause)
        yield SystemCommand("Screenshot", f"save an SVG to {self.screenshot_dir}/", self.action_screenshot)
        yield SystemCommand("Help", "every key", self.action_help)
        if self.controls is not None:
            yield SystemCommand("Fail or restore…", "fail or restore a lab device", self.action_pick)
        yield from super().get_system_commands(screen)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.waiting = 0
            self.flush()
        else:
            self._show_status()

    def action_screenshot(self) -> None:
        """An SVG of the screen, into ``--screenshots DIR`` if given, else beside the recordings (user data
        directory, made 0700); a notification says where, in full."""
        where = screenshots_dir() if self.screenshot_dir is SCREENSHOT_DIR else self.screenshot_dir
        if not where.is_dir():
            where.mkdir(parents=True, mode=0o700)
        path = str(Path(self.save_screenshot(path=str(where))).resolve())
        self.notify(path, title="screenshot saved", markup=False)
        self.notify_note(f"screenshot saved: {path}")

    async def action_pick(self) -> None:
        if self.controls is None:
            return
        from anycast_tui.ui.picker import FailPicker

        controls = self.controls

        async def chosen(name: str | None) -> None:
            if name is None:
                return
            failed = controls.is_failed(name)
            await _maybe_await(controls.restore(name) if failed else controls.fail(name))
            self.notify_note(f"you {'restored' if failed else 'failed'} {name}")

        self.push_screen(FailPicker(list(controls.targets), controls.is_failed), chosen)

    async def toggle(self, name: str) -> None:
        """Fail ``name`` if up, else restore it (what the picker does; tests and scripts)."""
        assert self.controls is not None
        failed = self.controls.is_failed(name)
        await _maybe_await(self.controls.restore(name) if failed else self.controls.fail(name))
        self.notify_note(f"you {'restored' if failed else 'failed'} {name}")

    async def action_restore_all(self) -> None:
        if self.controls is None:
            return
        names = [n for n in self.controls.targets if self.controls.is_failed(n)]
        for name in names:
            await _maybe_await(self.controls.restore(name))
        self.notify_note(f"you restored {', '.join(names)}" if names else "nothing to restore")

    def action_play(self) -> None:
        if self.replay is not None:
            self.replay.toggle()
            self._show_status()

    def action_speed(self, step: int) -> None:
        if self.replay is not None:
            (self.replay.faster if step > 0 else self.replay.slower)()
            self._show_status()

    def action_seek(self) -> None:
        if self.replay is None:
            return
        from anycast_tui.ui.seek import SeekScreen

        self.push_screen(SeekScreen(), self._seek)

    def _seek(self, text: str | None) -> None:
        if not text or self.replay is None:
            return
        from anycast_tui.ui.seek import parse_hms

        start, end = self.replay.window
        t = parse_hms(text, start)
        if t is None:
            self.notify_note(f"not a time: {text!r} (HH:MM:SS UTC)")
            return
        self.replay.seek(max(start, min(end, t)))
        self.flush()
        # a selection the jump left behind (after the new position) is cleared: the header never shows it
        tl = self.session.timeline
        if self.selected is not None and self.selected not in tl.events:
            self.select(None)
        elif self.selected_incident is not None and self.selected_incident.start_ms > self.replay.position_ms:
            self.select_incident(None)

    def _whatif_context(self) -> tuple[FabricSnapshot | None, FlowArray | None, np.ndarray | None]:
        snap = self.session.timeline.snapshot
        tr = self.impact
        if tr is None:
            return snap, None, None
        return snap, tr.flows(self.prefixes[0]), tr.ingress(snap, self.prefixes[0])

    def notify_note(self, text: str) -> None:
        status = self.query_one(StatusLine)
        status.note = text
        status.refresh()


def _params(action: str) -> tuple[object, ...]:
    if "(" not in action:
        return ()
    inner = action[action.index("(") + 1:-1]
    return tuple(x.strip("'\"") for x in inner.split(",") if x)


async def _maybe_await(x: Awaitable[None] | None) -> None:
    if inspect.isawaitable(x):
        await x
