"""The panels' view data over the simulator's state through the real parsers (no app, no network)."""

from __future__ import annotations

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import Event, EventKind, HealthStatus, Nexthop
from anycast_tui.session import SimSession
from anycast_tui.ui import view

P = "192.0.2.53/32"
T0 = 1_764_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _session(**cfg) -> tuple[SimSession, Clock]:
    clock = Clock()
    s = SimSession(SimFabric(SimConfig(**cfg), clock=clock), clock=clock)
    s.poll()
    return s, clock


def _groups(s: SimSession) -> dict[str, view.GroupView]:
    return {g.device: g for g in view.group_views(s.timeline.snapshot, [P])}


def test_resilient_groups_show_bucket_counts_and_only_the_failed_members_buckets_move():
    s, clock = _session(resilient=True, servers_per_leaf=2)
    g = _groups(s)["spine01"]
    assert g.kind == "resilient group 200 (32 buckets)"
    assert [(h.neighbour, h.buckets) for h in g.hops] == [("leaf01", 8), ("leaf02", 8), ("leaf03", 8), ("leaf04", 8)]
    s.sim.fail_device("leaf03")
    clock.t += 1
    s.poll()
    g = _groups(s)["spine01"]
    counts = {h.neighbour: h.buckets for h in g.hops}
    assert set(counts) == {"leaf01", "leaf02", "leaf04"}
    assert sum(counts.values()) == 32 and all(c > 8 for c in counts.values())
    moved = [e for e in s.timeline.events
             if e.kind is EventKind.BUCKETS_CHANGED and e.device == "spine01" and e.subject == "group 200"]
    assert len(moved) == 1 and moved[0].detail.endswith("8 of 32 buckets moved")
    assert view.concerns(moved[0], [P])


def test_multipath_leaves_servers_and_neighbour_names():
    s, clock = _session(servers_per_leaf=2)
    g = _groups(s)
    assert g["leaf01"].kind == "multipath"
    assert [h.neighbour for h in g["leaf01"].hops] == ["server01", "server02"]
    assert all(h.buckets is None and h.usable for h in g["leaf01"].hops)
    assert g["server01"].kind == "local address" and g["server01"].hops == ()
    s.sim.withdraw("server02")
    clock.t += 1
    s.poll()
    g = _groups(s)
    assert g["leaf01"].kind == "single path" and [h.neighbour for h in g["leaf01"].hops] == ["server01"]
    assert g["server02"].kind == "local address"  # withdrawn from BGP, the address stays on the server


def test_device_rows_by_role_with_health_words_and_ages():
    s, clock = _session()
    s.sim.fail_device("leaf02")
    clock.t += 2.5
    s.poll()
    rows = view.device_rows(s.timeline.snapshot, int((clock.t + 0.5) * 1000))
    assert [r.role.value for r in rows][:3] == ["spine", "spine", "leaf"]
    leaf02 = next(r for r in rows if r.name == "leaf02")
    assert leaf02.status is HealthStatus.STALE and leaf02.glyph == "!"
    assert leaf02.word == "stale since 16:00:02: leaf02: connection refused"
    assert leaf02.age == "3.0s"  # since its last good poll at T0
    spine = rows[0]
    assert (spine.glyph, spine.word, spine.age) == ("✓", "ok", "0.5s")
    assert spine.hash.startswith("L4 seed ")
    assert view.hash_summary(rows) == f"L4, {len(rows)} different seeds"


def test_event_text_names_the_neighbour_and_shortens_on_demand():
    nh = Nexthop("198.19.0.5", "swp3")
    ev = Event(0, "spine01", EventKind.NEXTHOP_REMOVED, P,
               f"spine01 {P}: next hop via 198.19.0.5 dev swp3 removed (4→3-way)", prefix=P, nexthop=nh)
    owners = {"198.19.0.5": "leaf03"}
    assert view.event_text(ev) == f"{P}: next hop via 198.19.0.5 dev swp3 removed (4→3-way)"
    assert view.event_text(ev, owners) == f"{P}: next hop leaf03 (via 198.19.0.5 dev swp3) removed (4→3-way)"
    assert view.event_text(ev, owners, short=True, known=[P]) == "next hop leaf03 removed (4→3-way)"
    assert view.event_text(ev, owners, short=True) == f"{P}: next hop leaf03 removed (4→3-way)"
    assert view.event_text(ev, owners, known=[P]) == "next hop leaf03 (via 198.19.0.5 dev swp3) removed (4→3-way)"
    assert view.event_line(ev) == f"00:00:00.000 − spine01 {P}: next hop via 198.19.0.5 dev swp3 removed (4→3-way)"


def test_times_and_ages():
    assert view.hms(1_764_000_002_345) == "16:00:02.345" and view.hms(None) == "--:--:--.---"
    assert [view.age(10_000, t) for t in (9_600, 0, -110_000, -7_190_000, None)] == ["0.4s", "10s", "2m", "2h", "-"]
    assert view.age_seconds("2m") == 120 and view.age_seconds("-") == float("inf")


