"""Sampled traffic as a flow source of incident impact: each sampled flow enters where it was sampled closest
to the clients, and its move is the simulator's own per-flow ``route get`` walked hop by hop from there,
before and after (a flow whose entry device failed enters where the ingress model puts it after)."""

from __future__ import annotations

import numpy as np
import pytest
import simwalk

from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.incident_impact import incident_impact
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.sampled import SampledWindow
from anycast_tui.model.samples import ExportKind, FlowSample
from anycast_tui.model.types import HealthStatus, Role
from test_incidents import Run

FLOWS = synthetic_flows(80, 600, seed=41)
PREFIX = "192.0.2.53/32"
RATE = 400


def entries() -> list[str]:
    """Where each flow is sampled first: its source port's parity picks a spine (a real upstream's choice)."""
    return ["spine01" if int(p) % 2 else "spine02" for p in FLOWS.sport]


def window_of(t: float) -> SampledWindow:
    w = SampledWindow([PREFIX])
    for i, spine in enumerate(entries()):
        s = FlowSample("198.18.0.1", ExportKind.SFLOW, 1, RATE, 3, 4, 4, int(FLOWS.proto[i]),
                       bytes(FLOWS.src[i, :4]), bytes(FLOWS.dst[i, :4]), int(FLOWS.sport[i]), int(FLOWS.dport[i]),
                       packets=1, octets=120, received=t)
        w.add("leaf01", Role.LEAF, [s])  # also sampled further in: the spine is still where it entered
        w.add(spine, Role.SPINE, [s])
    return w


def truth(run: Run, before_entries: list[str]) -> list[str]:
    snap = run.session.timeline.snapshot
    got, _ = ingress_of(snap, FLOWS)
    assert got is not None
    names, codes = got
    here = [e if snap.devices[e].health.status is HealthStatus.OK else names[int(c)]
            for e, c in zip(before_entries, codes)]
    return simwalk.walk(run.sim, snap, FLOWS, here)


@pytest.mark.parametrize("action,target", [("fail_device", "leaf03"), ("fail_device", "spine01"),
                                           ("withdraw", "server02")])
def test_sampled_flows_moved_are_the_simulators(action, target):
    run = Run()
    t_before = run.t[0]
    window = window_of(t_before - 1)
    before = truth(run, entries())
    getattr(run.sim, action)(target)
    run.poll()
    run.poll()
    after = truth(run, entries())
    moved = np.array([a != b for a, b in zip(before, after)])
    (inc,) = run.book.incidents()
    onset, _ = run.book.phases(inc.id)

    def sampled_of(prefix: str, before_ms: int):  # noqa: ANN202
        return window.flow_set(prefix, now=before_ms / 1000, seen_by=before_ms / 1000)

    imp = incident_impact(inc.id, onset, None, inc.prefixes, lambda dst: None, sampled_of=sampled_of)
    sc = imp.onset.sampled
    assert sc is not None and sc.flows == len(FLOWS) and sc.rate == f"1:{RATE}"
    assert sc.moved == int(moved.sum())
    assert sc.tcp_reset == int((moved & (FLOWS.proto == 6)).sum())
    # one sampled packet per flow on its entry spine, at 1:400, over the 300 s window: the leaf's copy not counted
    assert sc.pps == pytest.approx(len(FLOWS) * RATE / 300)
    assert sc.moved_pps == pytest.approx(int(moved.sum()) * RATE / 300)


def test_flows_first_seen_after_the_onset_are_not_counted():
    run = Run()
    window = window_of(run.t[0] + 100)  # all first seen well after
    run.sim.fail_device("leaf03")
    run.poll()
    run.poll()
    (inc,) = run.book.incidents()
    onset, _ = run.book.phases(inc.id)
    imp = incident_impact(inc.id, onset, None, inc.prefixes, lambda dst: None,
                          sampled_of=lambda p, ms: window.flow_set(p, now=ms / 1000, seen_by=ms / 1000))
    assert imp.onset is None or imp.onset.sampled is None
