"""Benchmark: collectors on NATS JetStream, one viewer, against the same fabric polled in-process.

    python3 bench/bench_nats.py [--devices 200] [--collectors 2] [--flips 20] [--idle-s 10]
    python3 bench/bench_nats.py --devices 2000 --collectors 4        # the issue's figures
    python3 bench/bench_nats.py --devices 400 --scaling 1,2,4        # throughput from 1 to 4 collectors
    python3 bench/bench_nats.py --devices 2000 --capacity 500,1000,2000,4000   # one collector's largest inventory
    python3 bench/bench_nats.py --devices 2000 --catch-up --repeat 5   # a late viewer's catch-up alone
    python3 bench/bench_nats.py --devices 2000 --catch-up --repeat 3 --screen  # ... and monitor's screen (tmux)
    python3 bench/bench_nats.py --devices 2000 --catch-up --repeat 3 --screen --distinct  # every device its own
    python3 bench/bench_nats.py --devices 2000 --collectors 4 --monitor  # the viewers run monitor's trackers too

A real ``nats-server -js`` on a free port (monitoring on another: its /varz gives the bus's bytes and
messages).  K collector processes each run the simulated fabric (``lab.sim``: 4 spines, leaves with one server
each, to --devices) and publish their ``--shard i/K`` with the real ``fleet.publisher.Publisher`` every 1 s.
Every device routes to every loopback, so a leaf of a 2,000-device fabric has ~8,000 routes: the simulator
renders one in ~0.3 s and cannot render the fabric every second, so a poll re-renders and parses only the
devices a change touched (the failed leaf and the spines), and an unchanged device is handed over as the poller
hands an unchanged poll (its previous records, new collection time): what reaches the bus is what a real
collector sends.  The first poll renders every device once, in 0.5 s pieces between 1 s polls (minutes at
2,000 devices; its CPU is reported apart).  Measured, medians:

* latency device change -> viewer timeline (the DEVICE_UNREACHABLE / DEVICE_BACK event of a leaf failed or
  restored in a collector), p50/p95; it includes waiting for the next 1 s poll, as the baseline does; its part
  after that poll is split into publish (poll -> stored by nats-server), deliver (stored -> the viewer's message
  handler: the bus and the viewer's queue) and apply (handler -> timeline);
* bus messages/s and bytes/s published (nats-server in_msgs/in_bytes) idle and during a burst (leaves, 5 % of
  every collector's devices, failing at once);
* viewer catch-up: a new viewer's start to every device in its timeline (KV);
* poll cycle per collector and its CPU per 100 devices (after the first poll);
* baseline, same run: collector 0's share of the same fabric polled the same way in this process straight into
  a Timeline (no bus).

``--monitor``: the viewer's timeline (and the baseline's) also feeds what ``monitor --source`` runs beside its
screen: the impact and incident trackers and the health checks (``healthwatch.HealthWatch``, on a worker thread,
every 5 s at most), sharing the process with the latency being measured.  ``--profile``: the viewer's threads
sampled every 10 ms during the flips and the burst, the functions they were in printed after the burst.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anycast_tui.cli import SWITCH_INTERVAL_S  # noqa: E402
from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.model.types import EventKind, HealthStatus, Role  # noqa: E402
from anycast_tui.session import SimSession  # noqa: E402


def _fabric(n: int) -> SimFabric:
    return SimFabric(SimConfig(spines=4, leaves=max(1, (n - 4) // 2)))


class _Trackers:
    """What ``monitor`` runs on its session's timeline beside the screen (``commands._live.run_session``): the
    impact and incident trackers and the health checks, their events handed to the event loop."""

    def __init__(self, timeline) -> None:  # noqa: ANN001
        from anycast_tui.healthwatch import HealthWatch
        from anycast_tui.impacttracker import ImpactTracker
        from anycast_tui.record import live as record_live

        self.impact = ImpactTracker(timeline)
        self.incidents = record_live.incident_tracker(timeline, None)
        self.checks = HealthWatch(timeline, post=asyncio.get_running_loop().call_soon_threadsafe)

    def close(self) -> int:
        """Stop them; how many times the health checks ran."""
        self.checks.close()
        self.impact.close()
        self.incidents.close()
        return self.checks.evaluations


class CheapPoller:
    """Every ``interval`` s: the devices a change touched (and those down) polled for real through the
    simulator's command outputs and parsers; the others handed over unchanged with a new collection time."""

    def __init__(self, sim: SimFabric, names: list[str], offer) -> None:  # noqa: ANN001
        self.sim, self.names, self.offer = sim, names, offer
        self.session = SimSession(sim)
        self.spines = [n for n in names if sim.role(n) is Role.SPINE]
        self.dirty: set[str] = set(names)
        self.cycles: list[float] = []
        self.complete = False  # every device polled once

    def touch(self, name: str) -> None:
        self.dirty |= {name, *self.spines}

    async def tick(self, first_budget_s: float = 0.5) -> None:
        """One poll; devices never polled yet are polled for at most ``first_budget_s`` (the rest next time), so a
        large inventory's first poll does not hold the event loop (and the NATS connection) for minutes.  As the
        real poller does (``collect.poller``: ``on_state`` as each device's poll ends), each device polled for
        real is handed over as soon as its own poll is done, and the event loop (the publisher, the heartbeat)
        runs between two devices."""
        t = time.perf_counter()
        was_complete = self.complete
        snap0 = self.session.timeline.snapshot
        have = {n for n, st in snap0.devices.items() if st.health.status is not HealthStatus.UNKNOWN} \
            if snap0 is not None else set()
        real = [n for n in self.names if n in have and (n in self.dirty or not self.sim.is_up(n))]
        for n in real:
            self.session.poll(order=[n])
            self.dirty.discard(n)
            self.offer(self.session.timeline.snapshot.devices[n])
            await asyncio.sleep(0)
        offered = set(real)
        for n in self.names:
            if n not in have:
                if time.perf_counter() - t > first_budget_s:
                    break
                self.session.poll(order=[n])
                self.dirty.discard(n)
                real.append(n)
        now = int(time.time() * 1000)
        snap = self.session.timeline.snapshot
        realset = set(real)
        for n in self.names:
            st = snap.devices.get(n)
            if st is None or st.health.status is HealthStatus.UNKNOWN:
                continue  # not polled yet
            if n not in realset and st.health.status is HealthStatus.OK:
                st = dataclasses.replace(st, collected_at_ms=now, health=dataclasses.replace(st.health, last_ok_ms=now))
                self.session.timeline.update(st)
            if n not in offered:
                self.offer(st)
        if was_complete:  # the poll cycle of a running collector, not its first poll's pieces
            self.cycles.append(time.perf_counter() - t)
        self.complete = was_complete or all(n in snap.devices and snap.devices[n].health.status
                                            is not HealthStatus.UNKNOWN for n in self.names)