def test_impact_tracker_counts_the_flows_a_leaf_failure_moves():
    from anycast_tui.impacttracker import ImpactTracker

    s, clock = _session()
    clock.t += 1
    s.poll()
    tracker = ImpactTracker(s.timeline, n_flows=3000)
    try:
        s.sim.fail_device("leaf03")
        clock.t += 1
        s.poll()
        assert tracker.wait(60)
        removed = [e for e in s.timeline.events if e.kind is EventKind.NEXTHOP_REMOVED and e.prefix == P]
        assert {e.device for e in removed} == {"spine01", "spine02"}
        for e in removed:
            c = tracker.counts(e)
            assert c is not None and c["flows"] == 3000
            # Hash-threshold 4→3 without the third next hop moves 1/12 + 1/4 = 1/3 of the flows entering
            # at this spine (half of them): about 500, split between TCP (reset) and UDP (continue).
            assert 350 < c["moved"] < 650 and c["moved"] == c["tcp_reset"] + c["udp"]
        others = [e for e in s.timeline.events if e.prefix != P]
        assert others and all(tracker.counts(e) is None for e in others)  # only anycast events are weighed
        text = view.impact_text(tracker.counts(removed[0]))
        assert text.startswith(f"{tracker.counts(removed[0])['moved']}/3000 flows moved: ")
    finally:
        tracker.close()


def test_event_feed_sees_each_event_once_even_when_the_timeline_drops_old_ones():
    from anycast_tui.model.timeline import Timeline
    from anycast_tui.model.types import FabricSnapshot

    def ev(i: int, prefix: str | None) -> Event:
        return Event(i, "spine01", EventKind.NEXTHOP_REMOVED if i % 2 else EventKind.NEXTHOP_ADDED, "x",
                     f"spine01 event {i}", prefix=prefix)

    tl = Timeline(anycast_prefixes=(P,), max_events=5)
    feed = view.EventFeed([P], keep=3)
    batches = [[ev(0, P), ev(1, "10.0.0.0/8")], [], [ev(2, P), ev(3, P), ev(4, None), ev(5, P), ev(6, P)]]
    tl.apply(FabricSnapshot(0, {}))  # a first snapshot (no device, no event): events can be added to it
    for batch in batches:
        tl.add(batch)  # events as a diff would hand them over
        feed.pull(tl.events, tl.dropped_events)
    assert tl.dropped_events == 2  # the timeline kept only 5
    assert feed.total == 7 and feed.relevant_total == 5
    assert [e.time_ms for e in feed.all] == [4, 5, 6] and [e.time_ms for e in feed.relevant] == [3, 5, 6]
    assert (feed.removed, feed.added) == (3, 4)
    assert not feed.pull(tl.events, tl.dropped_events)  # nothing new


def test_device_text_never_breaks_a_headless_line_nor_reaches_the_terminal_raw():
    from anycast_tui.model.types import Event, EventKind
    from anycast_tui.ui.view import event_line, health_line, safe

    hostile = "swp1\n12:00:00.000 ✓ spine09 reachable again\x1b[2J\x07\x85"
    ev = Event(1_790_000_000_000, "leaf01", EventKind.LINK_DOWN, hostile, f"leaf01 {hostile} down (no carrier)")
    line = event_line(ev)
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line and "\x85" not in line
    assert "swp1\\n12:00:00.000" in line and "\\x1b[2J" in line  # shown, as data
    from anycast_tui.model.types import Health, HealthStatus

    h = Health(HealthStatus.ERROR, since_ms=1_790_000_000_000, error="refused\nFAKE LINE")
    got = health_line("leaf\n01", None, h, 0)
    assert got is not None and "\n" not in got and "leaf\\n01 not answering: refused\\nFAKE LINE" in got
    assert safe("plain text, ünïcode ✓") == "plain text, ünïcode ✓"


def test_the_record_daemons_log_lines_escape_device_text():
    import io
    import logging

    from anycast_tui.safetext import SafeFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test.safetext")
    log.addHandler(handler)
    log.propagate = False
    log.warning("leaf01: %s", "refused\n2026-01-01 INFO fake line\x1b]0;title\x07")
    assert out.getvalue() == "WARNING leaf01: refused\\n2026-01-01 INFO fake line\\x1b]0;title\\x07\n"


def test_placement_column_shows_the_check_against_sampled_traffic_and_the_disagreements_escaped():
    from anycast_tui.model.placement_check import DeviceAgreement, Disagreement

    s, clock = _session()
    hostile = "udp 203.0.113.7:1 → 192.0.2.53:53\n[red]x"
    checked = {"spine01": DeviceAgreement("spine01", 3210, 3210, True),
               "leaf01": DeviceAgreement("leaf01", 880, 628, False,
                                         (Disagreement(1.0, hostile, "swp2", "swp1\x1b[2J"),))}
    rows = {r.name: r for r in view.device_rows(s.timeline.snapshot, 0, checked=checked)}
    assert rows["spine01"].placement_text == "= 100 % of 3,210"
    assert rows["leaf01"].placement_text == "≈ 71.4 % of 880"
    assert rows["spine02"].placement_text == "= exact"  # no samples: the model's own word
    (line,) = view.disagreement_lines(list(rows.values()))
    assert line.startswith("leaf01: 252 of 880 sampled packets left elsewhere than predicted")
    assert "\n" not in line and "\x1b" not in line  # device text is data: one line, no terminal escapes
