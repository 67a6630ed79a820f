#!/usr/bin/env python3
"""Benchmark: the TUI's cost of a burst of timeline updates, coalesced vs redrawn per update; key press to
screen with 100,000 flows; app RSS; the demo's idle CPU and bytes written to its terminal.

    python3 bench/bench_ui.py [--updates 100] [--runs 3] [--flows 100000] [--idle-s 60] [--burst-s 25] [--no-demo]
                              [--no-scale | --only-scale] [--spines 246] [--leaves 4]

Fabric: the simulated 2×4×1 demo fabric through the real parsers (SimSession),
leaf03 failing and coming back between bursts so every poll produces events.
Measured (median of runs, headless app at 200×60): the wall time from the
first update of a burst until the screen has been redrawn, for
* ``coalesced``: what the app does — updates only mark the view dirty, one redraw per tick (≤ 4/s);
* ``baseline``: redrawing after every update (what a naive listener would do).

Key press to screen (``--flows`` sample flows, Flows view shown, 200×60): ``]`` selecting the next event
(the Flows view re-marks every flow) and the last key of a ``/`` filter (it applies as you type), pressed with
Pilot and timed from the press to the last frame the app composed before Pilot found it idle again; also the
press to Pilot idle (Textual's wait_for_idle sleeps in 20 ms steps: an upper bound), and both for a key bound to
nothing (the harness's own cost).

Large fabric (``--spines`` 246 × ``--leaves`` 4 × 2 servers, IPv4 and IPv6 anycast: 516 groups in the Groups
view, 500 of them multipath, with ``--flows`` flows; the timeline gets the simulator's whole snapshot per poll,
without the parsers, so the set-up takes ~1 min not ~10): a spine-leaf link fails and comes back, then ``]`` to
an event whose moved flows differ from its neighbour's (every flow re-marked) with the Flows view and with the
Groups view shown, a ``/`` filter, and the unbound-key baseline; app RSS.  ``--only-scale`` runs just that.

Demo (a real ``anycast-tui demo`` on a pty, 200×60, 1 s polls): CPU of the whole process (TUI, poller,
the SSH farm it talks to) over ``--idle-s`` seconds with no scenario; bytes written to the terminal per
second while idle, and during the scripted leaf03 failure/restore (``--burst-s`` seconds).
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
            app.tick()  # the next 4 Hz tick: one redraw for the whole burst
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


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Frames:
    """When the app composed its frames (``App._display``: the compositor's update, what a terminal gets).

    Pilot's press + pause returns only once the app is idle (Textual's ``wait_for_idle`` sleeps in 20 ms
    steps until the process stops working), so it bounds the key-to-screen time from above; the last frame
    composed between the press and that idle point is when the screen showed the key's effect.
    """

    def __init__(self, app: AnycastApp) -> None:
        self.times: list[float] = []
        draw = app._display

        def display(screen, renderable) -> None:  # noqa: ANN001
            if renderable is not None:
                self.times.append(time.perf_counter())
            draw(screen, renderable)

        app._display = display  # type: ignore[method-assign]

    def last_since(self, t0: float) -> float:
        """Seconds from ``t0`` to the last frame composed after it (nan: none)."""
        after = [t for t in self.times if t >= t0]
        return after[-1] - t0 if after else float("nan")


async def _timed(pilot, frames: _Frames, out: dict[str, list[float]], name: str, *keys: str) -> None:  # noqa: ANN001
    """Press ``keys``; into ``out``: press to the last frame composed (``name``) and to Pilot idle (``name, idle``)."""
    t0 = time.perf_counter()
    await pilot.press(*keys)
    await pilot.pause()
    t1 = time.perf_counter()
    out.setdefault(name, []).append(frames.last_since(t0))
    out.setdefault(f"{name}, idle", []).append(t1 - t0)


async def _filter_and_baseline(pilot, frames: _Frames, out: dict[str, list[float]], word: str) -> None:  # noqa: ANN001
    """Time the filter's last key (it applies as you type) and then an unbound key, into ``out``."""
    await pilot.press("slash", "ctrl+u", *word[:-1])
    await pilot.pause()
    await _timed(pilot, frames, out, "filter", word[-1])
    await pilot.press("enter")
    await pilot.pause()
    await _timed(pilot, frames, out, "baseline (unbound key)", "z")


