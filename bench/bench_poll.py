"""Benchmark: full poll cycles over SSH with warm connections (10 devices, then 200), collector memory.

    python3 bench/bench_poll.py [--cycles 30] [--baseline-cycles 3] [--devices 200] [--mem-routes 10000]

The simulated fabric (anycast_tui.lab.sim: 2 spines, 4 leaves, 4 servers) is
served by the embedded SSH farm in a child process (so client and server do not
share one event loop).  Measured, medians over the cycles:

* poll cycle: Poller.poll_once() — every device's LINUX_POLL commands on parallel
  channels of its one warm connection, parsed into DeviceState;
* where the time goes: one command on one device; one device's commands
  sequentially vs on parallel channels; the cycle without parsing; the cycle
  with 1 and 8 channels per device;
* baseline: a loop of OpenSSH ``ssh`` client calls for the same commands
  (one process and connection per command, as a shell script would do).

Scale (``--devices``, default 200; canned leaf outputs so the server stays cheap):

* poll cycle of all devices (routes + links and addresses + nexthop groups + buckets +
  sysctls each, parsed), warm connections: goal <= 2 s;
* baseline: a loop of ``ssh host 'ip -j -4 route show table all'`` (ONE command per device
  against our full poll), sampled on ``--baseline-sample`` devices and extrapolated
  linearly to all of them (said so in the output): goal >= 20x;
* memory: a fresh client process polls every device once with ``--mem-routes``
  routes in each routes4 answer; its RSS growth and peak (VmHWM) are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, Mapping

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from childserver import ChildServer  # noqa: E402
from anycast_tui.collect.commands import LINUX_POLL  # noqa: E402
from anycast_tui.collect.inventory import DeviceConfig, Inventory  # noqa: E402
from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.collect.ssh import SSHSession  # noqa: E402
from anycast_tui.model.types import Device, DeviceState, Health, Role  # noqa: E402

GOAL_MS = 100.0


# --------------------------------------------------------------------------- server (child process)


def _canned_handlers(names: Mapping[str, Role]) -> dict[str, Callable[[str], object]]:
    """Handlers answering from the outputs captured in tests/functional/ssh_fixtures (no simulation cost)."""
    from anycast_tui.lab.sshserver import CommandResult

    fixtures = ROOT / "tests" / "functional" / "ssh_fixtures"
    table = {role: {c.line: (fixtures / role / f"{c.id}.out").read_text() for c in LINUX_POLL}
             for role in ("spine", "leaf")}

    def make(outputs: dict[str, str]) -> Callable[[str], object]:
        def handle(line: str) -> object:
            if line in outputs:
                return CommandResult(outputs[line])
            return CommandResult("", f"bash: {line.split()[0]}: command not found\n", 127)
        return handle
    return {n: make(table["spine" if r is Role.SPINE else "leaf"]) for n, r in names.items()}


def _many_routes(n: int) -> str:
    """``ip -j -4 route show`` with ``n`` BGP /32 routes in 198.18.0.0/15."""
    return json.dumps([{"dst": f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}", "gateway": "198.19.0.1",
                        "dev": "swp1", "protocol": "bgp", "metric": 20, "flags": []} for i in range(n)])


async def _serve(workdir: Path, handlers: str, count: int = 0, routes: int = 0) -> None:
    from anycast_tui.lab.sim import SimConfig, SimFabric
    from anycast_tui.lab.sshserver import CommandResult, SSHFarm

    sim = SimFabric(SimConfig(spines=2, leaves=4, servers_per_leaf=1))
    roles = {n: sim.role(n) for n in sim.devices}
    if count:
        roles = {f"dev{i:03d}": Role.LEAF for i in range(count)}
    table = {n: sim.handler(n) for n in sim.devices} if handlers == "sim" else _canned_handlers(roles)
    if routes:
        big = CommandResult(_many_routes(routes))
        for n, h in list(table.items()):
            table[n] = (lambda h: lambda line: big if line == LINUX_POLL[0].line else h(line))(h)
    farm = SSHFarm(table, workdir=workdir)  # type: ignore[arg-type]
    await farm.start()
    info = {n: {"port": ep.port, "role": roles[n].value} for n, ep in farm.endpoints.items()}
    print(json.dumps({"devices": info, "key": str(farm.client_key_path), "known_hosts": str(farm.known_hosts_path),
                      "user": farm.user}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await farm.stop()


# --------------------------------------------------------------------------- client


def _inventory(info: dict, **settings: object) -> Inventory:
    devices = tuple(
        DeviceConfig(name=n, role=Role(d["role"]), platform="sim", host="127.0.0.1", port=d["port"],
                     user=info["user"], key_path=Path(info["key"]), known_hosts=Path(info["known_hosts"]),
                     **settings)  # type: ignore[arg-type]
        for n, d in info["devices"].items())
    return Inventory(devices, 1.0, ("192.0.2.53/32",))


def _no_parse(device: Device, outputs: Mapping[str, str], *, collected_at_ms: int, health: Health) -> DeviceState:
    return DeviceState(device, collected_at_ms=collected_at_ms, health=health)


def _server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Meter:
    """Wall-clock median (p10, p90) plus client and server CPU per call."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    async def __call__(self, label: str, fn: Callable[[], Awaitable[object]], n: int) -> float:
        await fn()  # warm
        times = []
        c0, s0 = time.process_time(), _server_cpu_s(self.server_pid)
        for _ in range(n):
            t0 = time.perf_counter()
            await fn()
            times.append((time.perf_counter() - t0) * 1000)
        cpu_c = (time.process_time() - c0) / n * 1000
        cpu_s = (_server_cpu_s(self.server_pid) - s0) / n * 1000
        q = statistics.quantiles(times, n=10)
        med = statistics.median(times)
        print(f"  {label:<62} median {med:7.1f} ms  (p10 {q[0]:.1f}, p90 {q[-1]:.1f}; "
              f"cpu client {cpu_c:.1f}, server {cpu_s:.1f})")
        return med


