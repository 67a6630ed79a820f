#!/usr/bin/env python3
"""Benchmark: one Prometheus scrape of a large fabric's session.

    python3 bench/bench_metrics.py [--spines 246] [--leaves 4] [--runs 50]

The fabric of bench_incident.py (``--spines`` × ``--leaves`` × 2 servers, IPv4 and IPv6 anycast: 516 groups at
the defaults; resilient spine groups of 128 buckets, so every bucket series is there), fed to a Timeline whole
snapshots as the SSH poller hands them over (unchanged records shared); an IncidentTracker that has seen a
spine-leaf link fail and come back; a HealthReport with a share per server, a spread per device and prefix and
a finding per device (what ``evaluate`` hands over; the checks themselves run on the HealthRunner's worker,
never on a scrape, so they are not in this figure).

Measured: the whole exposition (``generate_latest`` of the exporter's registry: collect + text), warm (the
records unchanged since the last scrape) and after a poll that changed one device; goal ≤ 100 ms.
Baselines, same run: the exposition of an empty registry (prometheus_client's fixed cost), of the very same series
built once (prometheus_client writing the text: what any exporter of these series pays), and one device's poll
into the timeline (``Timeline.update``: a new snapshot of every device, what each poll costs anyway).
Medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.registry import Collector, CollectorRegistry  # noqa: E402

from anycast_tui.incidenttracker import IncidentTracker  # noqa: E402
from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.metrics import FabricCollector  # noqa: E402
from anycast_tui.model.health import DeviceSpread, Finding, HealthReport, ServerShare, Severity  # noqa: E402
from anycast_tui.model.types import Role  # noqa: E402
from bench_incident import T0, _Feed  # noqa: E402

GOAL_MS = 100.0


def _report(feed: _Feed) -> HealthReport:
    snap = feed.timeline.snapshot
    servers = [n for n, st in snap.devices.items() if st.device.role is Role.SERVER]
    shares, spreads, findings = [], [], []
    for p in feed.timeline.anycast_prefixes:
        shares += [ServerShare(p, s, 1 / len(servers), 1 / len(servers), "hash space") for s in servers]
        for name, st in snap.devices.items():
            if st.device.role is not Role.SERVER:
                hops = tuple((f"hop{i}", 0.25) for i in range(4))
                spreads.append(DeviceSpread(name, p, hops, hops, 100_000))
    for name in snap.devices:
        findings.append(Finding("same-seed-consecutive-tiers", Severity.WARNING, name, "s", "f"))
    return HealthReport(snap.taken_at_ms, tuple(shares), tuple(spreads), tuple(findings))


class _Fixed(Collector):
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):  # noqa: ANN201
        return iter(self.families)


def _median_ms(fn, runs: int) -> float:  # noqa: ANN001
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spines", type=int, default=246)
    ap.add_argument("--leaves", type=int, default=4)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()

    clock = [T0]
    sim = SimFabric(SimConfig(spines=args.spines, leaves=args.leaves, servers_per_leaf=2, resilient=True,
                              buckets=128), clock=lambda: clock[0])
    feed = _Feed(sim, clock)
    feed.poll()
    tracker = IncidentTracker(feed.timeline)

    def poll() -> None:
        clock[0] += 1
        feed.poll()

    poll()
    sim.fail_link("spine01", "leaf02")
    poll()
    sim.restore_link("spine01", "leaf02")
    poll()
    tracker.wait(600)
    report = _report(feed)
    collector = FabricCollector(feed.timeline, incidents=tracker, health=lambda: report, clock=lambda: clock[0])
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    t0 = time.perf_counter()
    text = generate_latest(reg)
    cold = (time.perf_counter() - t0) * 1000
    n_series = sum(1 for ln in text.splitlines() if ln and not ln.startswith(b"#"))
    warm = _median_ms(lambda: generate_latest(reg), args.runs)

    after: list[float] = []
    leaves = [n for n in sim.devices if sim.role(n) is Role.LEAF]
    for k in range(max(5, args.runs // 5)):  # a leaf polled anew (its records rebuilt, 246 uplinks), then a scrape
        feed.timeline.update(sim.device_state(leaves[k % len(leaves)], int(clock[0] * 1000)))
        t0 = time.perf_counter()
        generate_latest(reg)
        after.append(time.perf_counter() - t0)
    after_change = statistics.median(after) * 1000
    empty = CollectorRegistry(auto_describe=False)
    base_empty = _median_ms(lambda: generate_latest(empty), args.runs)
    fixed = CollectorRegistry(auto_describe=False)
    fixed.register(_Fixed(list(collector.collect())))  # the same series, built once: the text alone
    base_text = _median_ms(lambda: generate_latest(fixed), args.runs)
    state = feed.timeline.snapshot.devices["spine01"]
    base_update = _median_ms(lambda: feed.timeline.update(state), args.runs)
    tracker.close()

    from anycast_tui.ui import view  # counted as bench_incident.py counts them

    groups = len(view.group_views(feed.timeline.snapshot, feed.timeline.anycast_prefixes))
    print(f"fabric {args.spines}×{args.leaves}×2 ({len(sim.devices)} devices, {groups} groups, "
          f"resilient spine groups of 128 buckets), {len(tracker.incidents())} incidents; one scrape: "
          f"{len(text):,} bytes, {n_series:,} series")
    print(f"  scrape (collect + exposition), warm:           median {warm:8.2f} ms  (goal ≤ {GOAL_MS:.0f} ms: "
          f"{'met' if warm <= GOAL_MS else 'NOT met'})")
    print(f"  scrape after one device's records changed:     median {after_change:8.2f} ms  (goal: "
          f"{'met' if after_change <= GOAL_MS else 'NOT met'})")
    print(f"  first scrape (every device derived):                  {cold:8.2f} ms")
    print(f"  baseline, exposition of an empty registry:     median {base_empty:8.3f} ms")
    print(f"  baseline, exposition of the same series prebuilt: median {base_text:8.2f} ms  (scrape/text "
          f"{warm / base_text:.2f}×: the rest is reading the session)")
    print(f"  baseline, one device's poll into the timeline: median {base_update:8.3f} ms  "
          f"(scrape/update {warm / base_update:.1f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
