"""Faults against real SSH servers on 127.0.0.1 (the ones test_ssh_poller/test_ssh_session do not cover):
a listener that never sends the banner, a flapping device, bounded connects and channels, a 20x slower
device, optional commands missing, an old iproute2 detected with ``ip -V``, live flows."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from anycast_tui.collect.backoff import Backoff
from anycast_tui.collect.commands import FLOW_COMMANDS, FRR_RIB, FRR_RUNNING, IP_VERSION, LINUX_POLL, LINUX_POLL_OLD
from anycast_tui.collect.poller import Poller
from anycast_tui.collect.ssh import ConnectError, SSHSession
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.model.types import Flow, HealthStatus, Role

from ssh_fixtures import FIXTURES, CannedDevice, wait_for

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05, stream=False)
PARSE_FIXTURES = FIXTURES.parents[1] / "fixtures" / "parse"


async def test_listener_that_never_sends_the_banner_times_out_and_is_retried(tmp_path):
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep the socket open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    from anycast_tui.collect.inventory import DeviceConfig

    cfg = DeviceConfig("mute", platform="sim", host="127.0.0.1", port=port, user="atui", connect_timeout_s=0.3,
                       known_hosts=tmp_path / "known_hosts", use_ssh_config=False, use_agent=False)
    cfg.known_hosts.write_text("")
    s = SSHSession(cfg, backoff=Backoff(0.01, 0.02))
    try:
        with pytest.raises(ConnectError, match=r"connect timed out after 0\.3 s") as ei:
            await s.run(LINUX_POLL[0])
        assert not ei.value.permanent and s.permanent_error is None and accepted
        await asyncio.sleep(0.03)  # past the backoff: tried again, not given up
        with pytest.raises(ConnectError, match="timed out"):
            await s.run(LINUX_POLL[0])
        assert s.connects == 2
    finally:
        server.close()
        for w in accepted:
            w.close()


async def test_flapping_device_records_each_transition_and_backs_off_with_jitter(make_farm):
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "leaf02": CannedDevice("leaf")})
    poller = Poller(farm.inventory(**{**FAST, "backoff_base_s": 0.02, "backoff_max_s": 0.08}), interval_s=0.01)
    s = poller.session("leaf01")
    s.backoff.rng = random.Random(5)
    ep = farm.endpoints["leaf01"]
    status = lambda: poller.snapshot().devices["leaf01"].health.status  # noqa: E731
    try:
        await poller.start()
        for _ in range(3):
            await wait_for(lambda: status() is HealthStatus.OK)
            await ep.stop()
            await wait_for(lambda: status() is HealthStatus.STALE and s.backoff.failures >= 4)
            await ep.start()
        await wait_for(lambda: status() is HealthStatus.OK)
    finally:
        await poller.stop()
    statuses = [st for _, st, _ in poller.transitions("leaf01")]
    assert statuses == [HealthStatus.OK, HealthStatus.STALE] * 3 + [HealthStatus.OK]
    assert [st for _, st, _ in poller.transitions("leaf02")] == [HealthStatus.OK]  # the other one never flapped
    times = [ms for ms, _, _ in poller.transitions("leaf01")]
    assert times == sorted(times)
    raws = [r for r, _ in s.backoff.history]
    assert max(raws) == 0.08 and 0.02 in raws and 0.04 in raws  # grows, capped
    assert all(r * 0.5 <= d <= r for r, d in s.backoff.history)  # jitter removes up to half
    assert len({d for _, d in s.backoff.history}) > len(set(raws))  # ... and differs between attempts
    assert s.backoff.failures == 0  # reset by the last success


async def test_connects_are_bounded_globally(make_farm):
    handlers = {f"leaf{i:02d}": CannedDevice("leaf") for i in range(6)}
    farm = await make_farm(handlers)
    for ep in farm.endpoints.values():
        ep.faults.auth_delay_s = 0.2
    inv = dataclasses.replace(farm.inventory(**FAST), max_connections=2)
    poller = Poller(inv)
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, sum(ep.counters.authenticating for ep in farm.endpoints.values()))
            await asyncio.sleep(0.005)

    sampler = asyncio.ensure_future(sample())
    try:
        snap = await poller.poll_once()
    finally:
        sampler.cancel()
        await poller.stop()
    assert all(st.health.status is HealthStatus.OK for st in snap.devices.values())
    assert peak == 2  # never more than the limit, and the limit is used


async def test_commands_per_device_are_bounded_by_max_channels(make_farm):
    active, peak = 0, 0
    canned = CannedDevice("leaf")

    async def counting(line: str) -> CommandResult:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.02)
            return await canned(line)
        finally:
            active -= 1

    farm = await make_farm({"leaf01": counting})
    poller = Poller(farm.inventory(**{**FAST, "max_channels": 2}))
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf01"].health.status is HealthStatus.OK and peak == 2


async def test_device_twenty_times_slower_does_not_hold_the_others_back(make_farm):
    handlers = {"spine01": CannedDevice("spine"), "leaf01": CannedDevice("leaf"),
                "leaf02": CannedDevice("leaf", delay_s=0.4)}  # ~20x a local poll
    farm = await make_farm(handlers)
    poller = Poller(farm.inventory(**{**FAST, "command_timeout_s": 5.0}), interval_s=0.01)
    try:
        await poller.start()
        await wait_for(lambda: poller.polls("leaf02") >= 2)
        slow = poller.polls("leaf02")
        fast = [poller.polls(n) for n in ("spine01", "leaf01")]
    finally:
        await poller.stop()
    assert all(f > 2 * slow for f in fast), (fast, slow)
    assert all(st.health.status is HealthStatus.OK for st in poller.snapshot().devices.values())


TCP_LINE, UDP_LINE = (c.line for c in FLOW_COMMANDS["ss"])
SS_TCP = ("0 0 192.0.2.53:8053 203.0.113.7:40001\n"
          "\t cubic wscale:7,7 rto:204 mss:1448 cwnd:10 lastsnd:120 lastrcv:120 lastack:80\n"
          "0 0 192.0.2.53:8053 203.0.113.7:40002\n"  # a leftover: nothing heard for 10 minutes
          "\t cubic wscale:7,7 rto:204 mss:1448 cwnd:10 lastsnd:600000 lastrcv:600000 lastack:600000\n"
          "0 0 198.18.0.31:22 198.18.0.1:50000\n"  # an SSH session to the server: not an anycast flow
          "\t cubic wscale:7,7 rto:204 mss:1448 cwnd:10\n")
SS_UDP = "UNCONN 0 0 192.0.2.53:53 0.0.0.0:*\nESTAB 0 0 192.0.2.53:53 203.0.113.9:3333\n"


async def test_live_flows_from_ss_while_conntrack_is_missing(make_farm):
    handler = CannedDevice("leaf", overrides={TCP_LINE: CommandResult(SS_TCP), UDP_LINE: CommandResult(SS_UDP)})
    farm = await make_farm({"server01": handler})
    inv = farm.inventory({"server01": Role.SERVER}, **FAST, flow_sources=("ss", "conntrack"))
    poller = Poller(inv)
    try:
        snap = await poller.poll_once()
        again = (await poller.poll_once()).devices["server01"]
    finally:
        await poller.stop()
    st = snap.devices["server01"]
    assert again.flows is st.flows and poller.reparsed("server01") == 1  # unchanged ss output: not read again
    assert st.health.status is HealthStatus.OK and st.routes
    assert st.flows == (Flow(6, "203.0.113.7", 40001, "192.0.2.53", 8053), Flow(17, "203.0.113.9", 3333,
                                                                               "192.0.2.53", 53))
    assert st.flows_stale == 1 and not st.flows_udp_known  # the idle socket; UDP unknown without conntrack
    assert poller.optional_errors("server01") == {
        "flows_ct": "flows_ct: command not found on the device (exit 127): bash: conntrack: command not found"}


async def test_garbage_flow_output_is_a_parse_error_naming_the_command(make_farm):
    handler = CannedDevice("leaf", overrides={TCP_LINE: CommandResult("what is this\n"), UDP_LINE: CommandResult("")})
    farm = await make_farm({"server01": handler})
    poller = Poller(farm.inventory(**FAST, flow_sources=("ss",)))
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    st = snap.devices["server01"]
    assert st.health.status is HealthStatus.ERROR and (st.health.error or "").startswith("flows_tcp: line 1")


async def test_frr_platform_without_vtysh_still_polls(make_farm):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    poller = Poller(farm.inventory(**FAST, platform="frr"))
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf01"].health.status is HealthStatus.OK
    assert set(poller.optional_errors("leaf01")) == {FRR_RIB.id, FRR_RUNNING.id}  # each said in one line
    calls = farm.endpoints["leaf01"].handler.calls
    assert calls[0] == IP_VERSION.line and calls.count(IP_VERSION.line) == 1


async def test_old_iproute2_gets_text_commands_once_per_connection(make_farm):
    route_text = (PARSE_FIXTURES / "kernel-route.txt").read_text()
    old = {IP_VERSION.line: CommandResult("ip utility, iproute2-ss130716\n"),
           LINUX_POLL_OLD[0].line: CommandResult(route_text), LINUX_POLL_OLD[1].line: CommandResult(""),
           LINUX_POLL_OLD[2].line: CommandResult((PARSE_FIXTURES / "kernel-addr.txt").read_text()),
           LINUX_POLL_OLD[3].line: CommandResult(CannedDevice("leaf").outputs[LINUX_POLL[-1].line])}
    handler = CannedDevice("leaf", overrides=old)
    farm = await make_farm({"leaf01": handler})
    poller = Poller(farm.inventory(**FAST, platform="linux"))
    try:
        await poller.poll_once()
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.OK, st.health
    assert st.routes and st.interfaces and not st.nexthops.groups
    assert handler.calls.count(IP_VERSION.line) == 1
    assert not any(" -j " in c for c in handler.calls)  # no JSON asked of an iproute2 without it
