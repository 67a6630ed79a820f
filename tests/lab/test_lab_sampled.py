"""Sampled traffic end to end on the real BGP lab: pmacct exporting sFlow (1 in 1) from every spine and leaf
(and IPFIX from spine01), the monitor's collector socket opened inside the lab's collector namespace, real TCP
and UDP traffic through the kernels.

* the sampled-flow source holds exactly the traffic's flows;
* placement checked against the fabric: on every Linux device that sampled the traffic, every sample's output
  interface is the model's next hop (100 %, the kernels are modelled exact);
* ``lab fail leaf03``: the incident's sampled counts are what the traffic client saw move — its TCP
  connections that died are the TCP resets, the UDP flows answered by another server afterwards are the UDP
  moved (at 1 in 1 the lab samples every packet: exact, no sampling error).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest

from anycast_tui import sampledtraffic
from anycast_tui.collect.inventory import load_inventory
from anycast_tui.collect.nssocket import udp_socket
from anycast_tui.incidenttracker import IncidentTracker
from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.model.incidents import IncidentKind
from anycast_tui.model.types import HealthStatus
from anycast_tui.session import LiveSession

from .labwalk import held_traffic, lab_flows

pytestmark = pytest.mark.kernel
DEADLINE_S = 120.0


def _key(proto: int, src: str, sport: int) -> tuple[int, str, int]:
    return proto, str(ipaddress.ip_address(src)), sport


def test_sampled_flows_placement_and_incident_counts_are_the_fabrics(sflow_lab: Lab):
    lab = sflow_lab
    lab.start_services()
    traffic = lab_flows(80, first_port=47000)
    want = {_key(f.proto, f.src, f.sport) for f in traffic}
    inv = load_inventory(lab.cfg.inventory)
    cfg = inv.flow_export
    assert cfg is not None and cfg.namespace

    async def run():  # noqa: ANN202
        session = LiveSession(inv, interval_s=60.0)
        export = sampledtraffic.from_inventory(inv, session.timeline,
                                               sock=udp_socket(cfg.host, cfg.port, namespace=cfg.namespace))
        await export.start()
        tracker = IncidentTracker(session.timeline, sampled_of=export.traffic.sampled_of)
        try:
            with held_traffic(lab, traffic) as report:
                await session.poll_once()
                await session.poll_once()
                for _ in range(10):  # samples are checked against states that answered (a loaded machine: again)
                    if all(h.status is HealthStatus.OK for h in session.health().values()):
                        break
                    await session.poll_once()
                deadline = time.monotonic() + DEADLINE_S
                seen: set = set()
                while time.monotonic() < deadline:
                    fs = export.traffic.flow_set(f"{ANYCAST}/32", time.time())
                    seen = set() if fs is None else {
                        _key(int(fs.flows.proto[i]), str(ipaddress.ip_address(bytes(fs.flows.src[i, :4]))),
                             int(fs.flows.sport[i])) for i in range(len(fs))}
                    if want <= seen:
                        break
                    await asyncio.sleep(0.5)
                assert seen == want, (len(want - seen), len(seen - want))
                export.flush()
                agreements = dict(export.traffic.agreements())
                health = {n: (h.status.value, h.error) for n, h in session.health().items()
                          if h.status is not HealthStatus.OK}
                await asyncio.to_thread(lambda: (lab.fail("leaf03"), lab.wait_converged()))
                await session.poll_once()
                await session.poll_once()
                assert await asyncio.to_thread(tracker.wait, 120)
            return tracker, agreements, report, [*export.collector.lines(), f"not ok when checked: {health}"]
        finally:
            tracker.close()
            await export.stop()
            await session.stop()
            await asyncio.to_thread(lambda: (lab.restore("leaf03"), lab.wait_converged()))

    tracker, agreements, report, lines = asyncio.run(run())
    # placement: every sampling spine and leaf agrees with the model on every sample of the traffic
    checked = {d for d, a in agreements.items() if a.compared}
    assert {"spine01", "spine02"} <= checked and any(d.startswith("leaf") for d in checked), (checked, lines)
    for name in checked:
        a = agreements[name]
        assert a.agreed == a.compared and a.exact, (name, a.text, a.disagreements[-3:])
    # the incident's sampled counts are what the traffic client saw
    (inc,) = [i for i in tracker.incidents() if i.kind is IncidentKind.FAILURE]
    sc = tracker.impact(inc.id).onset.sampled
    assert sc is not None and sc.flows == len(traffic) and sc.rate == "1:1"
    died = sum(1 for f, r in zip(traffic, report) if f.proto == 6 and r["error"] is not None)
    udp_moved = sum(1 for f, r in zip(traffic, report) if f.proto == 17 and r["answers"][0] != r["answers"][-1])
    assert died + udp_moved > 0
    assert sc.tcp_reset == died
    assert sc.udp_moved == udp_moved
    assert sc.moved == died + udp_moved
