"""`lab up` / `lab down` on the real kernel: SSH reachability, and nothing left behind (even after a kill -9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anycast_tui.collect.commands import LINUX_POLL
from anycast_tui.collect.inventory import load_inventory
from anycast_tui.lab import labctl, netns
from anycast_tui.lab.nslab import ANYCAST

from .conftest import TEST_PREFIX, lab_ready, make_lab

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel


def _root_veths() -> set[str]:
    out = json.loads(netns.run(None, "ip", "-j", "link", "show", "type", "veth").stdout or "[]")
    return {link["ifname"] for link in out}


def _ns_pids(prefix: str) -> set[int]:
    pids: set[int] = set()
    for ns in netns.list_namespaces(prefix):
        pids |= {int(p) for p in netns.run(None, "ip", "netns", "pids", ns, check=False).stdout.split()}
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def _ssh(inv_path: Path, name: str, command: str) -> subprocess.CompletedProcess[str]:
    d = load_inventory(inv_path).device(name)
    return subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
                           f"UserKnownHostsFile={d.known_hosts}", "-i", str(d.key_path), "-p", str(d.port),
                           f"{d.user}@{d.host}", command], capture_output=True, text=True, timeout=30)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "anycast_tui.commands.lab", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd="/")


def test_up_ssh_fail_restore_down_leaves_nothing(tmp_path: Path):
    lab_ready("static")
    prefix = TEST_PREFIX + "h-"
    veths_before = _root_veths()
    lab = make_lab(tmp_path, prefix, routing="static")
    try:
        inv = Path(lab.cfg.inventory)
        assert len(netns.list_namespaces(prefix)) == 11
        # every device answers the fixed commands over real OpenSSH, host keys verified
        for name in lab.topo.nodes:
            res = _ssh(inv, name, " ".join(LINUX_POLL[-1].argv))
            assert res.returncode == 0, res.stderr
            policy, _fields, seed = res.stdout.split()[:3]
            assert (policy, seed) == ("1", str(lab.topo.node(name).seed))
        denied = _ssh(inv, "spine01", "ip link set leaf01 down")
        assert denied.returncode == 126 and "not allowed" in denied.stderr
        assert lab.anycast_paths("spine01") == 4
        lab.fail("leaf03")
        assert lab.expected_paths() == {"spine01": 3, "spine02": 3}
        assert lab.anycast_paths("spine01") == 3 and lab.anycast_paths("spine02") == 3
        st = lab.status()
        assert st["down"]["devices"] == ["leaf03"] and st["ssh_daemon"]
        lab.restore("leaf03")
        assert lab.anycast_paths("spine01") == 4
        route = netns.ip(lab.topo.node("leaf03").ns, "route", "show", f"{ANYCAST}/32")
        assert "server03" in route  # the restored leaf got its routes back
        pids = _ns_pids(prefix) | {int((Path(lab.cfg.state_dir) / "labssh.pid").read_text())}
        lab.start_services()
        pids |= _ns_pids(prefix)
    finally:
        removed = labctl.down(prefix, tmp_path / "state")
    assert len(removed) == 11
    assert netns.list_namespaces(prefix) == []
    assert not any(_alive(p) for p in pids)
    assert not (tmp_path / "state").exists() and not (tmp_path / "lab.toml").exists()
    assert not labctl.state_dir_pointer(prefix).exists()
    assert not (labctl.STATE_ROOT / "frr" / prefix.rstrip("-")).exists()
    ours = {ln.a for ln in lab.topo.links} | {ln.b for ln in lab.topo.links}  # interfaces are named after peers
    assert not (_root_veths() - veths_before) & ours
    assert labctl.down(prefix, tmp_path / "state") == []  # safe twice


def test_down_cleans_after_killed_up(tmp_path: Path):
    lab_ready("static")
    prefix = TEST_PREFIX + "k-"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "anycast_tui.commands.lab", "--prefix", prefix, "--state-dir",
                             str(tmp_path / "state"), "up", "--routing", "static", "-c", str(tmp_path / "lab.toml")],
                            env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ports = tmp_path / "state" / "ssh_ports.json"
    while not ports.exists() and proc.poll() is None:  # kill it once the SSH daemon runs
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    daemon = int((tmp_path / "state" / "labssh.pid").read_text())
    assert netns.list_namespaces(prefix)
    res = _cli("--prefix", prefix, "down")  # finds the state dir `up` recorded
    assert res.returncode == 0, res.stderr
    assert netns.list_namespaces(prefix) == []
    assert not _alive(daemon)
    assert not (tmp_path / "state").exists() and not (tmp_path / "lab.toml").exists()


def test_cli_refuses_with_one_line(tmp_path: Path):
    lab_ready("static")
    res = _cli("--prefix", TEST_PREFIX + "none-", "--state-dir", str(tmp_path / "s"), "fail", "leaf03")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no lab is up" in res.stderr
    res = _cli("--prefix", "mylab-", "status")
    assert res.returncode == 2 and "--prefix must start with 'atui-'" in res.stderr
    res = _cli("--prefix", TEST_PREFIX + "none-", "up", "--size", "2by4")
    assert res.returncode == 2 and "SPINESxLEAVES" in res.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    unpriv = subprocess.run(["unshare", "--user", "--", sys.executable, "-m", "anycast_tui.commands.lab", "up"],
                            capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert unpriv.returncode == 2 and unpriv.stderr == "anycast-tui lab: network namespaces need root\n"


def test_up_refuses_to_overwrite_a_foreign_inventory(tmp_path: Path):
    lab_ready("static")
    prefix = TEST_PREFIX + "f-"
    (tmp_path / "lab.toml").write_text("# my own fabric\n")
    res = _cli("--prefix", prefix, "--state-dir", str(tmp_path / "state"), "up", "--routing", "static",
               "-c", str(tmp_path / "lab.toml"))
    assert res.returncode == 2 and "was not written by `lab up`" in res.stderr
    assert (tmp_path / "lab.toml").read_text() == "# my own fabric\n"
    assert netns.list_namespaces(prefix) == []


def test_ssh_streams_monitor_and_stops_it_on_close(tmp_path: Path):
    lab_ready("static")
    import asyncio

    import asyncssh

    from anycast_tui.lab import labssh

    line = "ip -o monitor route link nexthop"
    if line not in labssh.LINES:
        pytest.skip("the collector's command list has no ip monitor")
    prefix = TEST_PREFIX + "m-"
    lab = make_lab(tmp_path, prefix, routing="static")
    try:
        d = load_inventory(Path(lab.cfg.inventory)).device("spine01")

        async def go() -> list[str]:
            async with asyncssh.connect(d.host, port=d.port, username=d.user, client_keys=[str(d.key_path)],
                                        known_hosts=str(d.known_hosts), agent_path=None, config=None) as conn:
                proc = await conn.create_process(line)
                await asyncio.sleep(0.3)  # the monitor is listening
                await asyncio.to_thread(lab.fail, "leaf03")
                got: list[str] = []
                while len(got) < 50 and not any("leaf03" in g for g in got):
                    got.append(await asyncio.wait_for(proc.stdout.readline(), 10))
                proc.close()
                await proc.wait_closed()
            return got

        got = asyncio.run(go())
        assert any("leaf03" in g for g in got)
        ns = lab.topo.node("spine01").ns
        for _ in range(100):  # the daemon kills the monitor once the channel is closed
            pids = netns.run(None, "ip", "netns", "pids", ns).stdout.split()
            cmds = [Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if Path(f"/proc/{p}").exists()]
            if not any(b"monitor" in c for c in cmds):
                break
            time.sleep(0.05)
        else:
            pytest.fail("ip monitor still runs after the client closed its channel")
    finally:
        labctl.down(prefix, tmp_path / "state")
