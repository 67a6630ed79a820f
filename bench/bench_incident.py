#!/usr/bin/env python3
"""Benchmark: an incident's end-to-end total on screen, from the poll that completes it.

    python3 bench/bench_incident.py [--flows 100000] [--runs 5] [--spines 246] [--leaves 4] [--no-scale]

Demo fabric (the simulated 2 spines × 4 leaves × 1 server, polled through the real parsers): leaf03 fails
(one poll: the device unreachable and both spines' next-hop removals) and comes back, ``--runs`` times.
Large fabric (``--spines`` × ``--leaves`` × 2 servers, IPv4 and IPv6 anycast: 516 groups at the defaults;
the timeline gets the simulator's whole snapshot per poll): a spine-leaf link fails and comes back.

Measured per poll, headless app at 200×60 with the incident selected: the wall time from the moment the
poll's last device state is in the timeline until the incident's new total is drawn in the header (the
IncidentTracker's worker computed the phase over ``--flows`` sample flows, the app redrew); goal ≤ 300 ms.
The poll's own time (parsing every device's output) is printed apart.
Baseline, same run: one cold ``model.impact.impact`` of the same before/after snapshots and flows (the
engine alone, no grouping, no live flows, no drawing).  Medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anycast_tui.incidenttracker import IncidentTracker  # noqa: E402
from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.model.flows import synthetic_flows  # noqa: E402
from anycast_tui.model.impact import impact  # noqa: E402
from anycast_tui.model.ingress import ingress_of  # noqa: E402
from anycast_tui.model.timeline import Timeline  # noqa: E402
from anycast_tui.session import SimSession  # noqa: E402
from anycast_tui.ui.app import AnycastApp  # noqa: E402

T0 = 1_764_000_000.0
GOAL_MS = 300.0


class _Feed:
    """The large fabric's timeline fed whole snapshots (no parsers: building 500 devices' text is slow)."""

    def __init__(self, sim: SimFabric, clock: list[float]) -> None:
        self.sim, self.clock = sim, clock
        self.timeline = Timeline(anycast_prefixes=("192.0.2.53/32", "2001:db8:53::53/128"),
                                 clock=lambda: clock[0])

    def poll(self) -> None:
        """The whole snapshot, each unchanged device's records handed back as the same objects (as the SSH
        poller does: it parses only what changed)."""
        snap = self.sim.snapshot(int(self.clock[0] * 1000))
        prev = self.timeline.snapshot
        if prev is not None:
            devices = dict(snap.devices)
            for name, st in snap.devices.items():
                old = prev.devices.get(name)
                if old is not None:
                    devices[name] = replace(st, **{f: getattr(old, f) for f in ("routes", "nexthops", "interfaces")
                                                   if getattr(old, f) == getattr(st, f)})
            snap = replace(snap, devices=devices)
        self.timeline.apply(snap)


async def _run(feed, poll, fail, restore, n_flows: int, runs: int) -> dict[str, list[float]]:  # noqa: ANN001
    clock = feed.clock if isinstance(feed, _Feed) else None
    sample = {}

    def sample_of(dst: str):  # noqa: ANN202
        if ":" in dst:
            return None
        if dst not in sample:
            sample[dst] = synthetic_flows(200, n_flows, dst=dst)
        return sample[dst]

    tracker = IncidentTracker(feed.timeline, sample_of=sample_of)
    app = AnycastApp(feed, clock=time.time if clock is None else (lambda: clock[0]), incidents=tracker)
    out: dict[str, list[float]] = {"incident on screen": [], "baseline: one cold impact()": [], "poll": []}
    results: list[float] = []
    shown = tracker.on_result

    def on_result() -> None:
        results.append(time.perf_counter())
        if shown is not None:
            shown()

    tracker.on_result = on_result
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        for r in range(runs):
            for step in (fail, restore):
                before = feed.timeline.snapshot
                step()
                tp = time.perf_counter()
                results.clear()
                poll()
                t0 = time.perf_counter()
                out["poll"].append(t0 - tp)
                while not results:  # the worker's first result for this poll (what the screen shows)
                    await asyncio.sleep(0.001)
                incs = tracker.incidents()
                app.select_incident(incs[-1])
                app.flush()
                await pilot.pause()
                out["incident on screen"].append(time.perf_counter() - t0)
                bar = str(app.query_one("#eventbar").render())
                assert "moved" in bar, bar
                tracker.wait(600)  # the resilient alternative, computed after the total is out
                after = feed.timeline.snapshot
                flows = sample_of("192.0.2.53")
                t1 = time.perf_counter()
                ing_b, _ = ingress_of(before, flows)
                ing_a, _ = ingress_of(after, flows)
                impact(before, after, flows, ing_b, ingress_after=ing_a)
                out["baseline: one cold impact()"].append(time.perf_counter() - t1)
        out["incidents"] = [float(len(tracker.incidents()))]
    tracker.close()
    return out


def _print(title: str, res: dict[str, list[float]]) -> None:
    print(title)
    on = statistics.median(res["incident on screen"]) * 1000
    base = statistics.median(res["baseline: one cold impact()"]) * 1000
    print(f"  incident total on screen after its poll: median {on:8.1f} ms  (goal ≤ {GOAL_MS:.0f} ms: "
          f"{'met' if on <= GOAL_MS else 'NOT met'})")
    print(f"  baseline, one cold impact() of the same snapshots: median {base:8.1f} ms  (incident/baseline "
          f"{on / base:.2f}×)")
    print(f"  (the poll itself, parsing every device's output into the timeline: median "
          f"{statistics.median(res['poll']) * 1000:.1f} ms; the incident's worker starts during it)")
    print(f"  incidents: {res['incidents'][0]:.0f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--spines", type=int, default=246)
    ap.add_argument("--leaves", type=int, default=4)
    ap.add_argument("--no-scale", action="store_true")
    args = ap.parse_args()

    clock = [T0]
    sim = SimFabric(clock=lambda: clock[0])
    session = SimSession(sim, clock=lambda: clock[0])
    session.poll()
    clock[0] += 1
    session.poll()

    def tick_poll() -> None:
        clock[0] += 1
        session.poll()

    res = asyncio.run(_run(session, tick_poll, lambda: sim.fail_device("leaf03"),
                           lambda: sim.restore_device("leaf03"), args.flows, args.runs))
    _print(f"demo fabric (2×4×1, real parsers), {args.flows:,} flows, leaf03 fails and comes back "
           f"×{args.runs}:", res)
    if not args.no_scale:
        big = [T0]
        bsim = SimFabric(SimConfig(spines=args.spines, leaves=args.leaves, servers_per_leaf=2),
                         clock=lambda: big[0])
        feed = _Feed(bsim, big)
        feed.poll()

        def big_poll() -> None:
            big[0] += 1
            feed.poll()

        from anycast_tui.ui import view

        n_groups = len(view.group_views(feed.timeline.snapshot, feed.timeline.anycast_prefixes))
        res = asyncio.run(_run(feed, big_poll, lambda: bsim.fail_link("spine01", "leaf02"),
                               lambda: bsim.restore_link("spine01", "leaf02"), args.flows, args.runs))
        _print(f"large fabric ({args.spines}×{args.leaves}×2, {n_groups} groups), {args.flows:,} flows, "
               f"a spine-leaf link fails and comes back ×{args.runs}:", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