async def _keys(n_flows: int, runs: int) -> dict[str, list[float]]:
    """Press-to-idle times for ] (next event), a filter, and an unbound key, with ``n_flows`` flows."""
    from anycast_tui.lab.demo import SimControls
    from anycast_tui.impacttracker import ImpactTracker

    clock = [T0]
    sim = SimFabric(clock=lambda: clock[0])
    session = SimSession(sim, clock=lambda: clock[0])
    session.poll()
    tracker = ImpactTracker(session.timeline, n_flows=n_flows)
    app = AnycastApp(session, controls=SimControls(sim), clock=lambda: clock[0], impact=tracker)
    out: dict[str, list[float]] = {}
    async with app.run_test(size=(200, 60)) as pilot:
        frames = _Frames(app)
        for i in range(runs + 1):  # events to step through: leaf03 down / up
            (sim.fail_device if sim.is_up("leaf03") else sim.restore_device)("leaf03")
            clock[0] += 1
            session.poll()
        tracker.trace(app.prefixes[0])
        tracker.wait(600)
        app.flush()
        await pilot.press("3")
        await pilot.pause()
        app.flush()
        await pilot.pause()
        await pilot.press("left_square_bracket")  # select one, so that ] below always moves
        await pilot.pause()
        for r in range(runs):
            await _timed(pilot, frames, out, "next event", "left_square_bracket" if r % 2 else "right_square_bracket")
            await _filter_and_baseline(pilot, frames, out, ("server02", "tcp server03", "203.0.113.7")[r % 3])
        assert app.flow_rows is not None and app.flow_rows.total == n_flows
        out["rss"] = [_rss_mb()]
    tracker.close()
    return out


class _Feed:
    """A session whose timeline gets the simulator's whole snapshot per poll (no parsers: the set-up of a
    fabric this size through them takes minutes, and parsing is not what is measured here)."""

    def __init__(self, sim: SimFabric, clock: list[float]) -> None:
        from anycast_tui.model.timeline import Timeline

        self.sim, self.clock = sim, clock
        self.timeline = Timeline(anycast_prefixes=(sim.config.anycast4, sim.config.anycast6),
                                 clock=lambda: clock[0])

    def poll(self) -> None:
        self.timeline.apply(self.sim.snapshot(int(self.clock[0] * 1000)))


async def _scale(n_flows: int, runs: int, spines: int, leaves: int) -> dict[str, list[float]]:
    """Press-to-idle times on a fabric of ``spines`` × ``leaves`` (2 servers per leaf, IPv4 and IPv6 anycast:
    2 × (spines + leaves) multipath groups) with ``n_flows`` flows: ] (to an event of another poll, so every
    flow is re-marked) in the Flows and in the Groups view, a filter, and an unbound key (harness cost)."""
    from anycast_tui.lab.sim import SimConfig
    from anycast_tui.impacttracker import ImpactTracker
    from anycast_tui.ui import view

    clock = [T0]
    sim = SimFabric(SimConfig(spines=spines, leaves=leaves, servers_per_leaf=2), clock=lambda: clock[0])
    feed = _Feed(sim, clock)
    feed.poll()
    tracker = ImpactTracker(feed.timeline, n_flows=n_flows, keep=4 * (spines + leaves) + 16)  # every event's flows
    app = AnycastApp(feed, clock=lambda: clock[0], impact=tracker)
    out: dict[str, list[float]] = {"poll drawn, Groups view": []}
    async with app.run_test(size=(200, 60)) as pilot:
        frames = _Frames(app)
        tracker.trace(app.prefixes[0])
        tracker.wait(600)
        t_set = time.perf_counter()
        for action in (sim.fail_link, sim.restore_link):  # two polls: a spine-leaf link fails, comes back
            action("spine01", "leaf02")
            clock[0] += 1
            feed.poll()
        tracker.wait(600)
        app.flush()
        await pilot.pause()
        print(f"  (set-up: two polls, their impact and the first draw took {time.perf_counter() - t_set:.1f} s)")
        shown = app.shown_events()
        # an event with moved flows whose older neighbour has other (or no) moved flows: [ and ] re-mark every flow
        first = next(i for i in range(len(shown) - 1, 0, -1)
                     if tracker.detail(shown[i]) is not None and tracker.detail(shown[i]).moved.size
                     and tracker.detail(shown[i - 1]) is not tracker.detail(shown[i]))
        out["groups"] = [float(len(view.group_views(feed.timeline.snapshot, app.prefixes)))]
        out["events"] = [float(len(shown)), float(len(feed.timeline.events))]
        app.select(shown[first])
        for key, name in (("3", "next event, Flows view"), ("2", "next event, Groups view")):
            await pilot.press(key)
            await pilot.pause()
            for r in range(runs):
                await pilot.press("left_square_bracket")
                await pilot.pause()
                await _timed(pilot, frames, out, name, "right_square_bracket")
                assert app.selected is shown[first]
        for r in range(runs):  # a poll that changed the fabric, drawn (Groups view shown; impact on the worker)
            (sim.fail_link if r % 2 == 0 else sim.restore_link)("spine02", "leaf03")
            clock[0] += 1
            feed.poll()
            t0 = time.perf_counter()
            app.flush()
            await pilot.pause()
            out["poll drawn, Groups view"].append(time.perf_counter() - t0)
        tracker.wait(600)
        await pilot.press("3")
        await pilot.pause()
        for r in range(runs):
            await _filter_and_baseline(pilot, frames, out, ("server02", "tcp server03", "203.0.113.7")[r % 3])
        assert app.flow_rows is not None and app.flow_rows.total == n_flows
        out["rss"] = [_rss_mb()]
    tracker.close()
    return out