# --------------------------------------------------------------------------- collector process


async def _worker(args: argparse.Namespace) -> None:
    import nats

    from anycast_tui.fleet.conn import Retention
    from anycast_tui.fleet.publisher import Publisher, ensure_stream
    from anycast_tui.fleet.shard import mine

    sim = _fabric(args.devices)
    names = mine(list(sim.devices), args.worker, args.collectors)
    nc = await nats.connect(args.url)
    await ensure_stream(nc.jetstream(), Retention(max_age_s=3600, max_bytes=2**30, kv_max_bytes=2**28))
    pub = Publisher(nc, site="bench", collector=f"bench#{args.worker}/{args.collectors}",
                    prefixes=("192.0.2.53/32",), every_s=1.0)
    await pub.start()
    poller = CheapPoller(sim, names, pub.offer)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def command(line: str) -> None:
        parts = line.split()
        if not parts or parts[0] == "stop":
            stop.set()
            return
        if parts[0] == "stats":
            ru = resource.getrusage(resource.RUSAGE_SELF)
            cpu = ru.ru_utime + ru.ru_stime
            print(json.dumps({"cycles": poller.cycles[2:], "cpu_s": cpu - steady[0], "devices": len(names),
                              "wall_s": time.monotonic() - steady[1], "first_cpu_s": steady[0],
                              "stats": dataclasses.asdict(pub.stats)}), flush=True)
            return
        asyncio.ensure_future(apply(parts[0], parts[1:]))

    async def apply(cmd: str, names: list[str]) -> None:
        at = {}
        for name in names:  # the simulator's recompute takes ~0.5 s at 200 devices: heartbeats go on between
            (sim.fail_device if cmd == "fail" else sim.restore_device)(name)
            at[name] = time.time()  # the device has changed (the simulator is the device)
            poller.touch(name)
            await asyncio.sleep(0.3)  # let the publisher and the heartbeat run between recomputes
        print(json.dumps({"cmd": cmd, "devices": names, "t0": at[names[0]], "at": at}), flush=True)

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(command, line)
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, daemon=True).start()
    steady = [0.0, time.monotonic()]  # process CPU and time at the end of the first (full) poll
    print(json.dumps({"ready": True, "devices": names}), flush=True)
    while not stop.is_set():
        t = time.monotonic()
        first = not poller.complete
        await poller.tick()
        if first and poller.complete:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            steady[:] = [ru.ru_utime + ru.ru_stime, time.monotonic()]
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, 1.0 - (time.monotonic() - t)))
        except (asyncio.TimeoutError, TimeoutError):
            pass
    await pub.drain(5)
    await pub.stop()
    await nc.close()


# --------------------------------------------------------------------------- the run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _varz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=5) as r:
        return json.loads(r.read())


async def _rates(mport: int, seconds: float) -> dict:
    a, t = _varz(mport), time.monotonic()
    await asyncio.sleep(seconds)
    b, dt = _varz(mport), time.monotonic() - t
    return {"in_msgs_s": (b["in_msgs"] - a["in_msgs"]) / dt, "in_bytes_s": (b["in_bytes"] - a["in_bytes"]) / dt,
            "out_msgs_s": (b["out_msgs"] - a["out_msgs"]) / dt, "out_bytes_s": (b["out_bytes"] - a["out_bytes"]) / dt}


