#!/usr/bin/env python3
"""Benchmark: idle CPU of ``anycast-tui demo`` (1 s polls), headless and with the TUI on a pty.

    python3 bench/bench_idle.py [--runs 3] [--idle-s 60] [--monitor both|event|poll] [--mode both|tui|headless]
                                [--baseline-tree DIR] [--no-scenario] [--profile DIR] [--split]

Each run starts a real ``anycast-tui demo --interval 1`` (recording to a temporary directory, as a user's
demo records by default) on a 200x60 pseudo-terminal, lets the scripted scenario play (leaf03 fails and
comes back, server02 withdraws and re-announces; measuring starts 5 s after its last step), then reads
utime+stime of the process from /proc/<pid>/stat over ``--idle-s`` seconds of idleness: % of one core,
median of ``--runs``.  Modes:

* ``tui``: the NOC interface on the pty (the terminal's output is drained);
* ``headless``: ``--headless`` (SSH farm + poller + parsers + recorder, no TUI): the TUI's share is the
  difference.

``--monitor`` selects how each simulated device serves its streaming ``ip -o monitor``:

* ``event``: the current one, woken by the simulator on every state change;
* ``poll``: the baseline, the previous implementation watching the simulator's generation at 20 Hz.

``--baseline-tree DIR`` adds the demo run from another copy of the project (e.g. ``git archive`` of an
older commit): the "before" of a change, measured in the same run.

``--split``: the same fabric with the SSH farm (DemoFabric, no scenario) and the poller (LiveSession, no
recorder) in two processes, each one's CPU over ``--idle-s``: which side of the SSH connections costs what.

Breakdown: CPU of the main thread (event loop: SSH farm, poller, TUI) and of the other threads
(impact worker, Textual's writer thread, asyncio's executor).  ``--profile DIR`` also records each run
with py-spy (if installed) as a flame graph in DIR.  Goal (issue #6): <= 5 % of one core with the TUI.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_PCT = 5.0
TICKS = os.sysconf("SC_CLK_TCK")
# Runs the CLI with the demo's monitor selected (DemoFabric reads MONITOR_POLL_S when it starts).
LAUNCH = ("import sys; import anycast_tui.lab.demo as d; d.MONITOR_POLL_S = {poll}; "
          "from anycast_tui.cli import main; sys.exit(main(sys.argv[1:]))")


SERVE = """import asyncio, pickle, sys
from pathlib import Path
import anycast_tui.lab.demo as d
d.MONITOR_POLL_S = {poll}
async def main():
    async with d.DemoFabric(Path(sys.argv[1]), scenario=None) as fab:
        Path(sys.argv[1], "inventory.pickle").write_bytes(pickle.dumps(fab.inventory()))
        print("ready", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""
POLL = """import asyncio, pickle, sys
from pathlib import Path
from anycast_tui.session import LiveSession
async def main():
    s = LiveSession(pickle.loads(Path(sys.argv[1], "inventory.pickle").read_bytes()), interval_s=1.0)
    await s.start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (it records and exits cleanly), SIGKILL after 10 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def split_once(monitor: str, idle_s: float, workdir: Path, tree: Path) -> dict[str, float]:
    """SSH farm and poller in two processes: % of one core of each over ``idle_s`` after 5 s of start-up."""
    poll = "0.05" if monitor == "poll" else "None"
    farm_dir = Path(tempfile.mkdtemp(prefix="farm-", dir=workdir))
    procs = []
    try:
        for code in (SERVE.format(poll=poll), POLL):
            p = subprocess.Popen([sys.executable, "-c", code, str(farm_dir)], cwd=tree, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            procs.append(p)
            if p.stdout is None or p.stdout.readline().strip() != "ready":
                raise RuntimeError("a split process did not start")
        time.sleep(5)
        c0, t0 = [_cpu(p.pid) for p in procs], time.monotonic()
        time.sleep(idle_s)
        c1, t1 = [_cpu(p.pid) for p in procs], time.monotonic()
    finally:
        for p in reversed(procs):
            _stop(p)
    return {"farm": 100 * (c1[0] - c0[0]) / (t1 - t0), "poller": 100 * (c1[1] - c0[1]) / (t1 - t0)}


def _scenario_end_s() -> float:
    from anycast_tui.lab.scenario import default_scenario

    return max(float(s.at) for s in default_scenario().steps)


def _cpu(pid: int, tid: int | None = None) -> float:
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    f = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICKS


def _threads(pid: int) -> dict[int, float]:
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(t.name)] = _cpu(pid, int(t.name))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def _drain(master: int, until: float) -> None:
    while time.monotonic() < until:
        if select.select([master], [], [], 0.1)[0]:
            try:
                os.read(master, 1 << 16)
            except OSError:
                return


def run_once(monitor: str, mode: str, idle_s: float, scenario: bool, workdir: Path,
             profile: Path | None = None, tag: str = "", tree: Path = ROOT) -> dict[str, float]:
    """One demo: % of one core over ``idle_s`` idle seconds (whole process, main thread, other threads)."""
    import fcntl
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
    poll = "0.05" if monitor == "poll" else "None"
    settle = _scenario_end_s() + 5 if scenario else 5.0
    cmd = [sys.executable, "-c", LAUNCH.format(poll=poll), "demo", "--interval", "1",
           "--record-dir", str(workdir)]
    if not scenario:
        cmd.append("--no-scenario")
    if mode == "headless":
        cmd += ["--headless", str(settle + idle_s + 30)]
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=tree, env=env,
                            start_new_session=True)
    os.close(slave)
    spy = None
    try:
        _drain(master, time.monotonic() + settle)
        if proc.poll() is not None:
            raise RuntimeError(f"the demo exited early with status {proc.returncode}")
        if profile is not None and shutil.which("py-spy"):
            svg = profile / f"{tag}{monitor}-{mode}.svg"
            spy = subprocess.Popen(["py-spy", "record", "-p", str(proc.pid), "-d", str(int(idle_s)), "-r", "50",
                                    "-t", "-o", str(svg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0, th0, t0 = _cpu(proc.pid), _threads(proc.pid), time.monotonic()
        _drain(master, t0 + idle_s)
        c1, th1, t1 = _cpu(proc.pid), _threads(proc.pid), time.monotonic()
    finally:
        _stop(proc)
        os.close(master)
        if spy is not None:
            spy.wait()
    wall = t1 - t0
    main = th1.get(proc.pid, 0.0) - th0.get(proc.pid, 0.0)
    return {"total": 100 * (c1 - c0) / wall, "main": 100 * main / wall,
            "other": 100 * ((c1 - c0) - main) / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--monitor", choices=("both", "event", "poll"), default="both")
    ap.add_argument("--mode", choices=("both", "tui", "headless"), default="both")
    ap.add_argument("--baseline-tree", type=Path, metavar="DIR",
                    help="also run the demo from this copy of the project (the 'before' variant)")
    ap.add_argument("--no-scenario", action="store_true", help="measure from 5 s after start, no scripted events")
    ap.add_argument("--split", action="store_true", help="SSH farm and poller in two processes (no TUI, no scenario)")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy flame graphs of every run into DIR")
    args = ap.parse_args()
    monitors: tuple[str, ...] = ("event", "poll") if args.monitor == "both" else (args.monitor,)
    trees = {m: ROOT for m in monitors}
    if args.baseline_tree is not None:
        monitors += ("before",)
        trees["before"] = args.baseline_tree.resolve()
    modes = ("tui", "headless") if args.mode == "both" else (args.mode,)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"bench_idle: anycast-tui demo, 1 s polls, {args.idle_s:g} s idle "
          f"{'after the scripted events' if not (args.no_scenario or args.split) else '(no scenario)'}, "
          f"median of {args.runs}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.split:
        return _split(args, monitors, trees)
    res: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="atui-bench-idle-") as tmp:
        for k in range(args.runs):  # interleaved, so a load change hits every variant alike
            for monitor in monitors:
                for mode in modes:
                    r = run_once(monitor, mode, args.idle_s, not args.no_scenario, Path(tmp), args.profile,
                                 tag=f"run{k + 1}-", tree=trees[monitor])
                    res.setdefault((monitor, mode), []).append(r)
                    print(f"  run {k + 1} {monitor:<6} {mode:<8}: {r['total']:5.1f} % "
                          f"(main thread {r['main']:.1f}, other threads {r['other']:.1f})", flush=True)
    med = {key: {f: statistics.median(r[f] for r in rs) for f in ("total", "main", "other")}
           for key, rs in res.items()}
    if args.baseline_tree is not None:
        print(f"(baseline tree: {trees['before']})")
    print("median % of one core (main thread + other threads):")
    for (monitor, mode), m in med.items():
        label = {"poll": "baseline: polling monitor 20 Hz", "event": "event-driven monitor"}.get(monitor) \
            or f"baseline: {trees['before'].name}"
        goal = f"   goal <= {GOAL_PCT:g} %: {'meets' if m['total'] <= GOAL_PCT else 'MISSES'}" if mode == "tui" else ""
        print(f"  {label:<32} {mode:<8} {m['total']:5.1f} %  ({m['main']:.1f} + {m['other']:.1f}){goal}")
    for monitor in monitors:
        if (monitor, "tui") in med and (monitor, "headless") in med:
            print(f"  {monitor}: the TUI's share {med[(monitor, 'tui')]['total'] - med[(monitor, 'headless')]['total']:.1f} %")
    return 0



def _split(args: argparse.Namespace, monitors: tuple[str, ...], trees: dict[str, Path]) -> int:
    res: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="atui-bench-idle-") as tmp:
        for k in range(args.runs):
            for monitor in monitors:
                r = split_once(monitor, args.idle_s, Path(tmp), trees[monitor])
                res.setdefault(monitor, []).append(r)
                print(f"  run {k + 1} {monitor:<6} SSH farm {r['farm']:5.1f} %, poller {r['poller']:5.1f} %", flush=True)
    print("median % of one core, SSH farm + poller in separate processes:")
    for monitor, rs in res.items():
        farm, poller = (statistics.median(r[f] for r in rs) for f in ("farm", "poller"))
        print(f"  {monitor:<6} SSH farm (sim + asyncssh server) {farm:5.1f} %   poller (LiveSession) {poller:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
