"""Incidents on the simulated fabric: one incident per cause whatever order the devices answer in, and
its end-to-end impact equal to the simulator's own per-flow ``route get`` walked hop by hop from where
each flow enters, before and after."""

from __future__ import annotations

import random

import numpy as np
import pytest
import simwalk

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.incident_impact import incident_impact, phase_impact, replayed_onset, resilient_counts
from anycast_tui.model.incidents import IncidentBook, IncidentKind, PhaseSnapshots
from anycast_tui.model.ingress import ingress_of
from anycast_tui.model.types import FabricSnapshot, HealthStatus
from anycast_tui.session import SimSession

FLOWS = synthetic_flows(100, 400, seed=23)
PREFIX = "192.0.2.53/32"


def sample(dst: str):  # noqa: ANN201
    return FLOWS if dst == "192.0.2.53" else None


class Run:
    """A simulated fabric polled device by device (in a chosen order), its timeline fed to a book."""

    def __init__(self, order_seed: int | None = None, **cfg: object) -> None:
        self.t = [1_000.0]
        self.sim = SimFabric(SimConfig(**cfg))  # type: ignore[arg-type]
        self.session = SimSession(self.sim, clock=lambda: self.t[0])
        self.book = IncidentBook(self.session.timeline.anycast_prefixes)
        self.session.timeline.subscribe(lambda ch: self.book.feed(ch.before, ch.after, ch.events, ch.touched))
        self.rng = random.Random(order_seed) if order_seed is not None else None
        self.polls = 0
        self.poll()
        self.poll()

    def poll(self) -> None:
        order = list(self.sim.devices)
        if self.rng is not None:
            self.rng.shuffle(order)
        self.t[0] += 1
        self.session.poll(order)
        self.polls += 1

    def act(self, action: str, *args: str, polls: int = 2) -> None:
        getattr(self.sim, action)(*args)
        for _ in range(polls):
            self.poll()

    def impact(self, inc):  # noqa: ANN001, ANN201
        onset, restore = self.book.phases(inc.id)
        return incident_impact(inc.id, onset, restore, inc.prefixes, sample)


def walk(sim: SimFabric, snap: FabricSnapshot) -> list[str]:
    """Where each sample flow ends, asking the simulator hop by hop from the flow's entry device."""
    got, _ = ingress_of(snap, FLOWS)
    assert got is not None
    names, codes = got
    return simwalk.walk(sim, snap, FLOWS, [names[int(c)] for c in codes])


def moved_by_simulator(run: Run, action: str, *args: str) -> tuple[np.ndarray, np.ndarray]:
    before = walk(run.sim, run.session.timeline.snapshot)
    run.act(action, *args)
    after = walk(run.sim, run.session.timeline.snapshot)
    moved = np.array([a != b for a, b in zip(before, after)])
    tcp = moved & (FLOWS.proto == 6)
    return moved, tcp


@pytest.mark.parametrize("resilient", [False, True])
@pytest.mark.parametrize("action,target,lost", [("fail_device", "leaf03", ("server03",)),
                                                ("withdraw", "server02", ("server02",)),
                                                ("fail_device", "spine01", ())])
def test_one_incident_whose_moved_flows_are_the_simulators(resilient, action, target, lost):
    run = Run(resilient=resilient)
    moved, tcp = moved_by_simulator(run, action, target)
    (inc,) = run.book.incidents()
    assert inc.kind is IncidentKind.FAILURE and inc.open and inc.outstanding > 0
    imp = run.impact(inc)
    assert imp.onset is not None
    assert imp.onset.estimated.flows == len(FLOWS)
    assert imp.onset.estimated.moved == int(moved.sum())
    assert imp.onset.estimated.tcp_reset == int(tcp.sum())
    assert imp.onset.servers_lost == lost
    assert imp.onset.ingress_assumed  # the simulated fabric has no client-facing router
    if resilient and lost:
        assert imp.onset.estimated.collateral == 0  # resilient groups keep healthy next hops' flows
    elif lost:
        assert imp.onset.estimated.collateral > 0  # hash-threshold moves some flows of healthy servers too
    # the restore closes it, and moves what the simulator moves back
    undo = {"fail_device": "restore_device", "withdraw": "announce"}[action]
    back, back_tcp = moved_by_simulator(run, undo, target)
    (inc,) = run.book.incidents()
    assert not inc.open and inc.outstanding == 0 and inc.end_ms is not None and inc.end_ms > inc.start_ms
    imp = run.impact(inc)
    assert imp.restore is not None and imp.restore.estimated.moved == int(back.sum())
    assert imp.restore.estimated.tcp_reset == int(back_tcp.sum())