class _Seen:
    """When each (device, kind) event reached a timeline."""

    def __init__(self, timeline, arrivals: "_Arrivals | None" = None) -> None:  # noqa: ANN001
        self.at: dict[tuple[str, EventKind], float] = {}
        self.polled: dict[tuple[str, EventKind], float] = {}  # the event's time: the collector's poll of the change
        self.arrivals = arrivals
        self.carried: dict[tuple[str, EventKind], tuple[float, float]] = {}  # its message: (stored, handled)
        self.silent = 0  # devices the viewer marked stale for a silent collector (not a change of the device)
        timeline.subscribe(self._on)

    def _on(self, change) -> None:  # noqa: ANN001
        now = time.time()
        for ev in change.events:
            if "silent since" in ev.detail:
                self.silent += 1
            elif ev.kind in (EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK):
                self.at[(ev.device, ev.kind)] = now
                self.polled[(ev.device, ev.kind)] = ev.time_ms / 1000
                if self.arrivals is not None and ev.device in self.arrivals.last:
                    self.carried[(ev.device, ev.kind)] = self.arrivals.last[ev.device]

    def stages(self, key: tuple[str, EventKind]) -> tuple[float, float, float] | None:
        """(poll -> stored by nats-server, stored -> the viewer's handler, handler -> timeline) of one event."""
        if key not in self.carried:
            return None
        stored, handled = self.carried[key]
        return stored - self.polled[key], handled - stored, self.at[key] - handled


class _Arrivals:
    """When each device's newest message was stored by nats-server (its JetStream timestamp) and reached the
    viewer's message handler: splits a latency into the collector's publishing, the bus's delivery and the
    viewer's queue, and the viewer's own work."""

    def __init__(self, viewer) -> None:  # noqa: ANN001
        self.last: dict[str, tuple[float, float]] = {}
        inner = viewer._on_msg  # the bench wraps the viewer's handler (our own code) before it subscribes

        async def on_msg(msg) -> None:  # noqa: ANN001
            parts = msg.subject.split(".")
            if len(parts) == 4 and parts[3] in ("state", "health"):
                try:
                    self.last[parts[2]] = (msg.metadata.timestamp.timestamp(), time.time())
                except Exception:  # noqa: BLE001 - no metadata: not a stream message
                    pass
            await inner(msg)

        viewer._on_msg = on_msg


class _Sampler:
    """``--profile``: where the viewer's process spends its time; every 10 ms, each thread's stack (thread names
    cut at ``_``), counted inclusively per function of ours and by innermost frame."""

    def __init__(self) -> None:
        import collections

        self.inclusive: collections.Counter = collections.Counter()
        self.leaf: collections.Counter = collections.Counter()
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="sampler").start()

    def _run(self) -> None:
        import traceback

        me = threading.get_ident()
        while not self.stop.wait(0.01):
            names = {t.ident: t.name.split("_")[0] for t in threading.enumerate()}
            for tid, frame in sys._current_frames().items():
                if tid == me:
                    continue
                stack = traceback.extract_stack(frame)
                who = names.get(tid, "?")
                if stack[-1].name in ("wait", "select", "_worker", "get") and who != "MainThread":
                    continue  # an idle pool or reader thread
                self.leaf[(who, f"{Path(stack[-1].filename).name}:{stack[-1].name}")] += 1
                for f in {f"{Path(x.filename).name}:{x.name}" for x in stack if "anycast_tui" in x.filename}:
                    self.inclusive[(who, f)] += 1

    def report(self) -> None:
        self.stop.set()
        for title, counts in (("inclusive (ours)", self.inclusive), ("innermost", self.leaf)):
            print(f"--- viewer process, samples every 10 ms, {title}:")
            for (who, f), n in counts.most_common(30):
                print(f"{n:7d}  {who:12s} {f}")


