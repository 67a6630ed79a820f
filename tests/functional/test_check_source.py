"""``anycast-tui check --source nats://…``: the checks on the devices' latest states as the collectors published
them, against ``check -c`` polling the same simulated fabric over real SSH.

A real nats-server, two real collector processes (``collect --shard 0/2`` and ``1/2``) on a fabric with hazards
built in (one hash seed on spines and leaves, two servers per leaf, an outbound TCP connection from the anycast
address on server01), then leaf03 failed: both commands' JSON findings are compared field by field.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from anycast_tui.fleet.conn import NatsOptions
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import Flow, HealthStatus
from natsserver import NatsServer, start_collector, wait_for
from test_check import ANY, _cli, _fabric, _strict  # the same SSH fabric and command runner as check -c's own tests

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "anycast_tui"]
pytestmark = pytest.mark.ssh


def _findings(doc: dict) -> list[tuple]:
    return sorted((f["rule"], f["severity"], f["subject"], f["summary"], tuple(f["evidence"])) for f in doc["findings"])


def _diff(bus: list, ssh: list) -> str:
    return (f"only from the bus: {[x for x in bus if x not in ssh]}\n"
            f"only from check -c: {[x for x in ssh if x not in bus]}")


def _published_after(viewer: NatsSource, t_ms: int, n: int, down: str | None = None) -> bool:
    """Every device's state on the viewer collected after ``t_ms`` (``down``: that one not OK)."""
    snap = viewer.timeline.snapshot
    if snap is None or len(snap.devices) != n:
        return False
    for name, st in snap.devices.items():
        if name == down:
            if st.health.status is HealthStatus.OK:
                return False
        elif st.health.status is not HealthStatus.OK or st.collected_at_ms <= t_ms:
            return False
    return True


async def test_check_source_finds_what_check_c_finds(make_farm, tmp_path):
    server = NatsServer(tmp_path)
    server.start()
    seeds = tuple((n, 7) for n in ("spine01", "spine02", "leaf01", "leaf02", "leaf03", "leaf04"))
    sim = SimFabric(SimConfig(servers_per_leaf=2, hash_seeds=seeds))
    sim.set_connections("server01", [Flow(6, "198.51.100.7", 443, "192.0.2.53", 45678),
                                     Flow(6, "203.0.113.9", 40000, "192.0.2.53", 443)])
    config, farm = await _fabric(make_farm, tmp_path, sim)
    n = len(sim.devices)
    collectors = [start_collector(config, server.url, "a", tmp_path / f"collector{i}.log", "--shard", f"{i}/2",
                                  "--heartbeat", "2") for i in range(2)]
    viewer = NatsSource(NatsOptions((server.url,)))  # only to know when the bus holds what a poll now sees
    try:
        await viewer.start()
        await wait_for(lambda: _published_after(viewer, 0, n), "every device published and fresh", timeout=90)
        connections_before = sum(ep.counters.connections for ep in farm.endpoints.values())
        code_bus, out_bus, err_bus = await _cli("check", "--source", server.url, "--json")
        # check --source opened no SSH connection to any device
        assert sum(ep.counters.connections for ep in farm.endpoints.values()) == connections_before
        code_ssh, out_ssh, err_ssh = await _cli("check", "-c", str(config), "--json")
        bus, ssh = _strict(out_bus), _strict(out_ssh)
        assert code_bus == code_ssh == 1, err_bus + err_ssh
        assert bus["source"] == {"source": f"127.0.0.1:{server.port}"}
        rules = {(f["rule"], f["severity"], f["subject"]) for f in bus["findings"]}
        assert ("outbound-tcp-anycast", "error", "server01") in rules and ("polarized", "warning",
                                                                          f"leaf01 {ANY}") in rules
        assert _findings(bus) == _findings(ssh), _diff(_findings(bus), _findings(ssh))
        assert bus["answered"] == ssh["answered"] == n and bus["worst"] == ssh["worst"] == "error"
        assert bus["shares"] == ssh["shares"] and bus["hash_settings"] == ssh["hash_settings"]

        # leaf03 fails: once the collectors have published a poll after it, both see the same fabric again
        t_fail = int(time.time() * 1000)
        sim.apply("fail_device", "leaf03")
        await wait_for(lambda: _published_after(viewer, t_fail, n, down="leaf03"), "the failure on the bus",
                       timeout=90)
        code_bus, out_bus, err_bus = await _cli("check", "--source", server.url, "--json")
        code_ssh, out_ssh, err_ssh = await _cli("check", "-c", str(config), "--json")
        bus, ssh = _strict(out_bus), _strict(out_ssh)
        assert code_bus == code_ssh == 1, err_bus + err_ssh
        assert bus["not_answered"] == ssh["not_answered"] == ["leaf03"]
        down = [(f["rule"], f["severity"]) for f in bus["findings"] if f["subject"] == "leaf03"]
        assert ("device-not-answering", "error") in down
        # the same findings; the unreachable device's evidence is its error text, each side's own connection
        key = lambda doc: sorted((f["rule"], f["severity"], f["subject"]) + (  # noqa: E731
            () if f["rule"] == "device-not-answering" else (f["summary"], tuple(f["evidence"])))
            for f in doc["findings"])
        assert key(bus) == key(ssh), _diff(key(bus), key(ssh))
        assert bus["shares"] == ssh["shares"]

        # the table names the bus; --site of a site nobody publishes is one line, exit 1
        code, out, _ = await _cli("check", "--source", server.url)
        assert code == 1 and out.splitlines()[0].startswith(f"check: 127.0.0.1:{server.port}; devices: {n - 1} of "
                                                             f"{n} answered; did not answer: leaf03 (")
        code, out, err = await _cli("check", "--source", server.url, "--site", "nowhere")
        assert code == 1 and out == ""
        assert err.strip() == (f"anycast-tui check: no device state on NATS at 127.0.0.1:{server.port} for site "
                               "nowhere: no collector has published there (anycast-tui collect --publish …)")
    finally:
        await viewer.stop()
        for c in collectors:
            c.send_signal(signal.SIGTERM)
        for c in collectors:
            c.wait(60)
        server.stop()


