"""Postmortem report of a recording: incidents as the monitor recorded them (leaf03 fails and comes back on
the simulated fabric, recorded by the real Recorder with the session's incident tracker), measured and
estimated impact apart, worst incident by impact, anycast timeline, placement quality, table of contents,
versioned strict JSON, self-contained HTML, scrub; and device text kept as data in Markdown."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_helpers import T0, Clock, record_session  # noqa: E402

from anycast_tui.lab.sim import SimFabric  # noqa: E402
from anycast_tui.model.incident_impact import IncidentImpact, ImpactCounts, LiveCounts, PhaseImpact  # noqa: E402
from anycast_tui.model.incidents import Incident, IncidentKind  # noqa: E402
from anycast_tui.model.timeline import Timeline  # noqa: E402
from anycast_tui.model.types import Event, EventKind, Flow  # noqa: E402
from anycast_tui.record import incidentlog  # noqa: E402
from anycast_tui.record.live import incident_tracker  # noqa: E402
from anycast_tui.record.report import build, ecmp_rows, md_text, report  # noqa: E402
from anycast_tui.record.reader import Recording  # noqa: E402
from anycast_tui.record.writer import Recorder  # noqa: E402

ANYCAST = "192.0.2.53"
FAIL_AT, RESTORE_AT, TICKS = 3, 8, 13
N_TCP, N_UDP = 40, 20


def _live_flows() -> tuple[Flow, ...]:
    """Connections the servers report alive (what ss / conntrack would show): 40 TCP, 20 UDP clients."""
    return tuple(Flow(6, f"203.0.113.{1 + i}", 40000 + i, ANYCAST, 53) for i in range(N_TCP)) + \
        tuple(Flow(17, f"203.0.113.{101 + i}", 50000 + i, ANYCAST, 53) for i in range(N_UDP))


def record_incidents(path: Path, *, seed0: str = "leaf04") -> Path:
    """The demo's scenario recorded tick by tick with the live session's incident tracker: leaf03 fails at
    tick FAIL_AT and comes back at RESTORE_AT; server01 reports live flows (conntrack); ``seed0`` has hash
    seed 0 (placement unknown)."""
    clock = Clock()
    sim = SimFabric(clock=clock)
    timeline = Timeline(anycast_prefixes=(f"{ANYCAST}/32",), clock=clock)
    rec = Recorder(path, flush_s=None, clock=clock)
    rec.attach(timeline)
    tracker = incident_tracker(timeline, rec)
    flows = _live_flows()
    for i in range(TICKS):
        if i == FAIL_AT:
            sim.fail_device("leaf03")
        if i == RESTORE_AT:
            sim.restore_device("leaf03")
        for k, name in enumerate(sim.devices):
            st = sim.device_state(name, clock.ms - 40 + k)
            if name == "server01":
                st = dataclasses.replace(st, flows=flows, flows_udp_known=True)
            if name == seed0:
                st = dataclasses.replace(st, hash=dataclasses.replace(st.hash, seed=0))
            timeline.update(st)
        assert tracker.wait(60)
        rec.flush()
        clock.ms += 1000
    tracker.close()
    rec.close()
    return path


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    return record_incidents(tmp_path_factory.mktemp("report") / "s.atrec")


@pytest.fixture(scope="module")
def rec(path):
    with Recording.open(path) as r:
        yield r


@pytest.fixture(scope="module")
def stored(rec):
    incs, recorded = incidentlog.of_recording(rec)
    assert recorded, "the session recorded its incidents"
    return incs


def _leaf03(incs):
    return [ri for ri in incs if ri.incident.kind is IncidentKind.FAILURE and "leaf03" in ri.incident.cause]


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


# --------------------------------------------------------------------------- JSON


def test_json_has_the_one_leaf03_failure_with_the_recorded_numbers(rec, stored):
    data = json.loads(report(rec, fmt="json"), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert data["schema"] == 1 and data["recorded"] is True
    assert set(data["window"]) >= {"start", "end"} and data["window"]["start"] < data["window"]["end"]
    failures = [i for i in data["incidents"] if i["kind"] == "failure" and "leaf03" in i["cause"]]
    assert len(failures) == 1
    inc = failures[0]
    assert inc["servers_lost"] == ["server03"]
    assert inc["recorded"] is True and "leaf03" in inc["devices"]
    (ri,) = _leaf03(stored)
    onset, restore = ri.impact.onset, ri.impact.restore
    # the numbers the monitor showed, unchanged
    assert inc["impact"]["estimated"] == dataclasses.asdict(onset.estimated)
    assert inc["impact"]["live"]["tcp_reset"] == onset.live.tcp_reset
    assert inc["impact"]["live"]["udp_moved"] == onset.live.udp_moved
    assert inc["impact"]["live"]["connections"] == onset.live.connections == N_TCP + N_UDP
    assert inc["restore_impact"]["estimated"] == dataclasses.asdict(restore.estimated)
    # and they are what the fabric did: server03's flows had to move, nothing moved onto it
    est = inc["impact"]["estimated"]
    assert est["flows"] == 10_000 and 0 < est["moved"] == est["tcp_reset"] + est["udp_moved"]
    assert est["moved"] >= 10_000 // 4 * 0.8  # a quarter of the hash space answered by server03
    moved_from = {a for a, _b, _n in inc["impact"]["servers"]}
    assert "server03" in moved_from and all(b != "server03" for _a, b, _n in inc["impact"]["servers"])
    assert 0 < inc["impact"]["live"]["tcp_reset"] <= N_TCP and inc["impact"]["live"]["udp_moved"] <= N_UDP
    assert inc["start"].startswith("20") and (inc["end"] is None or inc["end"] >= inc["start"])


def test_json_schema_shape(rec):
    data = json.loads(report(rec, fmt="json"))
    assert set(data) >= {"schema", "window", "incidents", "recorded"}
    for inc in data["incidents"]:
        assert set(inc) >= {"id", "start", "end", "cause", "devices", "servers_lost", "impact", "restore_impact",
                            "recorded"}
        for phase in (inc["impact"], inc["restore_impact"]):
            if phase is None:
                continue
            assert set(phase["estimated"]) == {"flows", "moved", "tcp_reset", "udp_moved", "collateral"}
            assert phase["live"] is None or set(phase["live"]) >= {"tcp_reset", "udp_moved", "connections"}


def test_json_of_an_older_recording_says_rebuilt(tmp_path):
    r = record_session(tmp_path / "old.atrec", ticks=12)  # no incident tracker: no incident notes
    with Recording.open(r.path) as rec:
        data = json.loads(report(rec, fmt="json"))
        md = report(rec)
    assert data["recorded"] is False and data["incidents"] and all(i["recorded"] is False for i in data["incidents"])
    assert all(i["impact"]["live"] is None for i in data["incidents"] if i["impact"])  # no live source
    assert "rebuilt from the recording's ticks" in md
    assert "no device reported live connections" in md


# --------------------------------------------------------------------------- Markdown


def test_markdown_summary_and_incidents_table_show_the_recorded_numbers(rec, stored):
    md = report(rec)
    (ri,) = _leaf03(stored)
    onset = ri.impact.onset
    summary = _section(md, "Summary")
    phases = [p for r in stored if r.impact for p in (r.impact.onset, r.impact.restore) if p is not None]
    lives = [p.live for p in phases if p.live is not None]
    assert (f"{sum(lv.tcp_reset for lv in lives):,} TCP resets, {sum(lv.udp_moved for lv in lives):,} UDP moves, "
            f"measured on {sum(lv.connections for lv in lives):,} live connections") in summary
    assert f"{sum(p.estimated.moved for p in phases):,} flows moved" in summary
    assert "estimated from 10,000 synthetic flows" in summary
    assert "ingress assumed" in summary  # the simulated fabric has no client-facing router
    assert f"Incidents | {len(stored)}" in summary
    table = _section(md, "Incidents")
    rows = {_cells(line)[0]: _cells(line) for line in table.splitlines() if line.startswith("| \\#")}
    row = rows[f"\\#{ri.incident.id}"]
    assert row[1] == "failure" and "leaf03" in row[5] and row[6].startswith("server03 (1 of 4 servers")
    assert f"{onset.live.tcp_reset:,} TCP reset" in row[7] and f"{onset.estimated.moved:,} moved" in row[8]
    assert row[3] == "open" if ri.incident.end_ms is None else row[3].startswith("20")
    # chronological, whatever their impact
    ids = [int(k[2:]) for k in rows]
    starts = {r.incident.id: r.incident.start_ms for r in stored}
    assert [starts[i] for i in ids] == sorted(starts[i] for i in ids) and len(ids) == len(stored)


def test_incident_detail_shows_its_events_matrix_and_changed_groups(rec, stored):
    md = report(rec)
    (ri,) = _leaf03(stored)
    sec = md.split(f'<a id="incident-{ri.incident.id}"></a>', 1)[1].split('<a id="incident-', 1)[0]
    for e in ri.incident.events:
        assert "| onset | " in sec and md_text(e.detail) in sec
    for e in ri.incident.restore_events:
        assert md_text(e.detail) in sec
    for a, b, n in ri.impact.onset.matrix:
        assert f"| {a} | {b} | {n:,} |" in sec
    # the spines' groups for the anycast prefix lose leaf03's next hop, then get it back
    pics = re.findall(r"Picture \d+: incident \d+, (onset|restore)", sec)
    assert pics == ["onset", "restore"]
    onset_pic = sec.split("Picture", 2)[1]
    assert re.search(r"\| spine01 \| before \| via \S+ dev swp3 \| 1 \| 25\.0% \|", onset_pic)
    assert not re.search(r"\| spine01 \| after \| via \S+ dev swp3", onset_pic)
    assert "| leaf01 |" not in onset_pic  # unchanged groups are not pictured
    assert "unchanged from picture" not in md


def test_worst_incident_by_live_resets_then_estimated_moved_not_poll_order(tmp_path):
    """Three incidents: the middle one reset the most live TCP connections although another moved more
    synthetic flows; it is the worst.  Without live counts, estimated moved decides."""
    def phase(moved, live_tcp):
        return PhaseImpact(ImpactCounts(10_000, moved, moved // 2, moved - moved // 2, 0),
                           None if live_tcp is None else LiveCounts(100, live_tcp, 0, 0), (), ("s1", "s2"), (), (),
                           "", False, "10,000 synthetic flows")

    def note(iid, start, cause, moved, live_tcp):
        ev = Event(start, "leaf0%d" % iid, EventKind.DEVICE_UNREACHABLE, "x", f"{cause} unreachable")
        inc = Incident(iid, IncidentKind.FAILURE, start, start + 1000, cause, (f"leaf0{iid}",), (f"{ANYCAST}/32",),
                       (ev,))
        return incidentlog.to_json(inc, IncidentImpact(iid, phase(moved, live_tcp), None))

    for live, worst in (((0, 9, 3), "second"), ((None, None, None), "first")):
        clock = Clock()
        tl = Timeline(anycast_prefixes=(f"{ANYCAST}/32",), clock=clock)
        p = tmp_path / f"w{worst}.atrec"
        rec = Recorder(p, flush_s=None, clock=clock)
        rec.attach(tl)
        tl.apply(SimFabric().snapshot(T0))
        rec.record_incident(note(1, T0 + 100, "first", 5000, live[0]))
        rec.record_incident(note(2, T0 + 200, "second", 100, live[1]))
        rec.record_incident(note(3, T0 + 300, "third", 3000, live[2]))
        clock.ms += 1000
        tl.apply(SimFabric().snapshot(T0 + 1000))
        rec.close()
        with Recording.open(p) as r:
            md = report(r)
            data = json.loads(report(r, fmt="json"))
        line = next(x for x in md.splitlines() if x.startswith("| Worst incident"))
        assert f": {worst} —" in line
        assert data["worst_incident"] == {"first": 1, "second": 2}[worst]


def test_timeline_is_anycast_only_unless_all(rec, stored):
    full = report(rec)  # library default: every event
    anycast = report(rec, all_events=False)
    rows_all = [_cells(x) for x in _section(full, "Timeline").splitlines() if x.startswith("| 20")]
    rows_any = [_cells(x) for x in _section(anycast, "Timeline").splitlines() if x.startswith("| 20")]
    assert len(rows_all) == len(rec.events) > len(rows_any) > 0
    in_incident = {md_text(e.detail) for r in stored for e in r.incident.all_events}
    health = {"device\\_unreachable", "device\\_back", "link\\_down", "link\\_up"}
    for row in rows_any:
        assert f"{ANYCAST}/32" in row[3] or row[2] in health or row[3] in in_incident, row
    assert f"{len(rows_any)} of {len(rows_all)} events (--all shows every event)" in anycast


def test_placement_quality_per_device(rec):
    md = report(rec)
    rows = {_cells(x)[0]: _cells(x) for x in _section(md, "Placement quality").splitlines()
            if x.startswith("| ") and not x.startswith("| Device")}
    assert rows["leaf04"][2] == "unknown" and "seed" in rows["leaf04"][3]  # seed 0: the kernel's random key
    assert rows["spine01"][2] == "exact" and rows["spine01"][3] == ""
    assert len(rows) == 10


def test_table_of_contents_links_every_section(rec, stored):
    md = report(rec)
    out = report(rec, fmt="html")
    targets = re.findall(r"\]\(#([\w-]+)\)", md.split("## Summary", 1)[0])
    assert {"summary", "incidents", "placement", "timeline"} <= set(targets)
    assert {f"incident-{r.incident.id}" for r in stored} <= set(targets)
    for t in targets:
        assert f'<a id="{t}"></a>' in md and f'id="{t}"' in out and f'href="#{t}"' in out
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    for t in targets:  # the anchors survive rendering, and the headings after them are headings
        assert f'<a id="{t}"></a>' in rendered and f'<a href="#{t}">' in rendered
    assert "<h2>Summary</h2>" in rendered and "<h2>Timeline</h2>" in rendered
    assert rendered.count("<h3>Incident ") == len(stored)


def test_html_is_self_contained(rec):
    out = report(rec, fmt="html")
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    # nothing fetched from elsewhere (references inside the page, url(#id), are fine)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)|<link|@import|@font-face|url\((?!["']?#)|https?://[^\s"<]*\.(woff|css|js)""",
                         out)
    pictures = [b for b in build(rec) if b.kind == "groups"]
    assert pictures and out.count("<svg") == out.count("<figure") == len(pictures)
    for e in rec.events[:20]:
        assert html.escape(e.detail) in out