def test_cause_names_the_failed_device_and_the_neighbours_that_lost_it():
    run = Run()
    run.act("fail_device", "leaf03")
    (inc,) = run.book.incidents()
    assert inc.cause.startswith("leaf03 unreachable (connection refused)")
    assert "spine01, spine02 lost next hop leaf03" in inc.cause
    assert {"leaf03", "spine01", "spine02"} <= set(inc.devices)
    assert inc.prefixes == (PREFIX,)
    imp = run.impact(inc)
    assert imp.onset.capacity_lost == "1 of 4 servers, 25 %"


def test_a_link_failure_is_one_incident_naming_both_ends():
    run = Run()
    run.act("fail_link", "spine01", "leaf02")
    (inc,) = run.book.incidents()
    assert inc.cause.startswith("link leaf02 ") and " – spine01 " in inc.cause
    assert "spine01 lost next hop leaf02" in inc.cause
    run.act("restore_link", "spine01", "leaf02")
    (inc,) = run.book.incidents()
    assert not inc.open


@pytest.mark.parametrize("seed", range(6))
def test_poll_order_does_not_change_incidents_or_counts(seed):
    def scenario(order_seed: int | None) -> list[tuple]:
        run = Run(order_seed)
        run.act("fail_device", "leaf03")
        run.act("withdraw", "server01")
        run.act("restore_device", "leaf03")
        run.act("announce", "server01")
        out = []
        for inc in run.book.incidents():
            imp = run.impact(inc)
            out.append((inc.kind, inc.start_ms, inc.end_ms, inc.cause, inc.restore, inc.devices,
                        imp.onset.estimated, imp.restore.estimated, imp.onset.servers_lost))
        return out

    want = scenario(None)
    assert len(want) == 2
    assert scenario(seed) == want


def test_an_addition_that_undoes_nothing_is_its_own_incident_and_over_at_once():
    run = Run()
    run.sim.withdraw("server04")
    run.poll()
    run.poll()
    run.book = IncidentBook(run.session.timeline.anycast_prefixes)  # the monitor starts now
    run.session.timeline.subscribe(lambda ch: run.book.feed(ch.before, ch.after, ch.events, ch.touched))
    run.act("announce", "server04")
    (inc,) = run.book.incidents()
    assert inc.kind is IncidentKind.ADDITION and not inc.open and inc.end_ms == inc.start_ms
    assert "gained next hop leaf04" in inc.cause or "announced" in inc.cause
    imp = run.impact(inc)
    assert imp.onset.servers_gained == ("server04",)


def test_unrelated_failures_are_separate_incidents():
    run = Run()
    run.act("fail_device", "leaf01")
    run.act("fail_device", "leaf04")
    incs = run.book.incidents()
    assert [i.cause.split(" ")[0] for i in incs] == ["leaf01", "leaf04"]
    run.act("restore_device", "leaf01")
    a, b = run.book.incidents()
    assert not a.open and b.open


def test_stale_device_health_is_what_the_ingress_model_reads():
    run = Run()
    run.act("fail_device", "spine01")
    snap = run.session.timeline.snapshot
    assert snap.devices["spine01"].health.status is HealthStatus.STALE
    got, model = ingress_of(snap, FLOWS)
    assert got is not None and tuple(got[0]) == ("spine02",)
    assert model.assumed and "spine02" in model.note


@pytest.mark.parametrize("action,target", [("fail_device", "leaf03"), ("withdraw", "server02"),
                                           ("fail_device", "spine01")])
