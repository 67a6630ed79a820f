#!/usr/bin/env python3
"""Benchmark: one Prometheus scrape of a large fabric's session.

    python3 bench/bench_metrics.py [--spines 246] [--leaves 4] [--runs 50]

The fabric of bench_incident.py (``--spines`` × ``--leaves`` × 2 servers, IPv4 and IPv6 anycast: 516 groups at
the defaults; resilient spine groups of 128 buckets, so every bucket series is there), fed to a Timeline whole
snapshots as the SSH poller hands them over (unchanged records shared); an IncidentTracker that has seen a
spine-leaf link fail and come back; a HealthReport with a share per server, a spread per device and prefix and
a finding per device (what ``evaluate`` hands over; the checks themselves run on the session's HealthWatch worker,
never on a scrape, so they are not in this figure).

Measured: a scrape over HTTP as Prometheus makes it (its Accept headers: OpenMetrics preferred, gzip; the
exporter's own server and registry, process metrics included; it answers the 0.0.4 text format, gzipped), warm
(the records unchanged since the last scrape); in process, the exposition (collect + text) in the 0.0.4 text
format, warm and after a poll that changed one device, and in OpenMetrics (what prometheus_client's own server
would answer Prometheus); goal ≤ 100 ms.
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest  # noqa: E402
from prometheus_client.registry import Collector, CollectorRegistry  # noqa: E402

from anycast_tui.incidenttracker import IncidentTracker  # noqa: E402
from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.metrics import FabricCollector, MetricsServer  # noqa: E402
from anycast_tui.model.health import DeviceSpread, Finding, HealthReport, ServerShare, Severity  # noqa: E402
from anycast_tui.model.types import Role  # noqa: E402
from bench_incident import T0, _Feed  # noqa: E402

GOAL_MS = 100.0
# what Prometheus 2.42 (Debian's) sends: it prefers OpenMetrics
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


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


def _interleaved(fns: dict, runs: int) -> dict[str, float]:
    """Median ms of each function, run in turn ``runs`` times."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1000 for k, v in out.items()}


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
    empty = CollectorRegistry(auto_describe=False)
    fixed = CollectorRegistry(auto_describe=False)
    fixed.register(_Fixed(list(collector.collect())))  # the same series, built once: the text alone
    state = feed.timeline.snapshot.devices["spine01"]
    server = MetricsServer(("127.0.0.1", 0), [collector], process=True)

    def http_get() -> None:
        req = urllib.request.Request(server.url, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()

    try:  # round-robin, so that the machine's load weighs on each alike
        med = _interleaved({"http": http_get, "om": lambda: openmetrics_latest(reg), "text": lambda: generate_latest(reg),
                            "prebuilt": lambda: generate_latest(fixed), "empty": lambda: generate_latest(empty),
                            "update": lambda: feed.timeline.update(state)}, args.runs)
    finally:
        server.close()

    after: list[float] = []
    leaves = [n for n in sim.devices if sim.role(n) is Role.LEAF]
    for k in range(max(5, args.runs // 5)):  # a leaf polled anew (its records rebuilt, 246 uplinks), then a scrape
        feed.timeline.update(sim.device_state(leaves[k % len(leaves)], int(clock[0] * 1000)))
        t0 = time.perf_counter()
        generate_latest(reg)
        after.append(time.perf_counter() - t0)
    after_change = statistics.median(after) * 1000
    tracker.close()
    http, om, warm, base_text, base_empty, base_update = (med[k] for k in ("http", "om", "text", "prebuilt", "empty",
                                                                           "update"))

    from anycast_tui.ui import view  # counted as bench_incident.py counts them

    groups = len(view.group_views(feed.timeline.snapshot, feed.timeline.anycast_prefixes))
    print(f"fabric {args.spines}×{args.leaves}×2 ({len(sim.devices)} devices, {groups} groups, "
          f"resilient spine groups of 128 buckets), {len(tracker.incidents())} incidents; one scrape: "
          f"{len(text):,} bytes, {n_series:,} series")
    print(f"  scrape over HTTP as Prometheus makes it (text 0.0.4 gzipped, process_* too), warm: median {http:8.2f} ms  "
          f"(goal ≤ {GOAL_MS:.0f} ms: {'met' if http <= GOAL_MS else 'NOT met'})")
    print(f"  in process, OpenMetrics text (what prometheus_client's own server answers Prometheus), warm: "
          f"median {om:8.2f} ms")
    print(f"  in process, Prometheus text 0.0.4, warm:       median {warm:8.2f} ms  (goal ≤ {GOAL_MS:.0f} ms: "
          f"{'met' if warm <= GOAL_MS else 'NOT met'})")
    print(f"  text 0.0.4 after one device's records changed: median {after_change:8.2f} ms  (goal: "
          f"{'met' if after_change <= GOAL_MS else 'NOT met'})")
    print(f"  first scrape (every device derived):                  {cold:8.2f} ms")
    print(f"  baseline, exposition of an empty registry:     median {base_empty:8.3f} ms")
    print(f"  baseline, text 0.0.4 of the same series prebuilt: median {base_text:8.2f} ms  (scrape/text "
          f"{warm / base_text:.2f}×: the rest is reading the session)")
    print(f"  baseline, one device's poll into the timeline: median {base_update:8.3f} ms  "
          f"(scrape/update {warm / base_update:.1f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
