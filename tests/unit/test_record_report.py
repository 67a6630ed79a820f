"""Postmortem report: every event, its moved-flow counts, ECMP before/after, self-contained HTML, scrub."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_helpers import record_session  # noqa: E402

from anycast_tui.record.impactsum import FlowImpact  # noqa: E402
from anycast_tui.record.report import build, ecmp_rows, report  # noqa: E402
from anycast_tui.record.store import Recording  # noqa: E402


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    r = record_session(tmp_path_factory.mktemp("report") / "s.atrec", ticks=14, impact=FlowImpact(n_flows=1000))
    with Recording.open(r.path) as rec:
        yield rec


def test_markdown_has_every_event_with_its_moved_flows(rec):
    md = report(rec)
    impacts = rec.impacts()
    assert impacts, "the scripted session moves flows"
    rows = [line for line in md.splitlines() if line.startswith("| 20")]
    assert len(rows) == len(rec.events)
    for i, e in enumerate(rec.events):
        cells = [c.strip() for c in rows[i].strip("|").split(" | ")]
        assert cells[3] == e.detail.replace("|", "\\|")
        if i in impacts:
            assert cells[4:7] == [str(impacts[i]["moved"]), str(impacts[i]["tcp_reset"]), str(impacts[i]["udp"])]
    assert "## Summary" in md and "Worst event (TCP resets)" in md
    worst = max(impacts.values(), key=lambda s: s["tcp_reset"])
    assert f"{worst['tcp_reset']} TCP resets" in md
    assert "Before: next hop" in md and "buckets)" in md  # resilient bucket shares before/after


def test_window_selects_events(rec):
    w = rec.window
    mid = (w[0] + w[1]) // 2
    md = report(rec, t0=mid)
    n = sum(1 for e in rec.events if e.time_ms >= mid)
    assert len([line for line in md.splitlines() if line.startswith("| 20")]) == n


def test_html_is_self_contained(rec):
    out = report(rec, fmt="html")
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    # nothing fetched from elsewhere (references inside the page, url(#id), are fine)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)|<link|@import|@font-face|url\((?!["']?#)|https?://[^\s"<]*\.(woff|css|js)""",
                         out)
    blocks = build(rec)
    pictures = [b for b in blocks if b.kind == "groups"]
    same = [b for b in blocks if b.kind == "p" and b.text.startswith("Groups view: unchanged from picture")]
    assert pictures and len(pictures) + len(same) >= len([e for e in rec.events if e.prefix])
    assert out.count("<svg") == out.count("<figure") == len(pictures)
    for e in rec.events[:20]:
        assert html.escape(e.detail) in out


def test_scrubbed_report_keeps_no_name_or_address(rec):
    md = report(rec, scrub=True)
    for name in rec.state_at(rec.window[1]).devices:
        assert not re.search(rf"(?<![\w-]){name}(?![\w-])", md), name
    for addr in ("192.0.2.53", "198.19.0.3", "2001:db8:53::53"):
        assert addr not in md
    assert len([line for line in md.splitlines() if line.startswith("| 20")]) == len(rec.events)


def test_ecmp_rows_plain_route(rec):
    state = rec.state_at(rec.window[0]).devices["leaf01"]
    route = next(r for r in state.routes if r.multipath)
    rows = ecmp_rows(state, route.dst)
    assert len(rows) == len(route.nexthops)
    assert sum(float(r[2].rstrip("%")) for r in rows) == pytest.approx(100, abs=0.2)


def test_events_coalesced_into_the_first_tick_are_reported(tmp_path):
    from anycast_tui.lab.sim import SimFabric
    from anycast_tui.model.timeline import Timeline
    from anycast_tui.record.store import Recorder

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
    assert len([line for line in md.splitlines() if line.startswith("| 20")]) == len(r.events)
