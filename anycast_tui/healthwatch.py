"""The health checks of a live session, run off the event loop, their findings appearing and clearing as
timeline events (headless, no textual).  ``HealthWatch.report`` is the newest ``model.health.HealthReport``:
the TUI's Health view and the Prometheus metrics read it; nothing else runs the checks live.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Callable, Protocol

from anycast_tui.model.timeline import Timeline

if TYPE_CHECKING:  # model.health is imported when the watch starts (start-up time of the commands without it)
    from anycast_tui.model.health import HealthReport, Thresholds
    from anycast_tui.model.sampled import SampledFlowSet, SampledWindow
    from anycast_tui.model.shares import SampleOf, TrafficOf
    from anycast_tui.model.timeline import Change


class Traffic(Protocol):
    """The session's sampled traffic as the checks read it (``sampledtraffic.SampledTraffic``)."""

    @property
    def window(self) -> SampledWindow: ...

    def flow_set(self, prefix: str, now: float) -> SampledFlowSet | None: ...


class HealthWatch:
    """The health checks of a live session, as events: ``model.health.evaluate`` on the timeline's snapshot after
    it changed, on a worker thread, ``settle_s`` after the change (the rest of its poll comes in meanwhile) and
    **rate-limited** to one evaluation every ``min_interval_s`` (a change during the wait is evaluated once the
    wait is over, on the newest snapshot); the findings that appear and clear
    (``finding_events``) go onto the timeline (``Timeline.add``: shown, printed and recorded as every event) through
    ``post`` (``loop.call_soon_threadsafe`` in a live session: the timeline belongs to the event loop; default:
    at once, on the worker).  ``report`` is the newest ``HealthReport``; its own events do not trigger it, nor do
    polls that change nothing the checks read (no event; health, hash settings, live flows and FRR RIB as they
    were), unless live TCP connections are being timed (long-lived TCP needs an evaluation now and then) or sampled
    traffic is coming in.

    ``traffic``: the session's sampled traffic (``sampledtraffic.SampledTraffic``; the ``Traffic`` contract):
    server shares are then measured on the flows in its window at ``wall()``; ``sample_of``: the flows placed per
    anycast address (default: ``model.shares.health_sample``); ``thresholds``: default ``Thresholds()``."""

    def __init__(self, timeline: Timeline, *, min_interval_s: float = 5.0, settle_s: float = 1.0,
                 post: Callable[[Callable[[], None]], object] | None = None, sample_of: SampleOf | None = None,
                 thresholds: Thresholds | None = None, clock: Callable[[], float] = time.monotonic,
                 traffic: Traffic | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from anycast_tui.model.health import HealthTracker

        self.timeline = timeline
        self.min_interval_s = min_interval_s
        self.settle_s = settle_s
        self.post = post or (lambda fn: fn())
        self.sample_of = sample_of
        self.thresholds = thresholds  # None: the defaults
        self.clock = clock
        self.traffic = traffic
        self.wall = wall
        self.tracker = HealthTracker()
        self.report: HealthReport | None = None  # the newest
        self.evaluations = 0  # how many times the checks ran
        self._lock = threading.Lock()
        self._dirty = False
        self._running = False
        self._last = -float("inf")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
        self._pending: list[Future[None]] = []
        self._unsubscribe = timeline.subscribe(self._on_change)
        if timeline.snapshot is not None:  # joined a session that already holds devices (a bus viewer's KV)
            self._kick()

    def _on_change(self, change: Change) -> None:
        from anycast_tui.model.types import EventKind

        if change.before is change.after and all(e.kind in (EventKind.FINDING_RAISED, EventKind.FINDING_CLEARED)
                                                 for e in change.events):
            return  # our own events
        if not change.events and not len(self.tracker) and not self._sampling() and not self._matters(change):
            return  # a poll that changed nothing the checks read (and no connection is being timed)
        self._kick()

    def _kick(self) -> None:
        """Evaluate soon (rate-limited): mark the state dirty and start the worker unless it runs."""
        with self._lock:
            self._dirty = True
            if self._running:
                return
            self._running = True
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(self._work))

    def _sampling(self) -> bool:
        """Is sampled traffic in the window (its shares move without any poll changing)?"""
        return self.traffic is not None and len(self.traffic.window) > 0

    @staticmethod
    def _matters(change: Change) -> bool:
        """A change without events still matters to the checks when a device's health, hash settings, live flows,
        FRR RIB or FRR configuration changed (a seed set to 0 changes no route)."""
        before = change.before.devices if change.before is not None else {}
        after = change.after.devices
        for name in (after if change.touched is None else change.touched):
            st, old = after.get(name), before.get(name)
            if st is None:
                continue
            if old is st:
                continue
            if (old is None or old.health.status is not st.health.status or old.hash != st.hash
                    or old.flows != st.flows or old.rib != st.rib or old.frr_groups != st.frr_groups):
                return True
        return False

    def _work(self) -> None:
        from anycast_tui.model.health import Thresholds, evaluate, finding_events
        from anycast_tui.model.shares import health_sample

        while True:
            # let the poll that brought the change finish (its other devices answer within it): a snapshot
            # half-way through a failure (one spine updated, not the other) is no state worth a finding
            wait = max(self.settle_s, self._last + self.min_interval_s - self.clock())
            if wait > 0:
                time.sleep(wait)
            with self._lock:
                if not self._dirty:
                    self._running = False
                    return
                self._dirty = False
            snap = self.timeline.snapshot
            if snap is None:
                continue
            self._last = self.clock()
            self.evaluations += 1
            try:
                report = evaluate(snap, tracker=self.tracker,
                                  sample_of=self.sample_of if self.sample_of is not None else health_sample,
                                  thresholds=self.thresholds if self.thresholds is not None else Thresholds(),
                                  traffic_of=self._traffic_of())
            except Exception:  # a check's bug must not stop the session; the next change tries again
                logging.getLogger(__name__).exception("health checks failed")
                continue
            events = finding_events(self.report, report)
            self.report = report
            if events:
                self.post(lambda: self.timeline.add(events))

    def _traffic_of(self) -> TrafficOf | None:
        """The sampled flows per anycast prefix in the traffic's window now (``wall()``); None without traffic."""
        traffic = self.traffic
        if traffic is None:
            return None
        now = self.wall()
        return lambda prefix: traffic.flow_set(prefix, now)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the evaluations asked for so far are done (tests, shutdown); False on timeout."""
        from concurrent.futures import wait

        _, not_done = wait(list(self._pending), timeout=timeout)
        return not not_done

    def close(self) -> None:
        self._unsubscribe()
        self._pool.shutdown(wait=False, cancel_futures=True)
