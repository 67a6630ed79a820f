"""Headless replay of a recording, with the surface the UI uses of a live session.

``ReplaySession.timeline`` is a Timeline fed from the file: its snapshot is
the recorded state at the play position and its events are the recorded
events up to there (never re-derived).  Play/pause, speed (x1..x60), seek and
next/previous event move the position; :meth:`update` (call it from a timer)
advances it while playing, by the clock's elapsed time times the speed.
"""

from __future__ import annotations

import time
from typing import Callable

from anycast_tui.model.incident_impact import IncidentImpact
from anycast_tui.model.incidents import Incident
from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import Event, FabricSnapshot, Health
from anycast_tui.impacttracker import ImpactTracker
from anycast_tui.record.reader import Recording, RecordingError

SPEEDS = (1, 2, 5, 10, 30, 60)
MIN_SPEED, MAX_SPEED = 1.0, 60.0


class ReplayTimeline(Timeline):
    """A Timeline whose content is set from a recording (no diffing)."""

    def show(self, snapshot: FabricSnapshot, new_events: tuple[Event, ...]) -> Change:
        """Move forward: ``snapshot`` becomes current and ``new_events`` are appended."""
        return self._commit(self.snapshot, snapshot, list(new_events))

    def reset(self, snapshot: FabricSnapshot, events: list[Event]) -> Change:
        """Jump: the event list is replaced by ``events`` (all events up to ``snapshot``)."""
        self.events = list(events[-self.max_events:])
        self.dropped_events = max(len(events) - self.max_events, 0)
        return self._commit(self.snapshot, snapshot, [])


class ReplaySession:
    """Plays a Recording into ``timeline``; ``start``/``stop``/``health`` mirror the live session."""

    def __init__(self, recording: Recording, *, clock: Callable[[], float] = time.monotonic,
                 speed: float = 1.0) -> None:
        if recording.window is None:
            raise RecordingError(f"{recording.path}: nothing recorded to replay")
        self.recording = recording
        self.clock = clock
        self.speed = self._clamp(speed)
        self.playing = False
        self.timeline = ReplayTimeline(anycast_prefixes=(), clock=lambda: self.position_ms / 1000)
        self.position_ms = recording.window[0]
        self._index = -1
        self._events_shown = 0
        self._anchor: float | None = None
        self.seek(recording.window[0])

    # ------------------------------------------------------------------ surface shared with LiveSession

    async def start(self) -> None:
        """Nothing runs on its own: call :meth:`update` from a timer."""

    async def stop(self) -> None:
        self.pause()

    def health(self) -> dict[str, Health]:
        snap = self.timeline.snapshot
        return {n: s.health for n, s in snap.devices.items()} if snap is not None else {}

    # ------------------------------------------------------------------ position

    @property
    def window(self) -> tuple[int, int]:
        w = self.recording.window
        assert w is not None
        return w

    @property
    def events(self) -> list[Event]:
        """Every recorded event (for the timeline's marks)."""
        return self.recording.events

    @property
    def damage(self) -> str | None:
        return str(self.recording.damage) if self.recording.damage else None

    @property
    def at_end(self) -> bool:
        return self.position_ms >= self.window[1]

    @staticmethod
    def _clamp(speed: float) -> float:
        return min(max(float(speed), MIN_SPEED), MAX_SPEED)

    def set_speed(self, speed: float) -> float:
        self.update()  # time played so far counts at the old speed
        self.speed = self._clamp(speed)
        return self.speed

    def faster(self) -> float:
        return self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))

    def slower(self) -> float:
        return self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))

    def play(self) -> None:
        if self.at_end:
            self.seek(self.window[0])
        self.playing = True
        self._anchor = self.clock()

    def pause(self) -> None:
        self.update()
        self.playing = False
        self._anchor = None

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def update(self) -> Change | None:
        """While playing: advance by the time elapsed since the last call times the speed."""
        if not self.playing or self._anchor is None:
            return None
        now = self.clock()
        target = self.position_ms + int((now - self._anchor) * self.speed * 1000)
        self._anchor = now
        change = self._goto(min(target, self.window[1]))
        if self.at_end:
            self.playing = False
            self._anchor = None
        return change

    def seek(self, t_ms: int) -> Change | None:
        """Jump to ``t_ms`` (clamped to the window)."""
        if self.playing:
            self._anchor = self.clock()
        return self._goto(min(max(int(t_ms), self.window[0]), self.window[1]))

    def _goto(self, t_ms: int) -> Change | None:
        self.position_ms = t_ms
        i = self.recording.index_at(t_ms)
        if i == self._index:
            return None
        snap = self.recording.state_of_tick(i)
        n = self.recording.events_until_tick(i)
        if i > self._index >= 0 and n >= self._events_shown:
            change = self.timeline.show(snap, tuple(self.recording.events[self._events_shown:n]))
        else:
            change = self.timeline.reset(snap, self.recording.events[:n])
        self.timeline.anycast_prefixes = snap.anycast_prefixes
        self._index, self._events_shown = i, n
        return change

    def _event_tick_times(self) -> list[int]:
        times = self.recording.tick_times
        seqs = [t.seq for t in self.recording.ticks()]
        pos = {s: i for i, s in enumerate(seqs)}
        return [times[pos[s]] for s in self.recording.event_seqs]

    def step_event(self, current: Event | None, step: int, keep: Callable[[Event], bool] = lambda e: True
                   ) -> Event | None:
        """The recorded event ``step`` (±1) from ``current`` (or from the play position) that ``keep`` accepts,
        the position moved to its tick; None (no move) if there is none.  Events of one tick are stepped one
        by one (the spines' removals of one poll are several events)."""
        events = self.recording.events
        times = self._event_tick_times()
        i = next((k for k, e in enumerate(events) if e == current), None) if current is not None else None
        if i is None:
            before = [k for k, t in enumerate(times) if t <= self.position_ms]
            i = (before[-1] if before else -1) if step > 0 else (before[-1] + 1 if before else 0)
        j = i + step
        while 0 <= j < len(events) and not keep(events[j]):
            j += step
        if not 0 <= j < len(events):
            return None
        if times[j] != self.position_ms:
            self.seek(times[j])
        return events[j]

    def next_event(self) -> Event | None:
        """Seek to the tick of the first event after the position; None (no move) if there is none."""
        for ev, t in zip(self.recording.events, self._event_tick_times()):
            if t > self.position_ms:
                self.seek(t)
                return ev
        return None

    def previous_event(self) -> Event | None:
        """Seek to the tick of the last event before the position; None (no move) if there is none."""
        found = None
        for ev, t in zip(self.recording.events, self._event_tick_times()):
            if t < self.position_ms:
                found = (ev, t)
        if found is None:
            return None
        self.seek(found[1])
        return found[0]


