"""The health checks of a live timeline, run off the event loop: on changed polls, coalesced, rate-limited.

Headless (no textual).  ``HealthRunner`` subscribes to a timeline; a change
whose fabric differs from the one before in more than poll times
(``model.views.same_picture``: records, health) marks the report dirty, and
one worker thread evaluates the checks on the timeline's *newest* snapshot —
a burst of device updates (a whole poll cycle) is one evaluation — at most
once every ``min_interval_s`` seconds (default 5).  ``report()`` hands back
the newest ``HealthReport`` (None until the first is in): readers (the
Prometheus exporter's scrape, a view) never run a check themselves.

``evaluate`` is the function over one ``FabricSnapshot``; by default
``model.health.evaluate`` with its own ``model.health.HealthTracker`` (when each
live TCP connection was first seen, for the long-lived TCP rule) carried from
one evaluation to the next (:func:`checks`).  A check that raises leaves the
previous report in place and is logged, the worker goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any, Callable

from anycast_tui.model.health import HealthReport
from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import FabricSnapshot
from anycast_tui.model.views import same_picture

log = logging.getLogger(__name__)
MIN_INTERVAL_S = 5.0

Evaluate = Callable[[FabricSnapshot], HealthReport]


def checks(thresholds: Any = None) -> Evaluate:
    """``model.health.evaluate`` with a memory of live connections across its calls (long-lived TCP), under
    ``thresholds`` (a ``model.health.Thresholds``; default its defaults)."""
    from anycast_tui.model.health import HealthTracker, Thresholds, evaluate

    memory = HealthTracker()
    th = thresholds if thresholds is not None else Thresholds()
    return lambda snap: evaluate(snap, tracker=memory, thresholds=th)


class HealthRunner:
    def __init__(self, timeline: Timeline, evaluate: Evaluate | None = None, *, min_interval_s: float = MIN_INTERVAL_S,
                 on_result: Callable[[HealthReport], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeline = timeline
        self.evaluate = evaluate if evaluate is not None else checks()
        self.min_interval_s = min_interval_s
        self.on_result = on_result
        self.evaluations = 0  # how many times the checks ran
        self.last_duration_s: float | None = None  # wall time of the newest evaluation
        self._clock = clock
        self._report: HealthReport | None = None
        self._lock = threading.Lock()
        self._scheduled = False
        self._last_run: float | None = None
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
        self._pending: list[Future[None]] = []
        self._unsubscribe = timeline.subscribe(self._on_change)
        if timeline.snapshot is not None:
            self._schedule()

    def report(self) -> HealthReport | None:
        """The newest report (None until the first evaluation is done)."""
        return self._report

    def _on_change(self, change: Change) -> None:
        if change.before is not None and same_picture(change.before, change.after):
            return  # only poll times moved: the checks would say the same
        self._schedule()

    def _schedule(self) -> None:
        with self._lock:
            if self._scheduled or self._closed.is_set():
                return
            self._scheduled = True
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._pool.submit(self._run))

    def _run(self) -> None:
        if self._last_run is not None:
            left = self._last_run + self.min_interval_s - self._clock()
            if left > 0 and self._closed.wait(left):
                return
        with self._lock:
            self._scheduled = False  # a change from now on asks for another evaluation
        snap = self.timeline.snapshot
        if snap is None:
            return
        t0 = time.perf_counter()
        self._last_run = self._clock()
        try:
            report = self.evaluate(snap)
        except Exception:  # a check's bug must not stop the worker: the previous report stands
            log.exception("health checks failed")
            return
        self.last_duration_s = time.perf_counter() - t0
        self.evaluations += 1
        self._report = report
        if self.on_result is not None:
            try:
                self.on_result(report)
            except Exception:
                log.exception("health listener failed")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every scheduled evaluation is done (tests, shutdown); False on timeout."""
        _, not_done = wait_all(list(self._pending), timeout=timeout)
        return not not_done

    def close(self) -> None:
        self._unsubscribe()
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