def test_scrubbed_report_keeps_no_name_or_address(rec):
    for fmt in ("md", "json"):
        text = report(rec, scrub=True, fmt=fmt)
        for name in rec.state_at(rec.window[1]).devices:
            assert not re.search(rf"(?<![\w-]){name}(?![\w-])", text), (fmt, name)
        for addr in (ANYCAST, "198.19.0.3", "2001:db8:53::53", "203.0.113.1"):
            assert addr not in text, (fmt, addr)


def test_ecmp_rows_plain_route(rec):
    state = rec.state_at(rec.window[0]).devices["leaf01"]
    route = next(r for r in state.routes if r.multipath)
    rows = ecmp_rows(state, route.dst)
    assert len(rows) == len(route.nexthops)
    assert sum(float(r[2].rstrip("%")) for r in rows) == pytest.approx(100, abs=0.2)


def test_events_coalesced_into_the_first_tick_are_reported(tmp_path):
    sim = SimFabric()
    tl = Timeline()
    rec = Recorder(tmp_path / "c.atrec", flush_s=None)
    rec.attach(tl)
    tl.apply(sim.snapshot(1_790_000_000_000))
    sim.fail_device("leaf02")
    tl.apply(sim.snapshot(1_790_000_000_500))
    for name in sim.devices:  # a later per-device update: the one tick's time is after the events
        tl.update(sim.device_state(name, 1_790_000_000_900))
    rec.close()
    with Recording.open(tmp_path / "c.atrec") as r:
        assert len(r.ticks()) == 1 and r.events and r.events[0].time_ms < r.window[0]
        md = report(r)
    assert len([line for line in _section(md, "Timeline").splitlines() if line.startswith("| 20")]) == len(r.events)


