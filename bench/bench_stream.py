"""Benchmark: latency from a change in the simulated fabric to the changed state in the Poller.

    python3 bench/bench_stream.py [--changes 30] [--interval 1.0] [--monitor-poll S]

The simulated fabric (2 spines, 4 leaves, 1 server each) is served by the
embedded SSH farm on 127.0.0.1, every device answering ``ip -o monitor route
link nexthop`` with a stream (anycast_tui.lab.simmonitor: woken by the simulator's
change notification, or with ``--monitor-poll S`` polling it every S seconds as it
used to).  A change is a link
spine01-leafNN failing or coming back; latency runs from the sim call to the
``on_state`` callback whose spine01 state shows the new anycast next-hop count.
Measured in the same run:

* streaming: ``ip -o monitor`` lines wake a debounced (50 ms) re-poll;
* baseline: polling only (stream=False) at the same ``--interval`` (the resync
  interval of the streaming run).

Goal: streaming p50 <= 200 ms.  Client and server share one event loop here
(a worst case for the client: the server's work delays it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.lab.simmonitor import with_monitor  # noqa: E402
from anycast_tui.lab.sshserver import SSHFarm  # noqa: E402
from anycast_tui.model.types import DeviceState  # noqa: E402

GOAL_MS = 200.0


def _nexthops(st: DeviceState) -> int:
    return sum(len(r.nexthops) for r in st.routes if r.dst == "192.0.2.53/32")


async def _run(stream: bool, changes: int, interval_s: float, workdir: Path,
               monitor_poll_s: float | None = None) -> list[float]:
    sim = SimFabric(SimConfig(spines=2, leaves=4, servers_per_leaf=1))
    farm = SSHFarm({n: with_monitor(sim, n, poll_s=monitor_poll_s) for n in sim.devices}, workdir=workdir)
    await farm.start()
    want: dict[str, object] = {"n": None, "t0": 0.0, "done": asyncio.Event()}

    def on_state(st: DeviceState) -> None:
        if st.device.name == "spine01" and want["n"] is not None and _nexthops(st) == want["n"]:
            want["t1"] = time.perf_counter()
            want["n"] = None
            want["done"].set()  # type: ignore[attr-defined]

    inv = farm.inventory(sim.roles(), command_timeout_s=5.0, stream=stream)
    poller = Poller(inv, interval_s=interval_s, on_state=on_state)
    out: list[float] = []
    try:
        await poller.start()
        while not all(poller.polls(n) for n in sim.devices) or (stream and not all(
                ep.counters.streams for ep in farm.endpoints.values())):
            await asyncio.sleep(0.01)
        leaves = [f"leaf{i:02d}" for i in range(1, 5)]
        for k in range(changes):
            await asyncio.sleep(0.05 + (k % 7) * interval_s / 7)  # spread over the poll phase
            leaf = leaves[(k // 2) % len(leaves)]
            before = _nexthops(poller.snapshot().devices["spine01"])
            want["done"] = asyncio.Event()
            if k % 2 == 0:
                want["n"] = before - 1
                want["t0"] = time.perf_counter()
                sim.fail_link("spine01", leaf)
            else:
                want["n"] = before + 1
                want["t0"] = time.perf_counter()
                sim.restore_link("spine01", leaf)
            await asyncio.wait_for(want["done"].wait(), 10 * interval_s + 10)  # type: ignore[attr-defined]
            out.append((want["t1"] - want["t0"]) * 1000)  # type: ignore[operator]
    finally:
        await poller.stop()
        await farm.stop()
    return out


def _report(label: str, ms: list[float]) -> float:
    q = statistics.quantiles(ms, n=10)
    med = statistics.median(ms)
    print(f"  {label:<48} p50 {med:7.1f} ms  (p10 {q[0]:.1f}, p90 {q[-1]:.1f}, max {max(ms):.1f}; n={len(ms)})")
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--interval", type=float, default=1.0, help="periodic poll interval (s), both runs")
    ap.add_argument("--monitor-poll", type=float, metavar="S",
                    help="the simulated monitor polls the simulator every S s instead of being woken by it")
    args = ap.parse_args()
    changes = max(10, args.changes)
    print(f"bench_stream: sim fabric 2 spines x 4 leaves over SSH on 127.0.0.1, {os.cpu_count()} CPUs, "
          f"{changes} changes, poll interval {args.interval:g} s, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="atui-bench-") as tmp:
        streamed = asyncio.run(_run(True, changes, args.interval, Path(tmp) / "s", args.monitor_poll))
        polled = asyncio.run(_run(False, changes, args.interval, Path(tmp) / "p"))
    how = "event-driven" if args.monitor_poll is None else f"polled every {args.monitor_poll:g} s"
    s = _report(f"streaming (sim monitor {how}, debounce 50 ms)", streamed)
    p = _report(f"baseline: polling only every {args.interval:g} s", polled)
    verdict = "meets" if s <= GOAL_MS else "MISSES"
    print(f"result: streaming p50 {s:.1f} ms {verdict} the {GOAL_MS:.0f} ms goal; "
          f"{p / s:.1f}x lower than polling only ({p:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
