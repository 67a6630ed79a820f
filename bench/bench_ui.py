#!/usr/bin/env python3
"""Benchmark: the TUI's cost of a burst of timeline updates, coalesced vs redrawn per update.

    python3 bench/bench_ui.py [--updates 100] [--runs 3]

Fabric: the simulated 2×4×1 demo fabric through the real parsers (SimSession),
leaf03 failing and coming back between bursts so every poll produces events.
Measured (median of runs, headless app at 200×60): the wall time from the
first update of a burst until the screen has been redrawn, for
* ``coalesced``: what the app does — updates only mark the view dirty, one redraw per tick (≤ 4/s);
* ``baseline``: redrawing after every update (what a naive listener would do).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anycast_tui.lab.sim import SimFabric  # noqa: E402
from anycast_tui.model.types import DeviceState  # noqa: E402
from anycast_tui.session import SimSession  # noqa: E402
from anycast_tui.ui.app import AnycastApp  # noqa: E402

T0 = 1_764_000_000.0


def _states(n: int) -> tuple[SimSession, list[DeviceState]]:
    """n device states from polls of the simulator (alternating leaf03 down / up), collected once."""
    clock = [T0]
    sim = SimFabric(clock=lambda: clock[0])
    feed = SimSession(sim, clock=lambda: clock[0])
    states: list[DeviceState] = []
    feed.timeline.subscribe(lambda ch: None)
    while len(states) < n:
        (sim.fail_device if sim.is_up("leaf03") else sim.restore_device)("leaf03")
        clock[0] += 1
        feed.poll()
        states += [feed.timeline.snapshot.devices[d] for d in sim.devices]
    target = SimSession(SimFabric(clock=lambda: T0), clock=lambda: T0)
    return target, states[:n]


async def _burst(coalesced: bool, n: int) -> float:
    session, states = _states(n)
    app = AnycastApp(session, clock=lambda: T0)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        for st in states:
            session.timeline.update(st)
            if not coalesced:
                app.flush()
                await pilot.pause()  # let the compositor draw each update
        if coalesced:
            app._tick()  # the next 4 Hz tick: one redraw for the whole burst
            await pilot.pause()
        return time.perf_counter() - t0


async def _idle(n: int) -> float:
    """One pilot pause with nothing to draw: the harness's own cost per redraw in the baseline."""
    session, _ = _states(1)
    app = AnycastApp(session, clock=lambda: T0)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        for _ in range(n):
            await pilot.pause()
        return (time.perf_counter() - t0) / n


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    res: dict[str, list[float]] = {"coalesced": [], "baseline": []}
    for _ in range(args.runs):
        res["coalesced"].append(await _burst(True, args.updates))
        res["baseline"].append(await _burst(False, args.updates))
    med = {k: statistics.median(v) for k, v in res.items()}
    idle = await _idle(20)
    print(f"burst of {args.updates} device updates, median of {args.runs} runs (200x60 headless):")
    for k in ("coalesced", "baseline"):
        print(f"  {k:<10} {med[k] * 1000:9.1f} ms  ({med[k] / args.updates * 1e6:7.0f} us/update)")
    print(f"  coalescing is {med['baseline'] / med['coalesced']:.1f}x faster than redrawing per update")
    print(f"  (harness: an idle pilot pause costs {idle * 1000:.1f} ms; baseline minus that: "
          f"{(med['baseline'] / args.updates - idle) * 1000:.1f} ms per redraw)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
