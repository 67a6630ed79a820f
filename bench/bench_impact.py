"""Benchmark: impact of one failure on 1,000,000 flows through a two-stage fabric (spine → leaf → server).

Run: ``python3 bench/bench_impact.py [--flows N] [--repeat R] [--sample S]``

Fabric: the simulated 2-spine × 4-leaf × 2-servers-per-leaf fabric (anycast_tui.lab.sim), every device with
its own hash seed (policy 1); flows enter at spine01 or spine02.  The failure: leaf03 goes down.

Prints medians of:
* ``impact (cold)``: impact() from nothing: both snapshots traced, every hash computed;
* ``impact (warm)``: impact() when the before paths and their hashes are already known (what a monitor or a
  what-if sweep has): only flows that visited a changed device are re-traced;
* ``baseline``: a plain per-flow Python loop (route walk + linux_multipath_hash_one + hash_threshold_one,
  before and after) on a sample, extrapolated to all flows; and the speed-up of the cold impact over it;
* ``peak memory``: the peak RSS of a fresh process that builds the flows and runs one cold impact.
Goals: cold impact ≤ 0.5 s, ≥ 50× the baseline, ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.model.flows import synthetic_flows  # noqa: E402
from anycast_tui.model.flowarray import FlowArray  # noqa: E402
from anycast_tui.model.hashing import linux_multipath_hash_one  # noqa: E402
from anycast_tui.model.impact import impact  # noqa: E402
from anycast_tui.model.whatif import WhatIf, WhatIfKind, apply  # noqa: E402
from anycast_tui.model.mapping import hash_threshold_one  # noqa: E402
from anycast_tui.model.paths import MAX_HOPS, Tracer, address_map  # noqa: E402
from anycast_tui.model.placement import HashCache  # noqa: E402
from anycast_tui.model.types import FabricSnapshot, Flow  # noqa: E402

GOAL_S, GOAL_X, GOAL_MB = 0.5, 50.0, 300.0
FAILURE = WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03")


def setup(n: int) -> tuple[FabricSnapshot, FabricSnapshot, FlowArray, tuple[list[str], np.ndarray]]:
    before = SimFabric(SimConfig(spines=2, leaves=4, servers_per_leaf=2)).snapshot()
    after = apply(before, FAILURE)
    flows = synthetic_flows(20_000, n, seed=1)
    ingress = (["spine01", "spine02"], (np.arange(n) % 2).astype(np.int32))  # factorized: (names, codes)
    return before, after, flows, ingress


# --------------------------------------------------------------------------- baseline: one flow at a time


class PerFlowWalker:
    """The obvious implementation: per flow, per hop, scan the routes, hash, pick, resolve the gateway."""

    def __init__(self, snap: FabricSnapshot):
        self.snap = snap
        self.owners = address_map(snap)
        self.local = {n: {a.local for i in s.interfaces for a in i.addresses} for n, s in snap.devices.items()}
        self.routes = {}
        for name, state in snap.devices.items():
            rs = [(ipaddress.ip_network(r.dst), r) for r in state.routes if r.table in ("main", "local")]
            rs.sort(key=lambda x: (-x[0].prefixlen, x[1].metric or 0))
            self.routes[name] = rs

    def end(self, flow: Flow, ingress: str) -> str:
        dev = ingress
        dst = ipaddress.ip_address(flow.dst)
        for _ in range(MAX_HOPS):
            if dev not in self.snap.devices:
                return "gone"
            if flow.dst in self.local[dev]:
                return dev
            state = self.snap.devices[dev]
            route = next((r for net, r in self.routes[dev] if dst in net
                          and (r.type != "unicast" or any(not nh.dead for nh in r.nexthops))), None)
            if route is None or route.type != "unicast":
                return f"{dev}: {'no route' if route is None else route.type}"
            nhs = route.nexthops
            if len(nhs) > 1:
                hs = state.hash
                h = linux_multipath_hash_one(flow, policy=hs.policy, seed=hs.seed, fields=hs.fields)
                nh = nhs[hash_threshold_one(h, [x.weight for x in nhs], [not x.dead for x in nhs])]
            else:
                nh = nhs[0]
            nxt = self.owners.get(nh.gateway)
            if nxt is None:
                return f"{dev} via {nh.gateway}"
            dev = nxt
        return "loop"


def baseline_seconds_per_flow(before: FabricSnapshot, after: FabricSnapshot, flows: FlowArray,
                              ingress: tuple[list[str], np.ndarray], sample: int) -> tuple[float, int]:
    wb, wa = PerFlowWalker(before), PerFlowWalker(after)
    rows = np.linspace(0, len(flows) - 1, sample).astype(int)
    t = time.perf_counter()
    moved = 0
    for i in rows:
        f = flows.flow(int(i))
        dev = ingress[0][ingress[1][i]]
        moved += wb.end(f, dev) != wa.end(f, dev)
    return (time.perf_counter() - t) / sample, moved


# --------------------------------------------------------------------------- vectorised


def cold(before, after, flows, ingress):
    return impact(before, after, flows, ingress, change=FAILURE)


def warm_inputs(before, flows, ingress):
    cache = HashCache(flows)
    res = Tracer(before, flows, cache).trace(ingress)
    return cache, res


def median_time(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``fn`` (CPU time is what a shared, loaded machine distorts least)."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(times), statistics.median(cpu), out


def peak_rss_mb(n: int) -> float:
    """Peak RSS of a child process that builds the flows and runs one cold impact."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so it would include this process
    code = ("import sys; sys.path.insert(0, %r); import bench_impact as b; "
            "x = b.setup(%d); b.cold(*x); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
            % (str(Path(__file__).resolve().parent), n))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sample", type=int, default=2_000, help="flows walked by the per-flow baseline")
    args = ap.parse_args()
    n = args.flows
    before, after, flows, ingress = setup(n)
    print(f"fabric: {len(before.devices)} devices (2 spines, 4 leaves, 8 servers); {n:,} flows; "
          f"failure: {FAILURE.label}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    t_cold, c_cold, imp = median_time(lambda: cold(before, after, flows, ingress), args.repeat)
    c = imp.counts
    print(f"moved {c['moved']:,} (TCP reset {c['tcp_reset']:,}, UDP {c['udp']:,}, collateral {c['collateral']:,})")

    warm_times, warm_cpu = [], []
    for _ in range(args.repeat):
        cache, res = warm_inputs(before, flows, ingress)
        t, cp = time.perf_counter(), time.process_time()
        w = impact(before, after, flows, ingress, change=FAILURE, cache=cache, before_result=res)
        warm_times.append(time.perf_counter() - t)
        warm_cpu.append(time.process_time() - cp)
        assert w.counts == c
    t_warm, c_warm = statistics.median(warm_times), statistics.median(warm_cpu)

    cp = time.process_time()
    per_flow, moved_sample = baseline_seconds_per_flow(before, after, flows, ingress, args.sample)
    cpu_per_flow = (time.process_time() - cp) / args.sample
    rows = np.linspace(0, n - 1, args.sample).astype(int)
    assert moved_sample == int(imp.moved[rows].sum()), "baseline and vectorised disagree"
    t_base = per_flow * n
    speedup = t_base / t_cold
    mb = peak_rss_mb(n)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"impact (cold)  median {t_cold:7.3f} s wall, {c_cold:7.3f} s CPU   goal <= {GOAL_S} s   "
          f"{verdict(t_cold <= GOAL_S)} (wall), {verdict(c_cold <= GOAL_S)} (CPU)")
    print(f"impact (warm)  median {t_warm:7.3f} s wall, {c_warm:7.3f} s CPU   goal <= {GOAL_S} s   "
          f"{verdict(t_warm <= GOAL_S)} (wall), {verdict(c_warm <= GOAL_S)} (CPU)")
    print(f"baseline       {per_flow * 1e6:9.1f} us/flow wall ({cpu_per_flow * 1e6:.1f} CPU) on {args.sample:,} flows"
          f" -> {t_base:8.1f} s for {n:,}")
    print(f"speed-up       cold {speedup:7.0f}x  warm {t_base / t_warm:7.0f}x (wall; CPU: cold "
          f"{cpu_per_flow * n / c_cold:.0f}x)   goal >= {GOAL_X:.0f}x   {verdict(speedup >= GOAL_X)}")
    print(f"peak memory    {mb:7.0f} MB (RSS, fresh process)   goal <= {GOAL_MB:.0f} MB   {verdict(mb <= GOAL_MB)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