async def test_check_source_serve_metrics(make_farm, tmp_path):
    """``check --source --serve --metrics``: the bus read on, the checks at /metrics, findings as lines."""
    server = NatsServer(tmp_path)
    server.start()
    sim = SimFabric(SimConfig(leaf_servers=(1, 1, 2, 1), hash_seeds=(("spine01", 0),)))
    config, farm = await _fabric(make_farm, tmp_path, sim)
    collector = start_collector(config, server.url, "a", tmp_path / "collector.log", "--heartbeat", "2")
    proc = await asyncio.create_subprocess_exec(
        *CLI, "check", "--source", server.url, "--serve", "--metrics", "127.0.0.1:0", cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert first == f"check: 127.0.0.1:{server.port}; reading the collectors; serving until SIGTERM\n"
        url = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode().strip().removeprefix("metrics: ")
        seen = ""
        while "seed-zero" not in seen:  # the finding raised on the bus's states, printed as it is
            try:
                line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
            except asyncio.TimeoutError:  # say what both processes said (one CI run saw this once)
                proc.send_signal(signal.SIGTERM)
                _, err = await asyncio.wait_for(proc.communicate(), 60)
                log = (tmp_path / "collector.log").read_text(errors="replace")
                pytest.fail(f"no seed-zero finding in 90 s; check printed {seen!r}; its stderr:\n"
                            f"{err.decode(errors='replace')[-3000:]}\ncollector log:\n{log[-3000:]}")
            assert line, f"check ended before printing the seed-zero finding; it printed {seen!r}"
            seen += line
        import urllib.request

        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=30).read().decode())
        assert 'rule="seed-zero"' in body
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
        server.stop()


@pytest.mark.parametrize("args, line", [
    (("--source", "nats://u:p@127.0.0.1:4222"), "credentials in the NATS URL are refused"),
    (("--source", "nats://127.0.0.1:4222", "--nats-creds", "/nonexistent.creds"),
     "NATS credentials file /nonexistent.creds: not found"),
    (("--source", "nats://127.0.0.1:4222", "--nats-user-env", "ATUI_UNSET_U", "--nats-password-env", "ATUI_UNSET_P"),
     "NATS user: environment variable ATUI_UNSET_U is not set"),
    (("-c", "fabric.toml", "--site", "a"), "--site needs --source"),
    (("--source", "nats://127.0.0.1:4222", "--serve"), "--serve needs --metrics [ADDR:]PORT"),
])
async def test_bad_source_options_are_one_line(args, line):
    code, out, err = await _cli("check", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"anycast-tui check: {line}"), err