async def _wait(cond, timeout: float = 60.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class _Proc:
    def __init__(self, args: argparse.Namespace, i: int, url: str) -> None:
        self.p = subprocess.Popen([sys.executable, __file__, "--worker", str(i), "--collectors", str(args.collectors),
                                   "--devices", str(args.devices), "--url", url,
                                   "--switch-interval", str(args.switch_interval)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, args=(loop,), daemon=True).start()

    def _read(self, loop) -> None:  # noqa: ANN001
        for line in self.p.stdout:  # type: ignore[union-attr]
            loop.call_soon_threadsafe(self.lines.put_nowait, json.loads(line))

    async def ask(self, line: str) -> dict:
        self.p.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]
        return await asyncio.wait_for(self.lines.get(), 600)  # an overloaded collector answers late, not never


async def _flips(send, leaves: list[tuple[object, str]], seen: _Seen, n: int,  # noqa: ANN001
                 split: list[tuple[float, tuple[float, float, float] | None]] | None = None) -> list[float]:
    """Fail and restore leaves one at a time; latency of each change to its event on ``seen`` (and, in ``split``,
    the part after the collector's poll that saw the change: publishing, the bus and the viewer)."""
    out = []
    for k in range(n):
        who, leaf = leaves[k % len(leaves)]
        for cmd, kind in (("fail", EventKind.DEVICE_UNREACHABLE), ("restore", EventKind.DEVICE_BACK)):
            seen.at.pop((leaf, kind), None)
            t0 = await send(who, f"{cmd} {leaf}")
            if await _wait(lambda: (leaf, kind) in seen.at, 30):
                out.append(seen.at[(leaf, kind)] - t0)
                if split is not None:
                    split.append((seen.at[(leaf, kind)] - seen.polled[(leaf, kind)], seen.stages((leaf, kind))))
            await asyncio.sleep(0.3)
    return out


def _phase(name: str, value: object) -> None:
    """A phase's figures as soon as it ends (a long run that fails later keeps them)."""
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {name}: {json.dumps(value, default=str)}",
          flush=True)


def _split(after_poll: list[float], stages: list[tuple[float, float, float]]) -> dict:
    """A latency's part after the collector's poll, and that part's stages (see ``_Arrivals``), p50/p95."""
    out = {"after_poll_p50": _pct(after_poll, 50), "after_poll_p95": _pct(after_poll, 95)}
    for i, name in enumerate(("publish", "deliver", "apply")):
        xs = [st[i] for st in stages]
        out[f"{name}_p50"], out[f"{name}_p95"] = _pct(xs, 50), _pct(xs, 95)
    return out


def _stages(r: dict) -> str:
    return ", ".join(f"{name} {r[name + '_p50']*1000:.0f} / {r[name + '_p95']*1000:.0f} ms"
                     for name in ("publish", "deliver", "apply"))


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


