"""Incidents on the real BGP lab (FRR in namespaces, collected over SSH), with real TCP and UDP traffic.

For ``lab fail leaf03``, ``lab fail spine01`` and ``lab drain server02``, each restored, twice on the same lab:
exactly one incident; its live TCP-reset count equals the connections the traffic client saw die; its
estimated moved set equals what the kernels answer (``ip route get`` hop by hop) before and after; the
restore, with no traffic left, resets nothing (the failed server's left-over sockets are stale, not live);
and the same recording gives the same incidents in the report's JSON.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.collect.flows import LIVE_WINDOW_S
from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.incidents import IncidentKind
from anycast_tui.record import incidentlog
from anycast_tui.record.live import incident_tracker
from anycast_tui.record.report import report
from anycast_tui.record.reader import Recording
from anycast_tui.record.writer import Recorder
from anycast_tui.session import LiveSession

from .labwalk import final_servers, held_traffic, lab_flows

pytestmark = pytest.mark.kernel
SAMPLE = lab_flows(600, first_port=30000)  # the sample the incidents are estimated on (not the traffic)
SAMPLE_ARRAY = FlowArray.from_flows(SAMPLE)
SCENARIOS = [("fail", "leaf03"), ("fail", "spine01"), ("drain", "server02")]


def _sample(dst: str) -> FlowArray | None:
    return SAMPLE_ARRAY if dst == ANYCAST else None


async def _polls(session: LiveSession, n: int = 2) -> None:
    for _ in range(n):
        await session.poll_once()


@pytest.mark.parametrize("round_", [0, 1])
@pytest.mark.parametrize("action,target", SCENARIOS)
def test_one_incident_with_the_real_resets(bgp_lab: Lab, action: str, target: str, round_: int, tmp_path):
    assert bgp_lab.cfg.nohash_error is None, f"client tc program missing: {bgp_lab.cfg.nohash_error}"
    bgp_lab.start_services()
    first_port = 40000 + 1000 * (SCENARIOS.index((action, target)) * 2 + round_)
    traffic = lab_flows(120, first_port=first_port)
    inv = load_inventory(bgp_lab.cfg.inventory)
    rec_path = tmp_path / "lab.atrec"

    async def run() -> tuple[IncidentTracker, list[str], list[str], list[dict]]:
        session = LiveSession(inv, interval_s=60.0)
        rec = Recorder(rec_path, flush_s=None)
        rec.attach(session.timeline)
        tracker = incident_tracker(session.timeline, rec)
        tracker.sample_of = _sample
        report_: list[dict] = []
        try:
            with held_traffic(bgp_lab, traffic) as report_:
                await _polls(session)  # every device, the traffic's connections alive on the servers
                kernel_before = await asyncio.to_thread(final_servers, bgp_lab.topo, SAMPLE)
                await asyncio.to_thread(lambda: (getattr(bgp_lab, action)(target), bgp_lab.wait_converged()))
                await _polls(session)
                kernel_after = await asyncio.to_thread(final_servers, bgp_lab.topo, SAMPLE)
                assert await asyncio.to_thread(tracker.wait, 120)
                rec.flush()
            # the traffic is gone; wait out the live window so the failed server's left-overs are stale
            await asyncio.sleep(LIVE_WINDOW_S + 1.5)
            await _polls(session, 1)
            await asyncio.to_thread(lambda: (bgp_lab.restore(target), bgp_lab.wait_converged()))
            await _polls(session)
            assert await asyncio.to_thread(tracker.wait, 120)
            rec.flush()
        finally:
            await session.stop()
            tracker.close()
            rec.close()
        return tracker, kernel_before, kernel_after, report_

    tracker, kernel_before, kernel_after, report_ = asyncio.run(run())
    failures = [i for i in tracker.incidents() if i.kind is IncidentKind.FAILURE]
    assert len(failures) == 1, [i.cause for i in tracker.incidents()]
    (inc,) = failures
    assert target in inc.cause or target in inc.devices, inc.cause
    assert not inc.open, (inc.cause, inc.outstanding)
    imp = tracker.impact(inc.id)
    assert imp is not None and imp.onset is not None and imp.restore is not None
    assert not imp.onset.ingress_assumed  # the lab's client router is in the inventory: flows enter there
    # estimated: exactly the sample flows the kernels moved
    moved_kernel = np.flatnonzero(np.array(kernel_before) != np.array(kernel_after))
    assert imp.onset.detail is not None
    assert imp.onset.detail.moved.tolist() == moved_kernel.tolist()
    assert imp.onset.estimated.moved == len(moved_kernel)
    # measured: the live TCP resets are the connections that really died
    died = sum(1 for f, r in zip(traffic, report_) if f.proto == 6 and r["error"] is not None)
    assert imp.onset.live is not None
    assert imp.onset.live.tcp_reset == died
    assert imp.onset.live.udp_moved is None  # the servers read ss only: UDP cannot be seen, not 0
    if target != "spine01":
        assert died > 0
    # no phantom resets on the restore: nothing was running, the left-over sockets are stale
    assert imp.restore.live is not None and imp.restore.live.tcp_reset == 0
    # … because the dead connections' server-side sockets, still ESTABLISHED, were told apart as left-overs
    assert imp.restore.live.stale >= died
    # the recording holds the same numbers, and the report's JSON says them
    with Recording.open(rec_path) as r:
        found, recorded = incidentlog.of_recording(r)
        assert recorded
        (again,) = [x for x in found if x.incident.kind is IncidentKind.FAILURE]
        assert again.impact is not None and again.impact.onset.estimated == imp.onset.estimated
        assert again.impact.onset.live == imp.onset.live and again.impact.restore.live == imp.restore.live
        doc = json.loads(report(r, fmt="json"))
    (js,) = [i for i in doc["incidents"] if i["id"] == inc.id]
    assert js["impact"]["live"]["tcp_reset"] == died
    assert js["impact"]["estimated"]["moved"] == len(moved_kernel)