# --------------------------------------------------------------------------- device text is data

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "**bold** _em_ `code`",
           "[click](javascript:alert(3))", "line one\n# injected heading\n<b>x</b>", "a | b | c",
           "&lt;entity&gt; &amp;", "![pic](http://evil.example/x.png)", "<https://evil.example>",
           "- list\n1. item\n    indented code", "\\<i>escaped\\</i>", "x\r\n<u>cr</u>\u2028<s>ls</s>"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def _hostile_recording(tmp_path: Path) -> Path:
    """A recording whose device-supplied strings (device and interface names, event details, the cause and
    restore lines, servers) are markup; the incident note is what a tracker would have stored."""
    clock = Clock()
    tl = Timeline(anycast_prefixes=(f"{ANYCAST}/32",), clock=clock)
    p = tmp_path / "hostile.atrec"
    rec = Recorder(p, flush_s=None, clock=clock)
    rec.attach(tl)
    tl.apply(SimFabric().snapshot(T0))
    evs = tuple(Event(T0 + 10 + k, h, EventKind.LINK_DOWN, h, h, prefix=f"{ANYCAST}/32") for k, h in enumerate(HOSTILE))
    est = ImpactCounts(10_000, 10, 5, 5, 0)
    ph = PhaseImpact(est, LiveCounts(3, 1, None, 0), tuple((h, HOSTILE[-1 - k], 1) for k, h in enumerate(HOSTILE)),
                     tuple(HOSTILE), tuple(HOSTILE[:2]), (), HOSTILE[4], True, "10,000 synthetic flows")
    inc = Incident(1, IncidentKind.FAILURE, T0 + 10, None, " / ".join(HOSTILE), tuple(HOSTILE), (f"{ANYCAST}/32",),
                   evs, evs[:2], HOSTILE[1])
    rec.record_incident(incidentlog.to_json(inc, IncidentImpact(1, ph, ph)))
    rec.record_sampled({"prefixes": {f"{ANYCAST}/32": {"flows": 3, "pps": 1.5, "rate": HOSTILE[6], "window_s": 300}},
                        "agents": {h: {"datagrams": 1, "samples": 2, "malformed": 1, "last_reason": HOSTILE[-1 - k]}
                                   for k, h in enumerate(HOSTILE)},
                        "placement": {h: {"compared": 2, "agreed": 1, "exact": True,
                                          "disagreements": [[T0 / 1000, HOSTILE[-1 - k], h, HOSTILE[k - 1]]]}
                                      for k, h in enumerate(HOSTILE)}})
    clock.ms += 1000
    tl.apply(SimFabric().snapshot(T0 + 1000))
    rec.close()
    return p


