"""Fleet on a real nats-server: two collector processes (``collect --shard 0/2`` and ``1/2``) poll the
simulated fabric over real SSH and publish on JetStream; viewers build their timeline from the bus.

The scripted leaf03 failure shows up once on the viewer, with the same incident and impact numbers as a direct
SSH LiveSession + IncidentTracker of the same fabric; a viewer joining late gets every device at once from KV
and opens no SSH session; a killed collector's devices go stale on the viewer with the reason, and fresh
again when it is restarted."""

from __future__ import annotations

import asyncio
import signal

import pytest

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.fleet.conn import NatsOptions
from anycast_tui.fleet.shard import mine
from anycast_tui.fleet.source import NatsSource
from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.incident_impact import phase_json
from anycast_tui.model.types import EventKind, HealthStatus
from anycast_tui.record import incidentlog
from anycast_tui.record.reader import Recording
from anycast_tui.session import LiveSession
from natsserver import NatsServer, same_content, start_collector, start_recorder, wait_for, write_inventory

pytestmark = pytest.mark.ssh

# Generous timeouts: a command timing out on a loaded machine would be an event of its own on one side only.
FAST = dict(command_timeout_s=30.0, connect_timeout_s=30.0, backoff_base_s=0.1, backoff_max_s=0.3)
BEAT = ("--heartbeat", "2")  # silent after 6 s without a message: a loaded machine is not a dead collector


def _comparable(tracker: IncidentTracker) -> list[dict]:
    """Each incident as the recording stores it, without what depends on when each poll ran."""
    out = []
    for inc in tracker.incidents():
        d = incidentlog.to_json(inc, tracker.impact(inc.id))
        for k in ("start_ms", "end_ms", "events", "restore_events", "id"):
            d.pop(k)
        d["event_keys"] = sorted((e.device, e.kind.value, e.subject) for e in inc.events)
        out.append(d)
    return out


def _all_ok(timeline, n: int) -> bool:
    snap = timeline.snapshot
    return snap is not None and len(snap.devices) == n and all(
        s.health.status is HealthStatus.OK for s in snap.devices.values())


