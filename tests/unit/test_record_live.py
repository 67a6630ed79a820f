"""Recording on by default for live sessions, off with --no-record, into --record-dir."""

from __future__ import annotations

import argparse

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.timeline import Timeline
from anycast_tui.record import incidentlog, live
from anycast_tui.record.reader import Recording


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    live.add_arguments(p)
    return p.parse_args(list(argv))


def test_on_by_default_into_the_directory(tmp_path):
    tl = Timeline(anycast_prefixes=("192.0.2.53/32",))
    rec = live.start(_args("--record-dir", str(tmp_path)), tl, kind="demo", settings={"interval_s": 1})
    assert rec is not None and rec.path.parent == tmp_path and rec.path.name.startswith("demo-")
    incidents = live.incident_tracker(tl, rec)
    sim = SimFabric()
    tl.apply(sim.snapshot(1_790_000_000_000))
    sim.fail_device("leaf03")
    tl.apply(sim.snapshot(1_790_000_001_000))
    assert incidents.wait(60)
    incidents.close()
    rec.close()
    with Recording.open(rec.path) as r:
        assert r.state_at(r.window[1]) == tl.snapshot and r.events == tl.events
        found, recorded = incidentlog.of_recording(r)  # the incident, as the tracker computed it
    assert recorded and [x.incident.cause for x in found] == [i.cause for i in incidents.incidents()]
    assert found[0].impact == incidents.impact(found[0].incident.id)


def test_opt_out(tmp_path):
    assert live.start(_args("--no-record", "--record-dir", str(tmp_path)), Timeline(), kind="demo") is None
    assert not any(tmp_path.iterdir())
