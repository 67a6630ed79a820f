#!/usr/bin/env python3
"""Benchmark: vectorised hash + hash-threshold mapping vs the kernel's own ``ip -batch route get``.

    python3 bench/bench_hash.py [--flows 1000000] [--kernel-flows 100000] [--runs 5]

Model: Linux multipath hash (policy 1, fixed seed) + hash-threshold over one
16-way group for N flows, median of several runs.  Baseline (same run): the
kernel answering ``route get ... iif`` for the first K of the same flows via one
``ip -batch -`` process in a namespace router (needs root; skipped otherwise).
The kernel's answers double as a correctness check.  Goals: >= 20x the kernel's
rate, <= 300 MB peak for 1,000,000 flows.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "kernel"))

import numpy as np  # noqa: E402

from anycast_tui.lab import netns  # noqa: E402
from anycast_tui.model.flowarray import FlowArray  # noqa: E402
from anycast_tui.model.hashing import linux_multipath_hash  # noqa: E402
from anycast_tui.model.mapping import hash_threshold  # noqa: E402

SEED = 0x12345678
WAYS = 16


def model_run(fa: FlowArray) -> np.ndarray:
    h = linux_multipath_hash(fa, policy=1, seed=SEED)
    return hash_threshold(h, [1] * WAYS)


def kernel_runs(fa: FlowArray, runs: int) -> tuple[list[float], np.ndarray] | str:
    why = netns.available()
    if why is not None:
        return why
    from kernelrouter import KernelRouter, parse_route_get_json  # tests/kernel: the kernel tests' builder

    lines = [f"route get {f.dst} from {f.src} iif rin ipproto {f.proto} sport {f.sport} dport {f.dport}"
             for f in fa.flows()]
    with netns.Namespaces("bench-") as group:
        r = KernelRouter.build(group, WAYS, seed=SEED, policy=1)
        r.route_multipath(range(WAYS))
        times = []
        out = ""
        for _ in range(runs):  # only the ip process is timed
            t = time.perf_counter()
            out = netns.batch(r.router, lines, json=True)
            times.append(time.perf_counter() - t)
        gw = r.gateway_index()
        got = np.array([gw.get(g or "", -1) for g in parse_route_get_json(out, len(lines))])
        return times, got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--kernel-flows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kernel-runs", type=int, default=3)
    a = ap.parse_args()

    fa = FlowArray.random(a.flows, rng=np.random.default_rng(1))
    model_run(fa.take(np.arange(1000)))  # warm up
    times = []
    for _ in range(a.runs):
        t = time.perf_counter()
        idx = model_run(fa)
        times.append(time.perf_counter() - t)
    m_med = statistics.median(times)
    m_rate = a.flows / m_med

    tracemalloc.start()
    model_run(fa)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    flows_mb = fa.nbytes / 2**20
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"model   hash+hash-threshold, {a.flows:,} flows, {WAYS}-way: median {m_med * 1000:.0f} ms "
          f"over {a.runs} runs = {m_rate / 1e6:.2f} M flows/s")
    print(f"memory  flows {flows_mb:.0f} MB + computing peak {peak / 2**20:.0f} MB (tracemalloc); "
          f"process max RSS {rss_mb:.0f} MB (goal <= 300 MB)")

    kflows = fa.take(np.arange(min(a.kernel_flows, a.flows)))
    res = kernel_runs(kflows, a.kernel_runs)
    if isinstance(res, str):
        print(f"kernel  baseline skipped: {res}")
        return 0
    ktimes, got = res
    k_med = statistics.median(ktimes)
    k_rate = len(kflows) / k_med
    agree = float((got == idx[: len(kflows)]).mean())
    print(f"kernel  ip -batch route get, {len(kflows):,} flows: median {k_med * 1000:.0f} ms over "
          f"{a.kernel_runs} runs = {k_rate / 1e3:.1f} k flows/s; model agrees on {agree:.2%}")
    ratio = m_rate / k_rate
    print(f"ratio   model / kernel = {ratio:.0f}x (goal >= 20x): {'OK' if ratio >= 20 else 'BELOW GOAL'}")
    return 0 if agree == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
