"""Live incidents of a timeline, with their end-to-end impact computed off the event loop.

Headless (no textual).  ``IncidentTracker`` feeds every timeline change to one
``model.incidents.IncidentBook`` (cheap, on the caller's thread) and computes
``model.incident_impact.incident_impact`` for the incidents a change touched on
one worker thread, coalescing bursts: a poll cycle touching an incident five
times computes it once more, on the newest state.  ``on_update(incident,
impact)`` (the recorder) hears every new version; ``on_result()`` (the UI)
that something changed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Callable

from anycast_tui.model.incident_impact import (IncidentImpact, SampledOf, SampleOf, default_sample, incident_impact,
                                                phase_impact, resilient_counts, without_detail)
from anycast_tui.model.incidents import Incident, IncidentBook, PhaseSnapshots
from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import Event

log = logging.getLogger(__name__)
DETAIL_KEEP = 16  # incidents whose per-flow arrays (which flows moved) stay in memory

Listener = Callable[[Incident, IncidentImpact | None], None]


class IncidentTracker:
    def __init__(self, timeline: Timeline, *, on_update: Listener | None = None,
                 on_merged: Callable[[int, int], None] | None = None, sample_of: SampleOf = default_sample,
                 sampled_of: SampledOf | None = None) -> None:
        self.timeline = timeline
        self.book = IncidentBook(timeline.anycast_prefixes)
        self.on_update = on_update
        self.on_merged = on_merged
        self.on_result: Callable[[], None] | None = None
        self.sample_of = sample_of
        self.sampled_of = sampled_of  # the fabric's sampled traffic (sFlow / IPFIX), when a collector runs
        self._impacts: dict[int, IncidentImpact] = {}
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="incident")
        self._pending: list[Future[None]] = []
        self._merged_seen = 0
        self._order: list[int] = []  # incidents by last computation, newest last
        self._resilient_done: dict[int, PhaseSnapshots] = {}
        self._phases: dict[int, tuple[PhaseSnapshots | None, PhaseSnapshots | None]] = {}  # as last computed
        self._unsubscribe = timeline.subscribe(self._on_change)

    # ------------------------------------------------------------------ queries

    def incidents(self) -> list[Incident]:
        with self._lock:
            return self.book.incidents()

    def get(self, incident_id: int) -> Incident | None:
        """The newest version of an incident (one merged into another resolves to it)."""
        with self._lock:
            return self.book.get(incident_id)

    def of_event(self, event: Event) -> Incident | None:
        with self._lock:
            return self.book.of_event(event)

    def merged(self) -> dict[int, int]:
        """Incident id merged away -> the id it lives on as now (merges followed to the end)."""
        with self._lock:
            return {old: self.book.resolve(old) for old in self.book.merged}

    def impact(self, incident_id: int) -> IncidentImpact | None:
        """The newest computed impact of an incident (None until its first result is in)."""
        return self._impacts.get(self.book.resolve(incident_id))

    # ------------------------------------------------------------------ input

    def _on_change(self, change: Change) -> None:
        with self._lock:
            touched = self.book.feed(change.before, change.after, change.events, change.touched)
            merged = list(self.book.merged.items())[self._merged_seen:]
            self._merged_seen = len(self.book.merged)
        if self.on_merged is not None:
            for old, new in merged:
                self.on_merged(old, self.book.resolve(new))
        if not touched:
            return
        with self._lock:
            fresh = not self._dirty
            self._dirty |= touched
        if fresh:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._pool.submit(self._compute))

    def _compute(self) -> None:
        with self._lock:
            ids, self._dirty = sorted(self._dirty), set()
            work = []
            seen: set[int] = set()
            for iid in ids:
                inc = self.book.get(iid)  # an id merged away resolves to the incident it lives on as
                if inc is not None and inc.id not in seen:
                    seen.add(inc.id)
                    work.append((inc, *self.book.phases(inc.id)))
        for inc, onset, restore in work:
            try:
                prev = self._impacts.get(inc.id)
                done = self._phases.get(inc.id, (None, None))
                if prev is not None and onset is not None and onset is done[0] and \
                        (restore is None or restore is done[1]):
                    imp = prev  # nothing this incident's impact depends on changed
                elif prev is not None and onset is not None and onset is done[0] and prev.onset is not None \
                        and restore is not None:
                    imp = IncidentImpact(inc.id, prev.onset,  # only the restore is new: the onset's counts stand
                                         phase_impact(restore, inc.prefixes, self.sample_of, keep_detail=True,
                                                      sampled_of=self.sampled_of),
                                         prev.resilient)
                else:
                    imp = incident_impact(inc.id, onset, restore, inc.prefixes, self.sample_of, keep_detail=True,
                                          sampled_of=self.sampled_of)
                self._phases[inc.id] = (onset, restore)
            except Exception:  # a model bug must not kill the worker: the incident shows no count
                log.exception("impact of incident %d failed", inc.id)
                imp = None
            if imp is not None:
                self._impacts[inc.id] = imp
                self._order = [i for i in self._order if i != inc.id] + [inc.id]
                for old in self._order[:-DETAIL_KEEP]:  # per-flow arrays for the newest few only
                    if old in self._impacts:
                        self._impacts[old] = without_detail(self._impacts[old])
                self._order = self._order[-DETAIL_KEEP:]
            if self.on_update is not None and self.book.resolve(inc.id) == inc.id:  # not merged away meanwhile
                try:
                    self.on_update(inc, imp)
                except Exception:
                    log.exception("incident listener failed")
        if self.on_result is not None:
            self.on_result()
        # second pass, off the headline's path: what resilient hashing would have moved
        for inc, onset, _restore in work:
            imp = self._impacts.get(inc.id)
            if imp is None or onset is None or self._resilient_done.get(inc.id) is onset:
                continue
            try:
                alt = resilient_counts(onset, inc, self.sample_of)
            except Exception:
                log.exception("resilient alternative of incident %d failed", inc.id)
                continue
            self._resilient_done[inc.id] = onset
            imp = self._impacts[inc.id] = replace(imp, resilient=alt)
            if self.on_update is not None and self.book.resolve(inc.id) == inc.id:
                try:
                    self.on_update(inc, imp)
                except Exception:
                    log.exception("incident listener failed")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted computation is done (tests, shutdown); False on timeout."""
        _, not_done = wait_all(list(self._pending), timeout=timeout)
        return not not_done

    def close(self) -> None:
        self._unsubscribe()
        self._pool.shutdown(wait=False, cancel_futures=True)