async def test_two_collectors_one_viewer_same_incident_as_direct_ssh(make_farm, tmp_path):
    server = NatsServer(tmp_path)
    server.start()
    sim = SimFabric(SimConfig())
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    config = write_inventory(tmp_path / "fabric.toml", farm.inventory(sim.roles(), platform="sim", **FAST))
    names = list(sim.devices)
    shard0 = mine(names, 0, 2)
    assert shard0 and len(shard0) < len(names)
    collectors = [start_collector(config, server.url, "a", tmp_path / f"collector{i}.log", "--shard", f"{i}/2", *BEAT)
                  for i in range(2)]
    direct = LiveSession(load_inventory(config), interval_s=1.0)
    direct_incidents = IncidentTracker(direct.timeline)
    recording = tmp_path / "bus.atrec"
    recorder = start_recorder(server.url, recording, tmp_path / "recorder.log")
    viewer = NatsSource(NatsOptions((server.url,)))
    late = None
    viewer_incidents = None
    try:
        await direct.start()
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set(), "the viewer to join")
        viewer_incidents = IncidentTracker(viewer.timeline)
        await wait_for(lambda: _all_ok(viewer.timeline, len(names)), "every device fresh on the viewer")
        await wait_for(lambda: _all_ok(direct.timeline, len(names)), "every device fresh on the direct session")
        ssh_before = sum(ep.counters.connections for ep in farm.endpoints.values())

        sim.apply("fail_device", "leaf03")

        def agreed() -> bool:
            if not (direct_incidents.wait(0) and viewer_incidents.wait(0)):
                return False
            a, b = _comparable(direct_incidents), _comparable(viewer_incidents)
            return bool(a) and a == b and all(d["computed"] for d in a) and "server03" in a[0]["devices"]

        try:
            await wait_for(agreed, "the viewer's incidents to equal the direct session's", timeout=90)
        except AssertionError:
            raise AssertionError(f"direct {_comparable(direct_incidents)} != viewer {_comparable(viewer_incidents)}; "
                                 f"viewer health {viewer.health()}") from None
        got = _comparable(viewer_incidents)
        assert len(got) == 1 and got[0]["kind"] == "failure" and "leaf03 unreachable" in got[0]["cause"]
        assert got[0]["onset"]["estimated"]["moved"] > 0
        down = [e for e in viewer.timeline.events if e.kind is EventKind.DEVICE_UNREACHABLE]
        assert [e.device for e in down] == ["leaf03"]  # once
        # the record daemon on the bus stored the same incident and numbers
        recorder.send_signal(signal.SIGTERM)
        assert recorder.wait(60) == 0
        with Recording.open(recording) as rec:
            stored, recorded = incidentlog.of_recording(rec)
        stored = [r for r in stored if "leaf03" in r.incident.devices]
        assert recorded and len(stored) == 1
        assert phase_json(stored[0].impact.onset) == got[0]["onset"]
        assert stored[0].incident.cause == got[0]["cause"]
        # both poll the same fabric on their own clocks: they agree once each has polled after the failure
        await wait_for(lambda: [n for n, st in direct.timeline.snapshot.devices.items()
                                if not same_content(st, viewer.timeline.snapshot.devices[n])] == [],
                       "the viewer's device states to equal the direct session's", timeout=30)

        # a viewer joining late: every device at once from KV, then the stream; no SSH session more
        firsts: list = []
        late = NatsSource(NatsOptions((server.url,)))
        late.timeline.subscribe(lambda ch: firsts.append(ch) if not firsts else None)
        await late.start()
        await wait_for(lambda: late.ready.is_set(), "the late viewer to join")
        assert firsts and len(firsts[0].after.devices) == len(names)
        assert late.counters["kv_devices"] == len(names)
        for name, st in viewer.timeline.snapshot.devices.items():
            assert same_content(st, late.timeline.snapshot.devices[name]), name
        assert late.timeline.snapshot.devices["leaf03"].health.status is HealthStatus.STALE
        assert not [e for e in late.timeline.events if e.kind is EventKind.DEVICE_UNREACHABLE]  # not replayed
        await asyncio.sleep(0)
        assert sum(ep.counters.connections for ep in farm.endpoints.values()) - ssh_before <= 1  # leaf03's retries only
        assert late.counters["bad"] == late.counters["newer"] == 0

        # collector 0 killed: its devices stale on the viewer with the reason; restarted: fresh again
        sim.apply("restore_device", "leaf03")
        await wait_for(lambda: _all_ok(viewer.timeline, len(names)), "leaf03 back on the viewer")
        collectors[0].send_signal(signal.SIGKILL)
        collectors[0].wait()

        def silent() -> bool:
            devs = viewer.timeline.snapshot.devices
            return all(devs[n].health.status is HealthStatus.STALE and
                       "collector a shard 0 of 2 silent since" in (devs[n].health.error or "") for n in shard0)

        await wait_for(silent, "collector 0's devices stale on the viewer")
        others = [n for n in names if n not in shard0]
        assert all(viewer.timeline.snapshot.devices[n].health.status is HealthStatus.OK for n in others)
        collectors[0] = start_collector(config, server.url, "a", tmp_path / "collector0b.log", "--shard", "0/2",
                                        *BEAT)
        await wait_for(lambda: _all_ok(viewer.timeline, len(names)), "collector 0's devices fresh again")
        assert viewer.counters["bad"] == viewer.counters["newer"] == 0
        # the silence was stale data, not device failures: no unreachable / back event, no incident more
        health = [e.device for e in viewer.timeline.events
                  if e.kind in (EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK)]
        assert health == ["leaf03", "leaf03"]
        assert viewer_incidents.wait(60)
        assert [i.cause for i in viewer_incidents.incidents()] == [got[0]["cause"]]
    finally:
        if recorder.poll() is None:
            recorder.kill()
        for p in collectors:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in collectors:
            try:
                p.wait(20)
            except Exception:
                p.kill()
        await direct.stop()
        direct_incidents.close()
        if viewer_incidents is not None:
            viewer_incidents.close()
        await viewer.stop()
        if late is not None:
            await late.stop()
        server.stop()
    for i in range(2):  # a clean SIGTERM: the collector said it stopped
        assert "stopped" in (tmp_path / ("collector0b.log" if i == 0 else "collector1.log")).read_text()
