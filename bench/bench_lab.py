#!/usr/bin/env python3
"""Lab figures (root): ``python3 bench/bench_lab.py [--failures 20] [--quick]``.

1. Event latency: ``lab fail leafNN`` (BGP lab 2x4, collector over SSH at 1 s
   poll) until the change is an event in the monitor's state (a spine's state
   differs from before by a next-hop removal of 192.0.2.53/32); p50/p95 over
   N failures.  Baseline: the 2-poll-interval budget (2 s).
2. ``lab up`` / ``lab down`` wall time for 2x4 and 4x16, static and BGP (median
   of runs).  Baseline for the build step: the same namespaces, veths and
   addresses made with one ``ip`` process per command instead of ``ip -batch``.

Uses the prefix ``atui-bench-`` and its own state dirs; removes everything.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anycast_tui.collect.inventory import load_inventory  # noqa: E402
from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.lab import labctl, netns, nslab  # noqa: E402
from anycast_tui.model import events  # noqa: E402
from anycast_tui.model.types import DeviceState, EventKind  # noqa: E402

PREFIX = "atui-bench-"
ANY = f"{nslab.ANYCAST}/32"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def cfg(tmp: Path, spines: int, leaves: int, routing: str) -> labctl.LabConfig:
    return labctl.LabConfig(spines=spines, leaves=leaves, routing=routing, prefix=PREFIX,
                            state_dir=str(tmp / "state"), inventory=str(tmp / "lab.toml"))


# --------------------------------------------------------------------------- up / down


def naive_create(topo: nslab.Topology) -> None:
    """Baseline: one ip / sysctl process per command."""
    for n in topo.nodes.values():
        subprocess.run(["ip", "netns", "add", n.ns], check=True)
    for ln in topo.links:
        subprocess.run(["ip", "link", "add", ln.b, "netns", topo.node(ln.a).ns, "type", "veth", "peer", "name", ln.a,
                        "netns", topo.node(ln.b).ns], check=True)
    for n in topo.nodes.values():
        for kv in nslab.sysctls(n):
            subprocess.run(["ip", "netns", "exec", n.ns, "sysctl", "-q", "-w", kv], check=True)
        for line in nslab.base_lines(topo, n):
            subprocess.run(["ip", "-n", n.ns, *line.split()], check=True)


def bench_build(spines: int, leaves: int, runs: int) -> None:
    topo = nslab.build_topology(spines, leaves, prefix=PREFIX)
    ours, base = [], []
    for _ in range(runs):
        t = time.perf_counter()
        nslab.create(topo)
        ours.append(time.perf_counter() - t)
        nslab.destroy(PREFIX)
        t = time.perf_counter()
        naive_create(topo)
        base.append(time.perf_counter() - t)
        nslab.destroy(PREFIX)
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"  build {spines}x{leaves} (namespaces+veths+addresses+sysctls): ip -batch {mo:.3f} s, "
          f"baseline one-process-per-command {mb:.3f} s  ({mb / mo:.1f}x)")


def bench_up_down(spines: int, leaves: int, routing: str, runs: int) -> None:
    ups, downs = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            labctl.Lab.up(cfg(Path(d), spines, leaves, routing))
            ups.append(time.perf_counter() - t)
            t = time.perf_counter()
            labctl.down(PREFIX, Path(d) / "state")
            downs.append(time.perf_counter() - t)
    print(f"  lab up {spines}x{leaves} {routing:6}: median {statistics.median(ups):.2f} s "
          f"(runs {', '.join(f'{x:.2f}' for x in ups)}); lab down median {statistics.median(downs):.2f} s")


# --------------------------------------------------------------------------- event latency


def _width(st: DeviceState) -> int:
    for r in st.routes:
        if r.dst == ANY and r.table == "main":
            return len(r.nexthops)
    return 0


async def event_latency(lab: labctl.Lab, failures: int) -> list[float]:
    inv = load_inventory(lab.cfg.inventory)
    latest: dict[str, DeviceState] = {}
    seen: dict[str, float] = {}
    watch: dict[str, DeviceState] = {}  # spine -> state before the failure

    def on_state(st: DeviceState) -> None:
        name = st.device.name
        latest[name] = st
        base = watch.get(name)
        if base is not None and name not in seen:
            evs = events.diff_device(base, st, int(time.time() * 1000))
            if any(e.kind is EventKind.NEXTHOP_REMOVED and e.prefix == ANY for e in evs):
                seen[name] = time.time()

    spines = [s.name for s in lab.topo.role("spine")]
    leaves = [x.name for x in lab.topo.role("leaf")]
    out: list[float] = []
    async with Poller(inv, interval_s=1.0, on_state=on_state):
        while not all(s in latest for s in spines):
            await asyncio.sleep(0.05)
        for i in range(failures):
            leaf = leaves[i % len(leaves)]
            while not all(_width(latest[s]) == len(leaves) for s in spines):  # restored state collected
                await asyncio.sleep(0.05)
            watch.clear()
            seen.clear()
            watch.update({s: latest[s] for s in spines})
            t0 = time.time()
            await asyncio.to_thread(lab.fail, leaf)
            while len(seen) < len(spines):
                await asyncio.sleep(0.01)
            out.append(max(seen.values()) - t0)  # the event is on every spine
            watch.clear()
            await asyncio.to_thread(lambda: (lab.restore(leaf), lab.wait_converged()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--failures", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3, help="runs per up/down figure")
    ap.add_argument("--quick", action="store_true", help="5 failures, 1 run each")
    ap.add_argument("--latency-only", action="store_true", help="skip the up/down figures")
    a = ap.parse_args()
    if a.quick:
        a.failures, a.runs = 5, 1
    why = netns.available()
    if why:
        print(f"bench_lab: {why}", file=sys.stderr)
        return 2
    labctl.down(PREFIX)
    try:
        print("lab up / down (wall time):" if not a.latency_only else "lab up / down: skipped")
        for s, l in (((2, 4), (4, 16)) if not a.latency_only else ()):
            bench_build(s, l, a.runs)
            for routing in ("static", "bgp"):
                bench_up_down(s, l, routing, a.runs)
        print(f"event latency, lab fail leafNN -> event in the monitor's state, 1 s poll, BGP 2x4, "
              f"{a.failures} failures:")
        with tempfile.TemporaryDirectory() as d:
            lab = labctl.Lab.up(cfg(Path(d), 2, 4, "bgp"))
            try:
                lat = asyncio.run(event_latency(lab, a.failures))
            finally:
                labctl.down(PREFIX, Path(d) / "state")
        p50, p95 = statistics.median(lat), pct(lat, 0.95)
        print(f"  p50 {p50:.3f} s, p95 {p95:.3f} s, max {max(lat):.3f} s; baseline budget 2 poll intervals = 2.000 s "
              f"({'within' if p95 <= 2.0 else 'OVER'} budget at p95)")
    finally:
        labctl.down(PREFIX)
    return 0


if __name__ == "__main__":
    sys.exit(main())