async def _main(args: argparse.Namespace) -> dict:
    from anycast_tui.fleet.conn import NatsOptions
    from anycast_tui.fleet.source import NatsSource

    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    work = Path(tempfile.mkdtemp(prefix="bench-nats-"))
    port, mport = _free_port(), _free_port()
    srv = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(mport), "-sd", str(work)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    procs: list[_Proc] = []
    result: dict = {"devices": args.devices, "collectors": args.collectors, "switch_interval_s": args.switch_interval}
    try:
        await _wait(lambda: _up(port), 20)
        viewer = NatsSource(NatsOptions((url,)))
        seen = _Seen(viewer.timeline, _Arrivals(viewer))
        watching = _Trackers(viewer.timeline) if args.monitor else None
        await viewer.start()
        t_start = time.monotonic()
        procs = [_Proc(args, i, url) for i in range(args.collectors)]
        owned = [(await p.lines.get())["devices"] for p in procs]
        n = sum(map(len, owned))
        ok = await _wait(lambda: len(viewer.health()) == n and all(
            h.status is HealthStatus.OK for h in viewer.health().values()), 1800)
        result["first_poll_s"] = round(time.monotonic() - t_start, 1)
        print(f"{n} devices over {args.collectors} collectors on the viewer: {'all fresh' if ok else 'NOT all fresh'}"
              f" after {time.monotonic() - t_start:.0f} s", flush=True)
        await asyncio.sleep(3)
        result["idle"] = await _rates(mport, args.idle_s)
        _phase("idle", result["idle"])

        async def send(who: _Proc, line: str) -> float:
            return (await who.ask(line))["t0"]

        sampler = _Sampler() if args.profile else None

        leaves = [(p, d) for p, names in zip(procs, owned) for d in names if d.startswith("leaf")][:: max(1, n // 40)]
        after_poll: list = []
        lat = await _flips(send, leaves, seen, args.flips, after_poll)
        result["latency_bus"] = {"n": len(lat), "p50": _pct(lat, 50), "p95": _pct(lat, 95),
                                 **_split([a for a, _ in after_poll], [st for _, st in after_poll if st])}
        _phase("latency_bus", result["latency_bus"])
        # burst: leaves, 5 % of each collector's devices, failing at once
        burst = {p: [d for d in names if d.startswith("leaf")][: max(1, len(names) // 20)] for p, names in zip(procs, owned)}
        rate_task = asyncio.create_task(_rates(mport, 3.0))
        t0s: dict[str, float] = {}
        for names in burst.values():
            for d in names:
                seen.at.pop((d, EventKind.DEVICE_UNREACHABLE), None)
        for p, names in burst.items():
            t0s.update((await p.ask("fail " + " ".join(names)))["at"])
        await _wait(lambda: all((d, EventKind.DEVICE_UNREACHABLE) in seen.at for d in t0s), 60)
        result["burst"] = await rate_task
        got = [(d, EventKind.DEVICE_UNREACHABLE) for d in t0s if (d, EventKind.DEVICE_UNREACHABLE) in seen.at]
        blat = [seen.at[k] - t0s[k[0]] for k in got]
        result["burst"].update(_split([seen.at[k] - seen.polled[k] for k in got],
                                      [st for st in map(seen.stages, got) if st]))
        result["burst"]["devices"] = len(t0s)
        if os.environ.get("BENCH_DEBUG"):
            print({d: (t, seen.at.get((d, EventKind.DEVICE_UNREACHABLE))) for d, t in t0s.items()})  # noqa: T201
        result["burst"]["latency_p50"], result["burst"]["latency_p95"] = _pct(blat, 50), _pct(blat, 95)
        _phase("burst", result["burst"])
        if sampler is not None:
            sampler.report()
        for p, names in burst.items():
            await send(p, "restore " + " ".join(names))
        await asyncio.sleep(3)
        # catch-up of a new viewer
        catch = []
        for _ in range(3):
            late = NatsSource(NatsOptions((url,)))
            t = time.perf_counter()
            await late.start()
            await _wait(lambda: late.ready.is_set() and len(late.health()) == n, 600)
            catch.append(time.perf_counter() - t)
            await late.stop()
        result["catch_up_s"] = statistics.median(catch)
        _phase("catch_up_s", catch)
        result["silent_marks"] = seen.silent
        stats = [await p.ask("stats") for p in procs]
        cyc = [statistics.median(s["cycles"]) for s in stats if s["cycles"]]
        result["poll_cycle_s"] = statistics.median(cyc) if cyc else None
        result["throughput_devices_s"] = sum(s["devices"] / max(1.0, statistics.median(s["cycles"]))
                                             for s in stats if s["cycles"])
        result["collector_cpu_s"] = [round(s["cpu_s"], 1) for s in stats]
        result["collector_cpu_per_100_devices"] = statistics.median(
            s["cpu_s"] / s["wall_s"] / (s["devices"] / 100) for s in stats)  # cores, after the first full poll
        result["collector_first_poll_cpu_s"] = [round(s["first_cpu_s"], 1) for s in stats]
        result["publish"] = [s["stats"] for s in stats]
        if watching is not None:
            result["health_evaluations"] = watching.close()
        await viewer.stop()
    finally:
        for p in procs:
            try:
                p.p.stdin.write("stop\n")  # type: ignore[union-attr]
                p.p.stdin.flush()  # type: ignore[union-attr]
            except OSError:
                pass
        for p in procs:
            try:
                p.p.wait(20)
            except subprocess.TimeoutExpired:
                p.p.kill()
        srv.terminate()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)

    # baseline: the same fabric, collector 0's share of it polled the same way in this process, straight into
    # a Timeline (one process's load, as each collector's)
    from anycast_tui.fleet.shard import mine

    sim = _fabric(args.devices)
    base_names = mine(list(sim.devices), 0, args.collectors)
    poller = CheapPoller(sim, base_names, lambda st: None)
    bseen = _Seen(poller.session.timeline)
    bwatching = _Trackers(poller.session.timeline) if args.monitor else None
    stop = asyncio.Event()

    async def ticking() -> None:
        while not stop.is_set():
            t = time.monotonic()
            await poller.tick()
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t)))

    task = asyncio.create_task(ticking())

    async def bsend(_who: object, line: str) -> float:
        cmd, name = line.split()
        (sim.fail_device if cmd == "fail" else sim.restore_device)(name)
        poller.touch(name)
        return time.time()  # the device has changed

    leaves = [(None, d) for d in base_names if d.startswith("leaf")][:: max(1, len(base_names) // 40)]
    await _wait(lambda: len(poller.cycles) > 3, 3600)
    bpoll: list = []
    blat = await _flips(bsend, leaves, bseen, args.flips, bpoll)
    stop.set()
    await task
    if bwatching is not None:
        result["health_evaluations_direct"] = bwatching.close()
    result["latency_direct"] = {"n": len(blat), "p50": _pct(blat, 50), "p95": _pct(blat, 95),
                                **_split([a for a, _ in bpoll], [])}
    result["poll_cycle_direct_s"] = statistics.median(poller.cycles[2:]) if len(poller.cycles) > 2 else None
    print(json.dumps(result, indent=1, default=str))
    b, d = result["latency_bus"], result["latency_direct"]
    print(f"latency change -> viewer timeline: p50 {b['p50']*1000:.0f} ms, p95 {b['p95']*1000:.0f} ms "
          f"(direct in-process: p50 {d['p50']*1000:.0f} ms, p95 {d['p95']*1000:.0f} ms; both wait for the next 1 s poll)"
          f"; after the collector's poll: p50 {b['after_poll_p50']*1000:.0f} ms, p95 {b['after_poll_p95']*1000:.0f} ms "
          f"(direct: {d['after_poll_p50']*1000:.0f} / {d['after_poll_p95']*1000:.0f} ms) = {_stages(b)}")
    i, u = result["idle"], result["burst"]
    print(f"bus idle: {i['in_msgs_s']:.0f} msgs/s, {i['in_bytes_s']/1000:.1f} kB/s in; burst ({u['devices']} devices "
          f"failing at once): {u['in_msgs_s']:.0f} msgs/s, {u['in_bytes_s']/1000:.1f} kB/s in, latency p50 "
          f"{u['latency_p50']*1000:.0f} ms p95 {u['latency_p95']*1000:.0f} ms (after the collector's poll: "
          f"p50 {u['after_poll_p50']*1000:.0f} ms, p95 {u['after_poll_p95']*1000:.0f} ms = {_stages(u)})")
    print(f"viewer catch-up ({args.devices} devices from KV): {result['catch_up_s']:.2f} s (median of 3); "
          f"devices marked stale for a silent collector during the run: {result['silent_marks']}")
    print(f"poll cycle per collector {result['poll_cycle_s']:.3f} s ({args.devices // args.collectors} devices; "
          f"baseline in-process on collector 0's share: {result['poll_cycle_direct_s']:.3f} s); collector CPU "
          f"{result['collector_cpu_per_100_devices']:.3f} core per 100 devices after the first full poll "
          f"(first poll: {result['first_poll_s']} s to all fresh, CPU s per collector "
          f"{result['collector_first_poll_cpu_s']}); {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    if args.monitor:
        print(f"viewers ran monitor's trackers: health evaluations {result['health_evaluations']} on the bus viewer, "
              f"{result['health_evaluations_direct']} on the baseline")
    return result


# --------------------------------------------------------------------------- one collector's capacity


async def _capacity(args: argparse.Namespace) -> None:
    """Step one collector process's inventory until its 1 s polls no longer fit in one core.

    Rendering a 2,000-device fabric's tables takes the simulator far longer than a device takes, so the
    inventory is cloned: a spine, a leaf and a server of the ``--devices`` fabric polled for real once (its
    tables: every loopback of the fabric), then handed over under new names, unchanged every second, as
    ``CheapPoller`` hands an unchanged device, to the real Publisher on a real nats-server.  A step holds
    ``--idle-s`` seconds, at least 61 (the Publisher re-puts every device's full state into KV every 60
    polls); it keeps up while the process's CPU stays under 0.95 core and the median cycle
    (hand-over and publishing) under 1 s."""
    import nats

    from anycast_tui.fleet.conn import Retention
    from anycast_tui.fleet.publisher import Publisher, ensure_stream
    from anycast_tui.model.timeline import Timeline

    sim = _fabric(args.devices)
    session = SimSession(sim)
    session.poll(order=["spine01", "leaf01", "server01"])
    tmpl = [session.timeline.snapshot.devices[n] for n in ("leaf01", "server01")]
    spine = session.timeline.snapshot.devices["spine01"]
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    work = Path(tempfile.mkdtemp(prefix="bench-nats-"))
    port, mport = _free_port(), _free_port()
    srv = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(mport), "-sd", str(work)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        await _wait(lambda: _up(port), 20)
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        await ensure_stream(nc.jetstream(), Retention(max_age_s=3600, max_bytes=2**31, kv_max_bytes=2**30))
        for n in args.capacity:
            states = [dataclasses.replace(spine, device=dataclasses.replace(spine.device, name=f"cspine{i}"))
                      for i in range(4)]
            states += [dataclasses.replace(t, device=dataclasses.replace(t.device, name=f"c{t.device.name}{i}"))
                       for i in range((n - 4) // 2) for t in tmpl]
            pub = Publisher(nc, site=f"cap{n}", collector="cap#0/1", prefixes=("192.0.2.53/32",), every_s=1.0)
            await pub.start()
            timeline = Timeline(anycast_prefixes=("192.0.2.53/32",))
            cycles: list[float] = []
            ru0, w0 = None, 0.0
            end = None
            k = 0
            while end is None or time.monotonic() < end:
                t = time.monotonic()
                now = int(time.time() * 1000)
                for st in states:
                    st = dataclasses.replace(st, collected_at_ms=now,
                                             health=dataclasses.replace(st.health, last_ok_ms=now))
                    timeline.update(st)
                    pub.offer(st)
                cycles.append(time.monotonic() - t)
                k += 1
                if k == 3:  # the first polls publish every device's full state: measure from here
                    ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                    end = w0 + max(args.idle_s, 61.0)  # past one KV refresh round (every 60 polls)
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
            ru1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            cores = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / (w1 - w0)
            cyc = statistics.median(cycles[3:])
            await pub.stop()
            ok = cores < 0.95 and cyc < 1.0
            rows.append({"devices": len(states), "cycle_s": round(cyc, 3), "cores": round(cores, 3), "keeps_up": ok})
            print(f"one collector, {len(states)} devices: median cycle {cyc:.3f} s, {cores:.2f} core "
                  f"({cores / len(states) * 100:.3f} core per 100 devices): {'keeps up' if ok else 'falls behind'}",
                  flush=True)
            if not ok:
                break
        await nc.close()
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)
    fits = [r["devices"] for r in rows if r["keeps_up"]]
    print(json.dumps({"capacity": rows, "largest_kept_up": max(fits) if fits else None}, indent=1))


# --------------------------------------------------------------------------- a late viewer's catch-up


async def _catch_up(args: argparse.Namespace) -> None:
    """A new viewer's start to every device of a ``--devices`` fabric in its timeline, ``--repeat`` times.

    The KV bucket is filled once as ``--capacity`` fills it (a spine, a leaf and a server of the fabric polled
    for real, cloned under new names: leaves of ~4,000 routes, spines of ~12,000 at 2,000 devices), or with
    ``--distinct`` with every device of the fabric (the simulator's own states: each its own addresses and
    next hops, as the screen meets them in a real fabric), by four real Publishers; nothing else runs
    meanwhile, so this measures the viewer's own work (the full run's catch-up also shares the CPU with the
    collectors)."""
    import nats

    from anycast_tui.fleet.conn import Retention
    from anycast_tui.fleet.publisher import Publisher, ensure_stream

    sim = _fabric(args.devices)
    if args.distinct:  # as a real fabric: every device its own link addresses, next hops and route templates
        t = time.perf_counter()
        states = list(sim.snapshot(int(time.time() * 1000)).devices.values())
        print(f"{len(states)} distinct device states made in {time.perf_counter() - t:.0f} s", flush=True)
    else:
        session = SimSession(sim)
        session.poll(order=["spine01", "leaf01", "server01"])
        snap = session.timeline.snapshot.devices
        states = [dataclasses.replace(snap["spine01"], device=dataclasses.replace(snap["spine01"].device,
                                                                                  name=f"cspine{i}"))
                  for i in range(4)]
        states += [dataclasses.replace(t, device=dataclasses.replace(t.device, name=f"c{t.device.name}{i}"))
                   for i in range((args.devices - 4) // 2) for t in (snap["leaf01"], snap["server01"])]
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    work = Path(tempfile.mkdtemp(prefix="bench-nats-"))
    port = _free_port()
    srv = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(work)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    try:
        await _wait(lambda: _up(port), 20)
        nc = await nats.connect(url)
        await ensure_stream(nc.jetstream(), Retention(max_age_s=3600, max_bytes=2**31, kv_max_bytes=2**30))
        pubs = [Publisher(nc, site="bench", collector=f"bench#{k}/4", prefixes=("192.0.2.53/32",), every_s=3600.0)
                for k in range(4)]
        for p in pubs:
            await p.start()
        t = time.perf_counter()
        for i, st in enumerate(states):
            pubs[i % 4].offer(st)
        for p in pubs:
            await p.drain(1800)
        print(f"{len(states)} devices published in {time.perf_counter() - t:.0f} s", flush=True)
        times, cpus = [], []
        for _ in range(args.repeat):  # each viewer a process of its own, as a user starts one (this one holds
            # the fabric it published: a viewer here would share its collections, and it the viewer's)
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            out = subprocess.run([sys.executable, "-c", _CATCH_UP, url, str(len(states))], capture_output=True,
                                 text=True, timeout=900, env=env)
            if out.returncode != 0:
                raise RuntimeError(f"catch-up viewer failed: {out.stderr.strip()[-500:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            times.append(got["s"])
            cpus.append(got["cpu_s"])
            _phase("catch_up", got)
        screens = [_screen(url, len(states), record) for _ in range(args.repeat) for record in (False, True)] \
            if args.screen else []
        for p in pubs:
            await p.stop()
        await nc.close()
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"viewer catch-up ({len(states)} devices from KV): median {statistics.median(times):.2f} s, "
          f"CPU {statistics.median(cpus):.2f} s (of {args.repeat}); {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")
    for record in (False, True):
        runs = [s for s in screens if s["record"] is record]
        if runs:
            med = {k: statistics.median(s[k] for s in runs) for k in ("shown_s", "cpu_at_shown_s", "rss_mb",
                                                                      "cpu_next_20_s", "rss_after_mb")}
            print(f"monitor --source{'' if record else ' --no-record'}: the screen counts all {len(states)} devices "
                  f"{med['shown_s']:.2f} s after the command (process start included; CPU {med['cpu_at_shown_s']:.1f}"
                  f" s, RSS {med['rss_mb']:.0f} MB); the next 20 s: CPU {med['cpu_next_20_s']:.1f} s, RSS "
                  f"{med['rss_after_mb']:.0f} MB (median of {len(runs)})")


_CATCH_UP = """
import asyncio, json, sys, time
from anycast_tui.cli import SWITCH_INTERVAL_S
from anycast_tui.fleet.conn import NatsOptions
from anycast_tui.fleet.source import NatsSource

async def main(url, n):
    late = NatsSource(NatsOptions((url,)))
    t, c = time.perf_counter(), time.process_time()
    await late.start()
    while not (late.ready.is_set() and len(late.health()) == n):
        await asyncio.sleep(0.005)
    s, cpu = time.perf_counter() - t, time.process_time() - c
    await late.stop()
    print(json.dumps({"s": round(s, 2), "cpu_s": round(cpu, 2)}))

sys.setswitchinterval(SWITCH_INTERVAL_S)  # as the CLI runs
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""  # a new viewer's catch-up: from its start (connecting included, Python's own start not) to every device in
#   its timeline


def _screen(url: str, n: int, record: bool) -> dict:
    """The real ``anycast-tui monitor --source`` in a tmux pane (120x40): seconds from the command to its status
    line counting all ``n`` devices ok, its CPU and RSS then, and over the next 20 s (trackers, health checks,
    the recorder catching up in the background)."""
    session = f"bench-nats-{os.getpid()}"
    cmd = [sys.executable, "-m", "anycast_tui", "monitor", "--source", url] + ([] if record else ["--no-record"])
    rec = tempfile.mkdtemp(prefix="bench-nats-rec-")
    env = f"ANYCAST_TUI_RECORDINGS={rec} PYTHONPATH={Path(__file__).resolve().parents[1]}"
    t = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    f"{env} exec {' '.join(cmd)}"], check=True)
    try:
        while f"{n}/{n} ok" not in subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                                   capture_output=True, text=True).stdout:
            if time.perf_counter() - t > 300:
                raise RuntimeError("monitor did not show every device in 300 s")
            time.sleep(0.05)
        shown = time.perf_counter() - t
        pid = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                             text=True).stdout.strip()

        def usage() -> tuple[float, float]:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss / 1024

        cpu0, rss0 = usage()
        time.sleep(20)
        cpu1, rss1 = usage()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        shutil.rmtree(rec, ignore_errors=True)
    out = {"record": record, "shown_s": round(shown, 2), "cpu_at_shown_s": round(cpu0, 2), "rss_mb": round(rss0),
           "cpu_next_20_s": round(cpu1 - cpu0, 2), "rss_after_mb": round(rss1)}
    _phase("screen", out)
    return out


def _up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--collectors", type=int, default=2)
    ap.add_argument("--flips", type=int, default=20, help="leaves failed and restored one at a time")
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--capacity", type=lambda v: [int(x) for x in v.split(",")], metavar="N,N,...",
                    help="instead: one collector's inventory stepped through these sizes (cloned devices of a "
                         "--devices fabric) until its 1 s polls no longer fit in one core")
    ap.add_argument("--scaling", type=lambda v: [int(x) for x in v.split(",")], metavar="K,K,...",
                    help="run the whole benchmark once per collector count (e.g. 1,2,4) and print the throughput")
    ap.add_argument("--monitor", action="store_true",
                    help="the viewer (and the baseline) also run monitor's impact/incident trackers and health checks")
    ap.add_argument("--profile", action="store_true",
                    help="sample the viewer's threads during the flips and the burst; print where the time went")
    ap.add_argument("--catch-up", action="store_true",
                    help="instead: a new viewer's catch-up alone, KV filled with a --devices fabric's cloned states "
                         "(--distinct: its own states)")
    ap.add_argument("--repeat", type=int, default=5, help="--catch-up: viewers started one after the other")
    ap.add_argument("--distinct", action="store_true",
                    help="--catch-up: KV holds every device of the simulated fabric, each with its own addresses "
                         "and next hops (~80 s to build at 2,000), not a spine, a leaf and a server cloned")
    ap.add_argument("--screen", action="store_true",
                    help="--catch-up: also time the real 'monitor --source' (in tmux) until its screen counts "
                         "every device, --repeat times with and without recording")
    ap.add_argument("--switch-interval", type=float, default=SWITCH_INTERVAL_S, metavar="S",
                    help="the viewer's and the collectors' thread switch interval (default: the CLI's, "
                         f"{SWITCH_INTERVAL_S * 1000:g} ms; Python's own is 0.005)")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.setswitchinterval(args.switch_interval)  # as anycast-tui's commands run (cli.SWITCH_INTERVAL_S)
    if args.worker is not None:
        asyncio.run(_worker(args))
        return
    if not (shutil.which("nats-server") or os.path.exists("/usr/sbin/nats-server")):
        sys.exit("bench_nats: nats-server not installed (apt-get install nats-server)")
    if args.capacity:
        asyncio.run(_capacity(args))
        return
    if args.catch_up:
        asyncio.run(_catch_up(args))
        return
    if not args.scaling:
        asyncio.run(_main(args))
        return
    rows = []
    for k in args.scaling:
        args.collectors = k
        print(f"--- {args.devices} devices over {k} collectors", flush=True)
        rows.append(asyncio.run(_main(args)))
    for r in rows:
        print(f"{r['collectors']} collectors: poll cycle {r['poll_cycle_s']:.3f} s for "
              f"{r['devices'] // r['collectors']} devices each, {r['throughput_devices_s']:.0f} device states/s "
              f"handed over, change -> viewer p50 {r['latency_bus']['p50'] * 1000:.0f} ms "
              f"p95 {r['latency_bus']['p95'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