class RecordedIncidents:
    """A recording's incidents as the UI asks for them (``ui.app.Incidents``): the numbers the monitor
    computed and stored (``record.incidentlog``), or, for a file written before incidents were
    recorded, rebuilt from its ticks (``recorded`` False: the UI and report say so)."""

    def __init__(self, recording: Recording) -> None:
        from anycast_tui.record.incidentlog import of_recording

        found, self.recorded = of_recording(recording)
        self._list = [r.incident for r in found]
        self._impacts = {r.incident.id: r.impact for r in found}
        self._by_event = {ev: r.incident for r in found for ev in r.incident.all_events}
        self.on_result: Callable[[], None] | None = None

    def incidents(self) -> list[Incident]:
        return list(self._list)

    def of_event(self, event: Event) -> Incident | None:
        return self._by_event.get(event)

    def get(self, incident_id: int) -> Incident | None:
        return next((i for i in self._list if i.id == incident_id), None)

    def impact(self, incident_id: int) -> IncidentImpact | None:
        return self._impacts.get(incident_id)


class RecordedEventImpacts(ImpactTracker):
    """The replay's per-event (hop-local) counts are the ones recorded live, next to their events (a
    replayed tick coalesces a second of polls, so recomputing would put one poll's total on each of
    its events); the sample's paths are traced anew for the Flows view."""

    def __init__(self, recording: Recording, timeline: Timeline) -> None:
        super().__init__(timeline)
        notes = recording.impacts()
        self._recorded = {ev: {k: int(v) for k, v in notes[i].items() if isinstance(v, int)}
                          for i, ev in enumerate(recording.events) if i in notes}

    def counts(self, event: Event) -> dict[str, int] | None:
        got = self._recorded.get(event)
        return got if got is not None else super().counts(event)