def _print_keys(res: dict[str, list[float]], names: tuple[str, ...]) -> None:
    """Per key: press to its last frame (the figure), and press to Pilot idle with the unbound key's idle
    time subtracted (the app's own work, an upper bound)."""
    base = statistics.median(res["baseline (unbound key), idle"])
    for k in names:
        m, idle = statistics.median(res[k]), statistics.median(res[f"{k}, idle"])
        if m != m:  # no frame: the key changed nothing on screen (the unbound key)
            print(f"  {k:<24} no frame drawn          (to Pilot idle {idle * 1000:.1f} ms: the harness's cost)")
            continue
        print(f"  {k:<24} to screen {m * 1000:7.1f} ms  goal <= 100 ms {'ok' if m <= 0.1 else 'MISSED'}   "
              f"(to Pilot idle {idle * 1000:.1f} ms, minus the unbound key's {base * 1000:.1f} ms: "
              f"{max(0.0, idle - base) * 1000:.1f} ms)")


def _demo(seconds: float, scenario: bool, headless: bool = False) -> tuple[float, list[int]]:
    """Run ``anycast-tui demo`` on a 200x60 pty for ``seconds``: (CPU seconds used, bytes written per second)."""
    import fcntl
    import os
    import select
    import signal
    import struct
    import subprocess
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
    cmd = [sys.executable, "-m", "anycast_tui.cli", "demo", "--interval", "1"] + ([] if scenario else
                                                                                ["--no-scenario"])
    if headless:
        cmd += ["--headless", str(seconds + 30)]
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env,
                            start_new_session=True)
    os.close(slave)
    per_s: list[int] = []
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        f = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / ticks

    try:
        start = time.monotonic()
        while time.monotonic() - start < 5:  # start-up (SSH farm, first polls) is not idle
            if select.select([master], [], [], 0.2)[0]:
                os.read(master, 1 << 16)
        c0, t0 = cpu(), time.monotonic()
        second, count = 1, 0
        while (now := time.monotonic()) - t0 < seconds:
            if now - t0 >= second:
                per_s.append(count)
                second, count = second + 1, 0
            if select.select([master], [], [], 0.05)[0]:
                try:
                    count += len(os.read(master, 1 << 16))
                except OSError:
                    break
        used = cpu() - c0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    return used / seconds, per_s


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--key-runs", type=int, default=9)
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--burst-s", type=float, default=25.0)
    ap.add_argument("--no-demo", action="store_true", help="skip the demo CPU / bytes figures")
    ap.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True,
                    help="the large fabric (--spines × --leaves, 2 servers per leaf) with --flows flows")
    ap.add_argument("--only-scale", action="store_true", help="only the large-fabric key figures")
    ap.add_argument("--spines", type=int, default=246)
    ap.add_argument("--leaves", type=int, default=4)
    ap.add_argument("--only-demo", action="store_true", help="only the demo CPU / bytes figures")
    args = ap.parse_args()
    if args.only_demo:
        _print_demo(args)
        return 0
    if args.scale:
        _print_scale(await _scale(args.flows, args.key_runs, args.spines, args.leaves), args)
        if args.only_scale:
            return 0
    keys = await _keys(args.flows, args.key_runs)
    print(f"key press to screen with {args.flows:,} flows, Flows view, median of {args.key_runs} (200x60):")
    _print_keys(keys, ("next event", "filter", "baseline (unbound key)"))
    print(f"  app RSS after it: {keys['rss'][0]:.0f} MB")
    if not args.no_demo:
        _print_demo(args)
    return await _bursts(args)


def _print_scale(res: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(f"large fabric: {args.spines} spines × {args.leaves} leaves × 2 servers, {res['groups'][0]:.0f} groups "
          f"(device × anycast prefix) in the Groups view, {res['events'][0]:.0f} anycast events shown of "
          f"{res['events'][1]:,.0f}, {args.flows:,} flows; key press to screen, median of {args.key_runs} (200x60):")
    _print_keys(res, ("next event, Flows view", "next event, Groups view", "filter", "baseline (unbound key)"))
    m = statistics.median(res["poll drawn, Groups view"])
    print(f"  a poll that changed the fabric, timeline to screen idle (Groups view, flush + pause): {m * 1000:.1f} ms")
    print(f"  app RSS after it: {res['rss'][0]:.0f} MB")


def _print_demo(args: argparse.Namespace) -> None:
    cpu, idle = _demo(args.idle_s, scenario=False)
    base, _ = _demo(args.idle_s, scenario=False, headless=True)
    print(f"demo idle over {args.idle_s:g} s, 1 s polls: CPU {cpu * 100:.1f} % of one core (goal <= 5 %); "
          f"terminal bytes/s median {statistics.median(idle):.0f}, max {max(idle)}")
    print(f"  baseline: the same demo --headless (SSH farm + poller + parsers, no TUI): CPU {base * 100:.1f} %; "
          f"so the TUI's share is {(cpu - base) * 100:.1f} %")
    _, burst = _demo(args.burst_s, scenario=True)
    top = sorted(burst)[-5:]
    print(f"demo with the leaf03 scenario over {args.burst_s:g} s: terminal bytes/s median "
          f"{statistics.median(burst):.0f}, busiest 5 s {top} (during the failure / restore)")


async def _bursts(args: argparse.Namespace) -> int:
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