async def _client(info: dict, cycles: int, meter: _Meter, *, parse: bool, breakdown: bool) -> dict[str, float]:
    results: dict[str, float] = {}
    inv = _inventory(info)
    if parse:
        poller = Poller(inv)  # the real parser (anycast_tui.parse.device)
        try:
            snap = await poller.poll_once()
            bad = {n: s.health.error for n, s in snap.devices.items() if s.health.status.value != "ok"}
            if bad:
                print(f"  warning: devices not ok: {bad}")
            results["cycle"] = await meter(
                f"poll cycle, {len(inv.devices)} devices x <= {len(LINUX_POLL)} commands, collect + parse",
                poller.poll_once, cycles)
        finally:
            await poller.stop()
    for channels in ((1, 4, 8) if breakdown else (4,)):
        p = Poller(_inventory(info, max_channels=channels), builder=_no_parse)
        try:
            results[f"collect_ch{channels}"] = await meter(
                f"poll cycle, collect only, max_channels={channels}", p.poll_once, cycles)
        finally:
            await p.stop()
    if not breakdown:
        return results
    cfg = _inventory(info, max_channels=8).devices[2]
    s = SSHSession(cfg)
    try:
        one = LINUX_POLL[0]
        results["one"] = await meter(f"one command ({one.id}) on {cfg.name}: open + exec + close",
                                     lambda: s.run(one), cycles)

        async def seq() -> None:
            for c in LINUX_POLL:
                await s.run(c)
        results["device_seq"] = await meter(f"{cfg.name}: {len(LINUX_POLL)} commands one after another", seq, cycles)
        results["device_par"] = await meter(f"{cfg.name}: {len(LINUX_POLL)} commands on parallel channels",
                                            lambda: s.run_many(LINUX_POLL), cycles)
    finally:
        await s.close()
    return results


