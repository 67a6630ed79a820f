"""``anycast-tui demo`` and ``monitor`` end to end in a subprocess: simulator → real SSH → poller → timeline → lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from demo_inventory import write_inventory

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]

pytestmark = pytest.mark.ssh


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_headless_demo_prints_the_leaf03_failure_from_both_spines():
    proc = _cli("demo", "--headless", "12", "--interval", "0.5")  # leaf03 fails at 5 s; room for a slow machine
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("demo: 10 devices on 127.0.0.1")
    stamp = r"\d\d:\d\d:\d\d\.\d\d\d"
    for spine in ("spine01", "spine02"):
        pat = re.compile(rf"^{stamp} − {spine} 192\.0\.2\.53/32: next hop via \S+ dev swp3 removed \(4→3-way\)$")
        assert any(pat.match(l) for l in lines), f"{spine} did not lose its leaf03 next hop:\n{proc.stdout}"
    assert any(re.match(rf"^{stamp} ✗ leaf03 unreachable: .*connection refused", l) for l in lines), proc.stdout
    # leaf03 comes back only at ~20 s: nothing was re-added within 12 s.
    assert not any(" next hop " in l and " added " in l for l in lines)
    # and it is one incident, whatever order the devices answered in (the spines before leaf03 was ever polled,
    # the SSH poller handing back the same route records while nothing changes), still open
    incidents = [l for l in lines if l.startswith("#")]
    assert len(incidents) == 1, proc.stdout
    assert re.match(rf"^#1 failure {stamp} open [\d.]+ s · leaf03 unreachable \(.*connection refused\); ", incidents[0])
    assert "spine01, spine02 lost next hop leaf03" in incidents[0]
    assert " of 10,000 synthetic flows, estimated" in incidents[0] and "ingress assumed" in incidents[0]
    assert "out of service: server03 (1 of 4 servers, 25 %)" in incidents[0]


def test_headless_demo_without_scenario_is_quiet():
    proc = _cli("demo", "--headless", "2", "--interval", "0.5", "--no-scenario")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["devices: 10 of 10 answered"]


def test_tui_without_a_terminal_is_one_clear_line():
    proc = _cli("demo")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "anycast-tui demo: the TUI needs a terminal; use --headless SECONDS to print events instead"]


def test_monitor_with_a_missing_config_is_one_clear_line(tmp_path):
    proc = _cli("monitor", "-c", str(tmp_path / "nope.toml"), "--headless", "1")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("anycast-tui monitor: ") and "nope.toml: cannot read" in err[0]


def test_help_has_examples():
    for cmd in ("demo", "monitor"):
        proc = _cli(cmd, "--help")
        assert proc.returncode == 0
        assert "examples:" in proc.stdout and f"anycast-tui {cmd} " in proc.stdout


async def _wait_commands(endpoint, n: int) -> None:
    import asyncio

    for _ in range(600):  # an upper bound, not a timing assertion
        if endpoint.counters.commands >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{endpoint.name} answered only {endpoint.counters.commands} commands")


async def test_headless_monitor_over_an_inventory_file_sees_a_leaf_fail(tmp_path):
    import asyncio

    from anycast_tui.collect.commands import LINUX_POLL
    from anycast_tui.lab.demo import DemoFabric

    async with DemoFabric(tmp_path / "demo", scenario=None) as fabric:
        farm = fabric.farm
        import socket

        with socket.socket() as s:  # a port nothing listens on: a device down from the start
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        cfg = write_inventory(fabric, tmp_path / "fabric.toml", extra=(
            "[[device]]", 'name = "ghost"', 'role = "leaf"', 'host = "127.0.0.1"', f"port = {dead_port}", ""))
        proc = await asyncio.create_subprocess_exec(*CLI, "monitor", "-c", str(cfg), "--headless", "8", cwd=ROOT,
                                                    stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        spine = farm.endpoints["spine01"]
        await _wait_commands(spine, 2 * len(LINUX_POLL))  # two full polls: the baseline is known
        await fabric.fail("leaf02")
        await _wait_commands(spine, spine.counters.commands + 2 * len(LINUX_POLL))
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    # a device that never answered: said when it fails, summed up at the end, and the exit status is 1
    assert proc.returncode == 1, err.decode()
    assert text.startswith("monitor: 11 devices, polling every 0.3 s for 8 s")
    assert re.search(r"^\d\d:\d\d:\d\d\.\d\d\d ✗ ghost not answering: .*refused", text, re.M), text
    assert text.rstrip().splitlines()[-1].startswith("devices: 10 of 11 answered; never answered: ghost (")
    for s in ("spine01", "spine02"):
        assert re.search(rf"− {s} 192\.0\.2\.53/32: next hop via \S+ dev swp2 removed \(4→3-way\)", text), text