def test_the_whatif_chain_predicts_the_incident_and_resilient_hashing_spares_healthy_flows(action, target):
    run = Run()
    run.act(action, target)
    (inc,) = run.book.incidents()
    onset, _ = run.book.phases(inc.id)
    observed = run.impact(inc).onset.estimated
    # the onset replayed as what-if edits on the before fabric moves exactly what the fabric did
    replayed = replayed_onset(onset.before, inc)
    assert replayed is not None
    chain = phase_impact(PhaseSnapshots(onset.before, replayed), inc.prefixes, sample, with_live=False)
    assert chain.estimated == observed
    alt = resilient_counts(onset, inc, sample)
    assert alt is not None and alt.flows == observed.flows
    if action != "fail_device" or target == "leaf03":  # a server went away: only its flows must move
        assert alt.collateral == 0 and alt.moved < observed.moved


@pytest.mark.parametrize("action,target", [("fail_device", "leaf03"), ("withdraw", "server02"),
                                           ("fail_device", "spine01"), ("fail_link", "spine02")])
def test_had_it_been_resilient_converts_only_the_anycast_routes_and_counts_as_if_all_were(action, target):
    """resilient_counts converts only the routes that can carry a flow to the incident's prefixes; the oracle is
    the same replay with every multipath route of the incident's devices converted."""
    from anycast_tui.model.incident_impact import whatif_changes
    from anycast_tui.model.whatif import WhatIfError, apply, with_mapping

    run = Run()
    run.act(action, *((target, "leaf02") if action == "fail_link" else (target,)))
    (inc,) = run.book.incidents()
    onset, _ = run.book.phases(inc.id)
    before_all = with_mapping(onset.before, "resilient", only=set(inc.devices))
    after_all = before_all
    for change in whatif_changes(inc):  # as replayed_onset replays them
        try:
            after_all = apply(after_all, change)
        except WhatIfError:
            continue
    want = phase_impact(PhaseSnapshots(before_all, after_all), inc.prefixes, sample, with_live=False).estimated
    assert resilient_counts(onset, inc, sample) == want
    some = with_mapping(onset.before, "resilient", only=set(inc.devices), covering=inc.prefixes)
    left = [r.dst for n in inc.devices if n in some.devices for r in some.devices[n].routes
            if r.nhid is None and len(r.nexthops) > 1]  # multipath routes left as they were
    assert left and PREFIX not in left


def test_links_failing_together_at_one_device_are_one_incident():
    run = Run()
    for leaf in ("leaf01", "leaf02", "leaf03", "leaf04"):
        run.sim.fail_link("spine01", leaf)
    run.poll()
    run.poll()
    (inc,) = run.book.incidents()
    assert "spine01" in inc.devices and inc.open
    for leaf in ("leaf01", "leaf02", "leaf03", "leaf04"):
        run.sim.restore_link("spine01", leaf)
    run.poll()
    run.poll()
    (inc,) = run.book.incidents()
    assert not inc.open


def test_a_recordings_ticks_rebuild_the_incidents_the_live_timeline_had(tmp_path):
    """Ticks coalesce a poll's device updates into one change: grouping must not depend on that."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import record_helpers

    from anycast_tui.record import incidentlog
    from anycast_tui.record.reader import Recording
    from anycast_tui.record.writer import Recorder

    live: list[IncidentBook] = []
    attach = Recorder.attach

    def spy(self, timeline):  # noqa: ANN001, ANN202 - the live timeline's book, beside the recorder
        book = IncidentBook(timeline.anycast_prefixes)
        timeline.subscribe(lambda ch: book.feed(ch.before, ch.after, ch.events))
        live.append(book)
        return attach(self, timeline)

    Recorder.attach = spy
    try:
        rec = record_helpers.record_session(tmp_path / "s.atrec", ticks=18)
    finally:
        Recorder.attach = attach

    def key(i):  # noqa: ANN001, ANN202
        return (i.kind, i.open, i.cause.split(";")[0], i.devices)

    with Recording.open(rec.path) as r:
        rebuilt = [x.incident for x in incidentlog.rebuild(r, compute=False)]
    want = [key(i) for i in live[0].incidents()]
    assert [key(i) for i in rebuilt] == want
    assert [k[2] for k in want] == ["leaf02 unreachable (connection refused)", "leaf03 withdrew 192.0.2.53/32",
                                    "link leaf01 swp1 – spine01 swp1 down (no carrier)"]
    assert [k[1] for k in want] == [False, False, True]