def _ssh_baseline(info: dict, cycles: int) -> float | None:
    ssh = shutil.which("ssh")
    if ssh is None:
        print("  baseline skipped: no OpenSSH client")
        return None
    times = []
    for _ in range(cycles):
        t0 = time.perf_counter()
        for d in info["devices"].values():
            for c in LINUX_POLL:
                subprocess.run([ssh, "-F", "/dev/null", "-i", info["key"], "-o", "BatchMode=yes",
                                "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={info['known_hosts']}",
                                "-o", "StrictHostKeyChecking=yes", "-p", str(d["port"]),
                                f"{info['user']}@127.0.0.1", c.line], check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    print(f"  {'OpenSSH ssh loop, same commands, sim fabric (1 process each)':<62} median {med:7.1f} ms"
          f"   ({cycles} cycles)")
    return med


def _server(handlers: str, workdir: str, count: int = 0, routes: int = 0) -> ChildServer:
    """The SSH farm in a child process; ``info`` says how to reach it."""
    return ChildServer(__file__, ["--serve", workdir, "--handlers", handlers, "--count", str(count), "--routes",
                                  str(routes)], stop_s=10)


async def _scale(info: dict, cycles: int, meter: _Meter) -> float:
    poller = Poller(_inventory(info, stream=False))
    try:
        snap = await poller.poll_once()  # connects (bounded by max_connections)
        bad = [n for n, st in snap.devices.items() if st.health.status.value != "ok"]
        if bad:
            print(f"  warning: {len(bad)} devices not ok, e.g. {bad[0]}: {snap.devices[bad[0]].health.error}")
        return await meter(f"poll cycle, {len(info['devices'])} devices x <= {len(LINUX_POLL)} commands, parsed",
                           poller.poll_once, cycles)
    finally:
        await poller.stop()


def _ssh_route_loop(info: dict, sample: int, cycles: int) -> float | None:
    """Median ms of ``ssh host 'ip -j -4 route show table all'`` over ``sample`` devices, scaled to all."""
    ssh = shutil.which("ssh")
    if ssh is None:
        print("  baseline skipped: no OpenSSH client")
        return None
    devices = list(info["devices"].values())[:sample]
    times = []
    for _ in range(cycles):
        t0 = time.perf_counter()
        for d in devices:
            subprocess.run([ssh, "-F", "/dev/null", "-i", info["key"], "-o", "BatchMode=yes",
                            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={info['known_hosts']}",
                            "-o", "StrictHostKeyChecking=yes", "-p", str(d["port"]),
                            f"{info['user']}@127.0.0.1", LINUX_POLL[0].line], check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times) * len(info["devices"]) / len(devices)
    print(f"  {'OpenSSH loop, 1 route command per device':<62} median {med:7.1f} ms   (measured on "
          f"{len(devices)} devices x {cycles} cycles, extrapolated x{len(info['devices']) / len(devices):g})")
    return med


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _mem_client(info_json: str) -> int:
    """Child process: poll every device once (big route tables), print RSS growth and peak."""
    import gc

    info = json.loads(info_json)
    poller = Poller(_inventory(info, stream=False, command_timeout_s=300.0, connect_timeout_s=60.0,
                               backoff_base_s=2.0, backoff_max_s=2.0))
    rss0 = _status_kb("VmRSS")

    async def run() -> tuple[int, int]:
        try:
            snap = await poller.poll_once()
            for _ in range(3):  # a connect refused under the load of 200 big answers: after its backoff, again
                if all(st.health.status.value == "ok" for st in snap.devices.values()):
                    break
                await asyncio.sleep(2.5)
                snap = await poller.poll_once()
        finally:
            await poller.stop()
        gc.collect()
        ok = sum(1 for st in snap.devices.values() if st.health.status.value == "ok")
        errors = sorted({st.health.error or "" for st in snap.devices.values() if st.health.status.value != "ok"})
        if errors:
            print(f"errors: {errors[:3]}", file=sys.stderr)
        routes = sum(len(st.routes) for st in snap.devices.values())
        print(json.dumps({"ok": ok, "routes": routes, "rss_kb": _status_kb("VmRSS") - rss0,
                          "hwm_kb": _status_kb("VmHWM"), "rss0_kb": rss0}), flush=True)
        return ok, routes

    asyncio.run(run())
    return 0


def _memory(info: dict) -> dict | None:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--mem-client", json.dumps(info)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print(f"  memory run failed: {proc.stderr.strip().splitlines()[-1:] }")
        return None
    if proc.stderr.strip():
        print(f"  client: {proc.stderr.strip()[-300:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall_s"] = time.perf_counter() - t0
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--baseline-cycles", type=int, default=3)
    ap.add_argument("--serve", metavar="WORKDIR", help=argparse.SUPPRESS)
    ap.add_argument("--handlers", choices=("sim", "canned"), default="sim", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--routes", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--mem-client", help=argparse.SUPPRESS)
    ap.add_argument("--devices", type=int, default=200, help="devices of the scale run (0: skip it)")
    ap.add_argument("--scale-cycles", type=int, default=10)
    ap.add_argument("--baseline-sample", type=int, default=20, help="devices the scale baseline is measured on")
    ap.add_argument("--mem-routes", type=int, default=10000, help="routes per device in the memory run (0: skip)")
    ap.add_argument("--skip-small", action="store_true", help="only the scale and memory runs")
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(Path(args.serve), args.handlers, args.count, args.routes))
        return 0
    if args.mem_client:
        return _mem_client(args.mem_client)
    if args.skip_small:
        return _scale_main(args)
    cycles = max(10, args.cycles)
    print(f"bench_poll: 10 devices over SSH on 127.0.0.1, server in a child process, {os.cpu_count()} CPUs, "
          f"{cycles} cycles, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="atui-bench-") as tmp:
        print("simulated fabric (anycast_tui.lab.sim answers every command):")
        server = _server("sim", f"{tmp}/sim")
        try:
            res = asyncio.run(_client(server.info, cycles, _Meter(server.proc.pid), parse=True, breakdown=False))
            print("canned outputs (tests/functional/ssh_fixtures), SSH cost alone — where the time goes:")
            canned = _server("canned", f"{tmp}/canned")
            try:
                asyncio.run(_client(canned.info, cycles, _Meter(canned.proc.pid), parse=False, breakdown=True))
            finally:
                canned.close()
            print("baseline:")
            base = _ssh_baseline(server.info, args.baseline_cycles)
        finally:
            server.close()
    cycle = res["cycle"]
    verdict = "meets" if cycle < GOAL_MS else "MISSES"
    print(f"result: poll cycle median {cycle:.1f} ms {verdict} the {GOAL_MS:.0f} ms goal", end="")
    if base:
        print(f"; {base / cycle:.0f}x faster than the OpenSSH ssh loop ({base:.0f} ms)")
    else:
        print()
    return _scale_main(args)


def _scale_main(args: argparse.Namespace) -> int:
    n = args.devices
    if n <= 0:
        return 0
    print(f"scale: {n} devices (canned leaf outputs), each its own SSH listener in a child process, "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="atui-bench-") as tmp:
        server = _server("canned", f"{tmp}/scale", count=n)
        try:
            cycle = asyncio.run(_scale(server.info, max(5, args.scale_cycles), _Meter(server.proc.pid)))
            print("baseline:")
            base = _ssh_route_loop(server.info, min(n, args.baseline_sample), 3)
        finally:
            server.close()
        mem = None
        if args.mem_routes > 0:
            print(f"memory: one poll of {n} devices x {args.mem_routes} routes (fresh client process):")
            big = _server("canned", f"{tmp}/mem", count=n, routes=args.mem_routes)
            try:
                mem = _memory(big.info)
            finally:
                big.close()
            if mem:
                print(f"  {mem['ok']} devices ok, {mem['routes']} routes held; collector RSS growth "
                      f"{mem['rss_kb'] / 1024:.0f} MiB (peak VmHWM {mem['hwm_kb'] / 1024:.0f} MiB, "
                      f"{mem['rss0_kb'] / 1024:.0f} MiB before polling), {mem['wall_s']:.1f} s wall for the run")
    verdict = "meets" if cycle <= 2000 else "MISSES"
    print(f"result: {n}-device poll cycle median {cycle:.1f} ms {verdict} the 2000 ms goal", end="")
    if base:
        ratio = base / cycle
        print(f"; {ratio:.1f}x faster than the OpenSSH route loop ({base:.0f} ms, extrapolated) — "
              f"{'meets' if ratio >= 20 else 'MISSES'} the 20x goal")
    else:
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