def test_sampled_traffic_section_from_the_newest_summary(tmp_path):
    p = _hostile_recording(tmp_path)
    with Recording.open(p) as rec:
        md = report(rec, all_events=True)
    sec = _section(md, "Sampled traffic")
    assert "| Device | Model | Samples agreeing | Agreement |" in sec
    assert "| 1 of 2 | 50.0 % |" in sec and "1 / " not in sec.split("Exporter")[0]


def test_device_text_is_never_markup_in_markdown(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    p = _hostile_recording(tmp_path)
    with Recording.open(p) as rec:
        md = report(rec, all_events=True)
    # a CommonMark renderer with raw HTML on and tables (GFM) on: the worst case for a reader
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    parser = _Tags()
    parser.feed(rendered)
    allowed = {"h1", "h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "a", "strong"}
    for tag, attrs in parser.tags:
        assert tag in allowed, (tag, attrs)
        for k, v in attrs:  # our anchors and table-of-contents links only; th/td alignment is markdown-it's
            assert (tag, k) in {("a", "id"), ("a", "href"), ("th", "style"), ("td", "style")}, (tag, k, v)
            assert k != "href" or re.fullmatch(r"#[\w-]+", v), v
    assert [t for t, _ in parser.tags].count("h1") == 1  # no heading from a newline in device text
    assert [t for t, _ in parser.tags].count("strong") == 1  # "Contents"
    text = "".join(parser.text)
    for h in HOSTILE:  # every string shows as the text it is (line breaks folded into spaces)
        assert " ".join(h.splitlines()) in text, h


def test_device_text_is_escaped_in_html(tmp_path):
    p = _hostile_recording(tmp_path)
    with Recording.open(p) as rec:
        out = report(rec, fmt="html")
    parser = _Tags()
    parser.feed(out.split("<body>", 1)[1])
    svg_free = re.sub(r"<svg.*?</svg>", "", out, flags=re.S)
    assert "<script" not in svg_free and "<img" not in svg_free and "<b>" not in svg_free
    assert "javascript:" not in "".join(v or "" for _t, attrs in parser.tags for _k, v in attrs)


def test_md_text_keeps_cells_and_headings_on_one_line():
    for h in HOSTILE:
        s = md_text(h)
        assert "\n" not in s and "\r" not in s and "\u2028" not in s
        assert not re.search(r"(?<!\\)[|<>`*_\[\]&]", s.replace("\\\\", "")), s

