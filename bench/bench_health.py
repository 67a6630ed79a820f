#!/usr/bin/env python3
"""Benchmark: every health check (``model.health.evaluate``) on the large fabric.

    python3 bench/bench_health.py [--flows 100000] [--runs 5] [--spines 246] [--leaves 4] [--live 2000]
    python3 bench/bench_health.py --devices 2000 [--baseline-devices 100]     # a fleet viewer's fabric

The fabric: ``--spines`` × ``--leaves`` × 2 servers (IPv4 and IPv6 anycast, 516 groups at the defaults: the
fabric of bench_incident.py), its snapshot as the simulator gives it; ``--flows`` sample flows to the IPv4
address and the checks' own IPv6 sample (``shares.health_sample``: 10,000 flows) to the IPv6 one, as the
monitor evaluates them; ``--live`` live TCP connections on the servers (so the
TCP rules run: hash-threshold-tcp with its what-if, long-lived TCP after a second evaluation past the
threshold, with its worst-failure search).  Goal: ≤ 1 s per evaluation.

Baseline, same run: one end-to-end placement of the same flows on the same snapshot (``model.ingress`` +
``paths.Tracer.trace``, a fresh hash cache), which the checks build on.  Medians.

``--devices N``: instead, the fabric of bench_nats.py (4 spines of ~12,000 routes, (N − 4) / 2 leaves of ~4,000
routes and a server each: ~4 M routes at 2,000 devices, what a bus viewer holds), the checks' own samples.  The
first evaluation (nothing compiled yet: what a viewer that just joined runs) and the next ones (compiled devices
kept), with the growth of the process's RSS.  Baseline, same run: every route of ``--baseline-devices`` of its
devices (evenly spaced in name order) resolved up front (``placement.compile_device``, what
every device of an evaluation cost before routes were resolved on use), scaled to the fabric by routes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.model.flows import synthetic_flows  # noqa: E402
from anycast_tui.model.health import HealthTracker, evaluate  # noqa: E402
from anycast_tui.model.ingress import ingress_of  # noqa: E402
from anycast_tui.model.paths import Tracer  # noqa: E402
from anycast_tui.model.shares import health_sample  # noqa: E402
from anycast_tui.model.types import Flow, Role  # noqa: E402

GOAL_S = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for opt, default in (("--flows", 100_000), ("--runs", 5), ("--spines", 246), ("--leaves", 4), ("--live", 2000),
                         ("--devices", 0), ("--baseline-devices", 100)):
        ap.add_argument(opt, type=int, default=default)
    args = ap.parse_args()
    if args.devices:
        return fleet(args)

    sim = SimFabric(SimConfig(spines=args.spines, leaves=args.leaves, servers_per_leaf=2))
    t0 = 1_764_000_000_000
    snap = sim.snapshot(t0)
    servers = sorted(n for n, s in snap.devices.items() if s.device.role is Role.SERVER)
    devices = dict(snap.devices)
    for i, name in enumerate(servers):  # live TCP connections to the anycast address, spread over the servers
        devices[name] = replace(devices[name], flows=tuple(
            Flow(6, f"203.0.113.{1 + k % 250}", 20000 + k, "192.0.2.53", 443)
            for k in range(i, args.live, len(servers))))
    snap = replace(snap, devices=devices)
    n_groups = sum(1 for st in snap.devices.values() for r in st.routes
                   if r.dst in snap.anycast_prefixes and (r.nhid is not None or len(r.nexthops) > 1))
    sample = {"192.0.2.53": synthetic_flows(200, args.flows, dst="192.0.2.53")}

    def sample_of(dst: str):  # noqa: ANN202
        return sample.get(dst) or health_sample(dst)

    flows = sample["192.0.2.53"]
    tracker = HealthTracker()
    evaluate(snap, sample_of=sample_of, tracker=tracker)  # warm: compiled devices (the monitor keeps them)
    later = replace(snap, taken_at_ms=t0 + 400_000)  # the live connections are long-lived from here on
    evals, base = [], []
    report = None
    for _ in range(args.runs):
        t = time.perf_counter()
        report = evaluate(later, sample_of=sample_of, tracker=tracker)
        evals.append(time.perf_counter() - t)
        t = time.perf_counter()
        ingress, _ = ingress_of(later, flows)
        Tracer(later, flows).trace(ingress)
        base.append(time.perf_counter() - t)
    assert report is not None
    ev, bl = statistics.median(evals), statistics.median(base)
    rules = sorted({f.rule for f in report.findings})
    print(f"large fabric ({args.spines}×{args.leaves}×2, {n_groups} multipath anycast groups), {args.flows:,} sample flows, "
          f"{args.live:,} live TCP connections, {args.runs} runs:")
    print(f"  all checks (evaluate): median {ev * 1000:8.1f} ms  (goal ≤ {GOAL_S * 1000:.0f} ms: "
          f"{'met' if ev <= GOAL_S else 'NOT met'})")
    print(f"  baseline, one end-to-end placement of the same flows: median {bl * 1000:8.1f} ms  "
          f"(checks/baseline {ev / bl:.2f}×)")
    print(f"  findings: {len(report.findings)} ({', '.join(rules) or 'none'}); spreads: {len(report.spreads)}; "
          f"shares: {len(report.shares)}")
    return 0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fleet(args: argparse.Namespace) -> int:
    from anycast_tui.model.placement import compile_device

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_nats import _fabric

    snap = _fabric(args.devices).snapshot(1_764_000_000_000)
    routes = sum(len(st.routes) for st in snap.devices.values())
    rss0 = _rss_mb()
    t = time.perf_counter()
    report = evaluate(snap)
    cold = time.perf_counter() - t
    rss1 = _rss_mb()
    warm = []
    for k in range(args.runs):
        t = time.perf_counter()
        evaluate(replace(snap, taken_at_ms=snap.taken_at_ms + 1000 * (k + 1)))
        warm.append(time.perf_counter() - t)
    rss2 = _rss_mb()
    names = sorted(snap.devices)
    step = max(1, len(names) // max(1, args.baseline_devices))
    some = names[::step][:args.baseline_devices]
    some_routes = sum(len(snap.devices[n].routes) for n in some)
    t = time.perf_counter()
    for n in some:
        compile_device(snap.devices[n])
    eager = (time.perf_counter() - t) * routes / max(1, some_routes)
    print(f"fleet fabric: {len(snap.devices):,} devices, {routes:,} routes, {len(snap.anycast_prefixes)} anycast prefixes:")
    print(f"  all checks, first evaluation (nothing compiled): {cold:6.2f} s, RSS +{rss1 - rss0:,.0f} MB")
    print(f"  all checks, next evaluations: median {statistics.median(warm):6.2f} s ({args.runs} runs), "
          f"RSS +{rss2 - rss1:,.0f} MB more")
    print(f"  baseline, every route of {len(some)} devices resolved up front, scaled to the fabric's {routes:,} routes: "
          f"{eager:6.1f} s (first evaluation / baseline {cold / eager:.3f})")
    print(f"  findings: {len(report.findings)} ({', '.join(sorted({f.rule for f in report.findings})) or 'none'}); "
          f"spreads: {len(report.spreads)}; shares: {len(report.shares)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
