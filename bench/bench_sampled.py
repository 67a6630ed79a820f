#!/usr/bin/env python3
"""Benchmark: the sampled-flow window (``model.sampled``) — memory of a 5-minute window, cost per sample.

    python3 bench/bench_sampled.py [--rate 50000] [--window 300] [--flows 200000] [--max-flows 500000]

Feeds ``--rate`` samples per (simulated) second for ``--window`` seconds — 15 M samples at the defaults — drawn
from ``--flows`` distinct client flows to the anycast address with a Zipf-like popularity (a few heavy flows,
a long tail: what a 1:400 sampler sees of DNS and web traffic), in 2,000-sample batches (one sFlow
datagram carries up to ~8; a collector's sink gets one datagram's samples at a time: the batch here only
cuts Python call overhead of the bench itself), entering at one of 4 spines.  Prints the window's memory
(tracemalloc, the window's own allocations; and the process RSS growth) and the median µs per sample of
``SampledWindow.add``, and the same-run baseline: a plain ``dict`` counting the same samples by 5-tuple (the
least any per-flow window must do).  Then one ``flow_set`` (what an incident's impact reads) and its time.
"""

from __future__ import annotations

import argparse
import ipaddress
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anycast_tui.model.sampled import SampledWindow  # noqa: E402
from anycast_tui.model.samples import ExportKind, FlowSample  # noqa: E402
from anycast_tui.model.types import Role  # noqa: E402

ANY = ipaddress.ip_address("192.0.2.53").packed
BATCH = 2000


def pool(n: int, rng: np.random.Generator) -> list[FlowSample]:
    out = []
    for i in range(n):
        src = bytes([203, 0, 113, int(rng.integers(1, 255))])
        out.append(FlowSample("198.18.0.1", ExportKind.SFLOW, 1, 400, 3, 4, 4, 6 if i % 3 else 17, src, ANY,
                              int(rng.integers(1024, 65535)), 53 if i % 3 == 0 else 443, packets=1, octets=120))
    return out


def rss_mb() -> float:
    """Resident set size now (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--flows", type=int, default=200_000)
    ap.add_argument("--max-flows", type=int, default=500_000)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    samples = pool(a.flows, rng)
    total = a.rate * a.window
    zipf = np.minimum(rng.zipf(1.3, total) - 1, a.flows - 1)  # popularity: index 0 the heaviest
    spines = ("spine01", "spine02", "spine03", "spine04")
    print(f"{total:,} samples over {a.window} s at {a.rate:,}/s, {a.flows:,} distinct flows offered, "
          f"{len(np.unique(zipf)):,} of them sampled")

    # baseline: a dict counting by 5-tuple
    base: dict[tuple, int] = {}
    t = time.perf_counter()
    for k in range(0, total, BATCH):
        for j in zipf[k:k + BATCH]:
            s = samples[j]
            key = (s.family, s.proto, s.src, s.dst, s.sport, s.dport, s.flowlabel)
            base[key] = base.get(key, 0) + 1
    base_us = (time.perf_counter() - t) / total * 1e6
    del base

    rss0 = rss_mb()
    tracemalloc.start()
    w = SampledWindow(["192.0.2.53/32"], window_s=a.window, max_flows=a.max_flows)
    per_batch = []
    for k in range(0, total, BATCH):
        batch = [samples[j] for j in zipf[k:k + BATCH]]
        t = time.perf_counter()
        w.add(spines[k // BATCH % 4], Role.SPINE, batch)
        per_batch.append((time.perf_counter() - t) / len(batch) * 1e6)
    now = total / a.rate  # the window's end: every sample (all at 0 s) still inside it
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = time.perf_counter()
    fs = w.flow_set("192.0.2.53/32", now=now)
    fs_ms = (time.perf_counter() - t) * 1000
    print(f"window: {len(w):,} flows kept, {w.evicted:,} evicted over max_flows, {cur / 2**20:.1f} MiB "
          f"(tracemalloc, peak {peak / 2**20:.1f} MiB; RSS grew {rss_mb() - rss0:.0f} MiB)")
    print(f"add: median {statistics.median(per_batch):.2f} µs per sample "
          f"(baseline dict count by 5-tuple: {base_us:.2f} µs)  → "
          f"{1e6 / statistics.median(per_batch):,.0f} samples/s on one core")
    print(f"flow_set of {len(fs) if fs else 0:,} flows: {fs_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
