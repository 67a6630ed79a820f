"""Benchmark: one full poll cycle of a 10-device fabric over SSH with warm connections.

    python3 bench/bench_poll.py [--cycles 30] [--baseline-cycles 3]

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


async def _serve(workdir: Path, handlers: str) -> None:
    from anycast_tui.lab.sim import SimConfig, SimFabric
    from anycast_tui.lab.sshserver import SSHFarm

    sim = SimFabric(SimConfig(spines=2, leaves=4, servers_per_leaf=1))
    roles = {n: sim.role(n) for n in sim.devices}
    table = {n: sim.handler(n) for n in sim.devices} if handlers == "sim" else _canned_handlers(roles)
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
                f"poll cycle, {len(inv.devices)} devices x {len(LINUX_POLL)} commands, collect + parse",
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


class _Server:
    """The SSH farm in a child process; ``info`` says how to reach it."""

    def __init__(self, handlers: str, workdir: str):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", workdir, "--handlers", handlers],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--baseline-cycles", type=int, default=3)
    ap.add_argument("--serve", metavar="WORKDIR", help=argparse.SUPPRESS)
    ap.add_argument("--handlers", choices=("sim", "canned"), default="sim", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(Path(args.serve), args.handlers))
        return 0
    cycles = max(10, args.cycles)
    print(f"bench_poll: 10 devices over SSH on 127.0.0.1, server in a child process, {os.cpu_count()} CPUs, "
          f"{cycles} cycles, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="atui-bench-") as tmp:
        print("simulated fabric (anycast_tui.lab.sim answers every command):")
        server = _Server("sim", f"{tmp}/sim")
        try:
            res = asyncio.run(_client(server.info, cycles, _Meter(server.proc.pid), parse=True, breakdown=False))
            print("canned outputs (tests/functional/ssh_fixtures), SSH cost alone — where the time goes:")
            canned = _Server("canned", f"{tmp}/canned")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
