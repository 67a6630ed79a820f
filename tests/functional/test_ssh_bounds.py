"""Bounds of the SSH collector against the embedded SSH server (issue 16 items 1, 2 and 7): a device
answering more than ``max_output_mib`` or a stream line longer than ``STREAM_LINE_MAX`` is cut off and
named; ``accept_new_host_key`` writes nothing before a connection succeeded; and a failing device (auth,
refused, timing out) costs no memory per poll over 10,000 polls."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from pathlib import Path
from typing import AsyncIterator

import pytest

from anycast_tui.collect import ssh
from anycast_tui.collect.commands import LINUX_POLL, MONITOR
from anycast_tui.collect.poller import Poller
from anycast_tui.collect.ssh import STREAM_LINE_MAX, AuthError, OutputTooLarge, SSHSession
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.model.types import HealthStatus
from anycast_tui.parse.route import parse_ip_route_json

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=10.0, connect_timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.05, stream=False)
ROUTES4 = LINUX_POLL[0]
BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_leak.py"


async def test_a_command_answering_more_than_max_output_is_aborted_and_named(make_farm):
    canned = CannedDevice("leaf")
    flood = {ROUTES4.line: CommandResult("[" + " " * (3 << 20) + "]\n")}  # 3 MiB of JSON
    farm = await make_farm({"leaf01": CannedDevice("leaf", overrides=flood)})
    poller = Poller(farm.inventory(**FAST, max_output_mib=1))
    try:
        st = (await poller.poll_once()).devices["leaf01"]
        assert st.health.status is HealthStatus.ERROR
        assert st.health.error == "ip -j -4 route show table all: output over 1 MiB, aborted (max_output_mib)"
        s = poller.session("leaf01")
        with pytest.raises(OutputTooLarge):
            await s.run(ROUTES4)
        out = await s.run(LINUX_POLL[1])  # the connection goes on
        assert out.stdout == canned.outputs[LINUX_POLL[1].line]
    finally:
        await poller.stop()
    poller = Poller(farm.inventory(**FAST, max_output_mib=4))  # the same answer under a larger cap: parsed
    try:
        st = (await poller.poll_once()).devices["leaf01"]
    finally:
        await poller.stop()
    assert st.health.status is HealthStatus.OK, st.health


async def test_a_stream_line_longer_than_the_cap_ends_the_stream(make_farm):
    canned = CannedDevice("leaf")

    def handler(line: str) -> object:
        if line != MONITOR.line:
            return canned(line)

        async def lines() -> AsyncIterator[str]:
            yield "2: swp1: <BROADCAST,UP> mtu 1500"
            yield "x" * (STREAM_LINE_MAX + 4096)  # sent as one line: over the cap before its newline
            await asyncio.sleep(3600)
            yield "never"

        return lines()

    farm = await make_farm({"leaf01": handler})
    s = SSHSession(farm.inventory(**FAST).device("leaf01"))
    got: list[str] = []
    try:
        with pytest.raises(OutputTooLarge, match=r"^ip -o monitor route link nexthop: line over 1 MiB, aborted$"):
            async for ln in s.stream(MONITOR):
                got.append(ln)
        assert got == ["2: swp1: <BROADCAST,UP> mtu 1500"]
        assert (await s.run(ROUTES4)).exit_status == 0  # the connection goes on
    finally:
        await s.close()


async def test_accept_new_host_key_writes_nothing_before_a_connection_succeeded(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    kh = tmp_path / "not" / "yet" / "known_hosts"
    cfg = farm.inventory(**FAST, known_hosts=kh, accept_new_host_key=True).device("leaf01")
    farm.endpoints["leaf01"].faults.reject_auth = True
    s = SSHSession(cfg)
    with pytest.raises(AuthError):
        await s.run(ROUTES4)
    assert not (tmp_path / "not").exists()  # no directory, no file: the connection never succeeded
    farm.endpoints["leaf01"].faults.reject_auth = False
    s = SSHSession(cfg)
    try:
        assert (await s.run(ROUTES4)).exit_status == 0
    finally:
        await s.close()
    assert kh.read_text().split() == farm.endpoints["leaf01"].known_hosts_line().split()
    assert (kh.stat().st_mode & 0o777, kh.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_leak", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("mode", ["auth", "refused", "timeout"])
async def test_a_failing_device_costs_no_memory_per_poll(mode):
    # Before: ~2.1 KB more per poll of a device failing auth (the same exception re-raised every poll kept
    # every raise's traceback); 8,000 polls would be ~17 MB.  Allowed: 128 KB (16 B a poll) of noise.
    late, _early, reason = await _bench().growth(mode, 10_000, 2_000)
    assert late * 8_000 < 128 * 1024, (mode, late, reason)
    assert reason


async def test_a_device_refusing_for_a_day_still_says_connection_refused(tmp_path):
    # Backoff's factor ** failures overflowed a float at the 1025th failure in a row (a device down ~17 h at
    # the 60 s cap): every poll after that was "internal error: OverflowError".
    from anycast_tui.collect.backoff import Backoff
    from anycast_tui.collect.inventory import DeviceConfig
    from anycast_tui.collect.ssh import ConnectError

    (tmp_path / "known_hosts").write_text("")
    cfg = DeviceConfig("leaf01", host="127.0.0.1", port=_bench()._free_port(), user="atui",
                       known_hosts=tmp_path / "known_hosts", use_ssh_config=False, use_agent=False)
    s = SSHSession(cfg, backoff=Backoff(1e-9, 1e-9, jitter=0.0), clock=lambda: 1e9 + s.connects)
    for _ in range(1100):
        with pytest.raises(ConnectError, match="connection refused$"):
            await s.run(ROUTES4)
    assert s.connects == 1100 and s.backoff.failures <= 65


def _routes_json(n: int) -> str:
    """``ip -j -4 route show`` of ``n`` 4-way BGP routes (~314 bytes each)."""
    nhs = [{"gateway": f"198.18.1.{k}", "dev": "swp1", "weight": 1, "flags": ["onlink"]} for k in range(2, 6)]
    return json.dumps([{"dst": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32", "protocol": "bgp", "metric": 20,
                        "flags": [], "nexthops": nhs} for i in range(n)])


def _open_in(directory: Path) -> list[str]:
    """Our open files in ``directory`` (an O_TMPFILE shows as ``DIR/#inode (deleted)``)."""
    out = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory)):
            out.append(target)
    return out


