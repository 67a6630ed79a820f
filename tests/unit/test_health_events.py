"""Health findings as events: appearing and clearing on the timeline of a live session (HealthWatch), recorded,
and the findings open during a time window (what the report lists per incident)."""

from __future__ import annotations

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.health import Finding, HealthReport, Severity, finding_events, open_findings
from anycast_tui.model.types import Event, EventKind
from anycast_tui.record.reader import Recording
from anycast_tui.record.writer import Recorder
from anycast_tui.healthwatch import HealthWatch
from anycast_tui.session import SimSession

T0 = 1_790_000_000_000


def _f(rule: str, subject: str, sev: Severity = Severity.WARNING) -> Finding:
    return Finding(rule, sev, subject, f"{subject} summary", "fix")


def test_finding_events_raise_clear_and_change_severity():
    a = HealthReport(T0, findings=(_f("seed-zero", "spine01"), _f("imbalance", "192.0.2.53/32")))
    b = HealthReport(T0 + 5000, findings=(_f("imbalance", "192.0.2.53/32", Severity.ERROR),
                                          _f("polarized", "leaf01 192.0.2.53/32")))
    got = {(e.kind, e.subject, e.before, e.after) for e in finding_events(a, b)}
    assert got == {(EventKind.FINDING_CLEARED, "seed-zero spine01", "warning", None),
                   (EventKind.FINDING_RAISED, "imbalance 192.0.2.53/32", None, "error"),
                   (EventKind.FINDING_RAISED, "polarized leaf01 192.0.2.53/32", None, "warning")}
    ev = next(e for e in finding_events(a, b) if e.subject.startswith("polarized"))
    assert ev.device == "leaf01" and ev.prefix == "192.0.2.53/32" and ev.time_ms == T0 + 5000
    assert ev.detail == "warning polarized: leaf01 192.0.2.53/32 summary"
    assert finding_events(b, b) == []
    assert [e.kind for e in finding_events(None, a)] == [EventKind.FINDING_RAISED] * 2


def test_open_findings_in_a_window():
    def ev(t: int, kind: EventKind, key: str, sev: str = "warning") -> Event:
        return Event(T0 + t, "x", kind, key, "", after=sev if kind is EventKind.FINDING_RAISED else None)

    events = [ev(0, EventKind.FINDING_RAISED, "a"), ev(10, EventKind.FINDING_CLEARED, "a"),  # before the window
              ev(20, EventKind.FINDING_RAISED, "b", "error"),  # open throughout
              ev(40, EventKind.FINDING_RAISED, "c"), ev(60, EventKind.FINDING_CLEARED, "c"),  # cleared inside
              ev(120, EventKind.FINDING_RAISED, "d")]  # after the window
    assert open_findings(events, T0 + 30, T0 + 100) == [("b", "error", T0 + 20), ("c", "warning", T0 + 40)]
    assert [k for k, _, _ in open_findings(events, T0 + 30, None)] == ["b", "c", "d"]


def test_a_live_session_shows_records_and_clears_a_finding(tmp_path):
    clock = [T0 / 1000]
    sim = SimFabric(clock=lambda: clock[0])
    session = SimSession(sim, clock=lambda: clock[0])
    rec = Recorder(tmp_path / "h.atrec", flush_s=None, clock=lambda: clock[0])
    rec.attach(session.timeline)
    watch = HealthWatch(session.timeline, min_interval_s=0, settle_s=0)

    def poll(seed: int | None = None) -> list[Event]:
        """Change spine01's seed (None: leave it), poll, wait for the checks; the finding events so far."""
        clock[0] += 1
        if seed is not None:
            sim.set_hash("spine01", seed=seed)
        session.poll()
        assert watch.wait(60)
        rec.flush()
        return [e for e in session.timeline.events if e.kind in (EventKind.FINDING_RAISED,
                                                                  EventKind.FINDING_CLEARED)]

    try:
        assert poll() == []
        assert watch.report is not None and watch.report.findings == ()
        runs = watch.evaluations
        assert poll() == [] and watch.evaluations == runs  # a poll that changed nothing: no evaluation
        assert [(e.kind, e.subject, e.after) for e in poll(0)] == [
            (EventKind.FINDING_RAISED, "seed-zero spine01", "warning")]
        assert [(e.kind, e.subject) for e in poll(12345)][1:] == [(EventKind.FINDING_CLEARED, "seed-zero spine01")]
    finally:
        watch.close()
        rec.close()
    with Recording.open(tmp_path / "h.atrec") as r:
        kinds = [(e.kind, e.subject) for e in r.events if e.kind in (EventKind.FINDING_RAISED,
                                                                     EventKind.FINDING_CLEARED)]
        assert kinds == [(EventKind.FINDING_RAISED, "seed-zero spine01"),
                         (EventKind.FINDING_CLEARED, "seed-zero spine01")]
        # raised at the third poll (+3 s), cleared at the fourth (+4 s)
        assert [k for k, _, _ in open_findings(list(r.events), T0 + 2500, T0 + 3500)] == ["seed-zero spine01"]
        assert open_findings(list(r.events), T0 + 4500, None) == []


def test_the_report_lists_the_findings_open_during_each_incident(tmp_path):
    """leaf03 fails (an incident) while spine01 hashes with seed 0: both findings open during it, in the report's
    JSON and Markdown.  The checks run after each whole poll here (the HealthWatch's settle time, made exact)."""
    from anycast_tui.model.health import evaluate
    from anycast_tui.record.live import incident_tracker
    from anycast_tui.record.report import report, report_json

    clock = [T0 / 1000]
    sim = SimFabric(clock=lambda: clock[0])
    session = SimSession(sim, clock=lambda: clock[0])
    rec = Recorder(tmp_path / "r.atrec", flush_s=None, clock=lambda: clock[0])
    rec.attach(session.timeline)
    incidents = incident_tracker(session.timeline, rec)
    last = None
    try:
        for action in (lambda: sim.set_hash("spine01", seed=0), lambda: None, lambda: sim.fail_device("leaf03"),
                       lambda: None, lambda: sim.restore_device("leaf03"), lambda: None):
            clock[0] += 1
            action()
            session.poll()
            now = evaluate(session.timeline.snapshot)
            session.timeline.add(finding_events(last, now))
            last = now
            assert incidents.wait(120)
            rec.flush()
    finally:
        incidents.close()
        rec.close()
    with Recording.open(tmp_path / "r.atrec") as r:
        doc = report_json(r)
        (inc,) = [i for i in doc["incidents"] if "leaf03" in i["cause"]]
        assert [(f["finding"], f["severity"]) for f in inc["findings"]] == [
            ("device-not-answering leaf03", "error"), ("seed-zero spine01", "warning")]
        md = report(r, fmt="md")
    assert "Health finding open during the incident" in md and "device-not-answering leaf03" in md


def test_checks_attached_to_a_session_that_already_holds_devices_run_without_waiting_for_a_change():
    """A bus viewer holds every device from KV before its health checks attach, and a quiet fabric then
    changes nothing: the checks still run once, on what is there (findings, Health view, metrics)."""
    clock = [T0 / 1000]
    sim = SimFabric(clock=lambda: clock[0])
    sim.set_hash("spine01", seed=0)
    session = SimSession(sim, clock=lambda: clock[0])
    session.poll()  # the devices are in before the checks attach
    watch = HealthWatch(session.timeline, min_interval_s=0, settle_s=0)
    try:
        assert watch.wait(60)
        assert watch.report is not None and watch.evaluations == 1
        assert [f.subject for f in watch.report.findings if f.rule == "seed-zero"] == ["spine01"]
    finally:
        watch.close()