async def test_an_answer_over_the_spool_size_is_parsed_from_disk_and_leaves_nothing(make_farm, tmp_path):
    text = _routes_json(ssh.SPOOL_BYTES // 300)  # a little over 16 MiB: kept in an anonymous file, not in memory
    assert len(text) > ssh.SPOOL_BYTES
    farm = await make_farm({"leaf01": CannedDevice("leaf", overrides={ROUTES4.line: CommandResult(text)})})
    spool = tmp_path / "spool"
    spool.mkdir()
    poller = Poller(farm.inventory(**FAST, spool_dir=spool))
    try:
        st = (await poller.poll_once()).devices["leaf01"]
        assert st.health.status is HealthStatus.OK, st.health
        v4 = [r for r in st.routes if r.family == 4]
        assert v4 == parse_ip_route_json(text, family=4)  # the records of the same text read in memory
        assert _open_in(spool) == [] and list(spool.iterdir()) == []  # closed, and never had a name
        again = (await poller.poll_once()).devices["leaf01"]
        assert again.routes is st.routes and poller.reparsed("leaf01") == 1  # same digest: not parsed again
    finally:
        await poller.stop()


async def test_a_spool_directory_that_cannot_take_the_answer_is_named(make_farm, tmp_path):
    text = _routes_json(ssh.SPOOL_BYTES // 300)
    farm = await make_farm({"leaf01": CannedDevice("leaf", overrides={ROUTES4.line: CommandResult(text)})})
    poller = Poller(farm.inventory(**FAST, spool_dir=tmp_path / "missing"))
    try:
        st = (await poller.poll_once()).devices["leaf01"]
    finally:
        await poller.stop()
    assert st.health.status is HealthStatus.ERROR
    assert st.health.error.startswith("ip -j -4 route show table all: output over 16 MiB could not be kept on disk, "
                                      "aborted: No such file or directory"), st.health.error
    assert st.health.error.endswith("(spool_dir)") and not (tmp_path / "missing").exists()
