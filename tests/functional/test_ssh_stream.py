"""Streaming ``ip -o monitor`` over real SSH: a change in the simulated fabric re-polls the device at
once (the periodic poll is far away), devices that refuse the monitor are polled only."""

from __future__ import annotations

import asyncio

import pytest

from anycast_tui.collect.commands import MONITOR
from anycast_tui.collect.poller import Poller
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.lab.simmonitor import monitor_lines, routes_of, with_monitor
from anycast_tui.model.types import DeviceState, HealthStatus

from ssh_fixtures import CannedDevice, wait_for

pytestmark = pytest.mark.ssh

SLOW = 3600.0  # periodic resync so far away that only the monitor can cause a re-poll
FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)


def _anycast_nexthops(st: DeviceState) -> int:
    return sum(len(r.nexthops) for r in st.routes if r.dst == "192.0.2.53/32" and r.table in (None, "main", 254))


async def test_monitor_lines_follow_the_simulation():
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    lines: list[str] = []

    async def consume() -> None:  # a change's lines come in one go (the generator sleeps between changes)
        async for line in monitor_lines(sim, "spine01", poll_s=0.001):
            lines.append(line)

    task = asyncio.ensure_future(consume())
    try:
        await asyncio.sleep(0.01)
        sim.fail_link("spine01", "leaf01")
        await wait_for(lambda: bool(lines))
        down = list(lines)
        sim.restore_link("spine01", "leaf01")
        await wait_for(lambda: len(lines) > len(down))
        up = lines[len(down):]
    finally:
        task.cancel()
    anycast_down = [ln for ln in down if "192.0.2.53" in ln]
    assert anycast_down[0].startswith("Deleted 192.0.2.53 ") and anycast_down[0].count("nexthop via") == 2
    assert {ln.removeprefix("Deleted ") for ln in down if ln.startswith("Deleted ")} == \
        {ln for ln in up if not ln.startswith("Deleted ")}  # the restore adds back what the failure deleted
    assert all("\n" not in ln for ln in down + up)
    assert with_monitor(sim, "spine01")("ip -j link show").exit_status == 0  # other lines: the plain handler


async def test_a_change_repolls_only_through_the_stream(make_farm):
    sim = SimFabric(SimConfig(spines=2, leaves=2))
    farm = await make_farm({n: with_monitor(sim, n, poll_s=0.005) for n in sim.devices})
    poller = Poller(farm.inventory(sim.roles(), **FAST), interval_s=SLOW)
    try:
        await poller.start()
        await wait_for(lambda: all(ep.counters.streams == 1 for ep in farm.endpoints.values()))
        before = {n: poller.polls(n) for n in sim.devices}
        routes = {n: routes_of(sim, n) for n in sim.devices}
        assert _anycast_nexthops(poller.snapshot().devices["spine01"]) == 2
        sim.fail_link("spine01", "leaf01")
        await wait_for(lambda: _anycast_nexthops(poller.snapshot().devices["spine01"]) == 1)
        assert poller.streaming("spine01") and poller.polls("spine01") > before["spine01"]
        sim.restore_link("spine01", "leaf01")
        await wait_for(lambda: _anycast_nexthops(poller.snapshot().devices["spine01"]) == 2)
        # devices whose routes never changed were not polled again
        sim.fail_link("spine01", "leaf01")  # (no await in between: the monitors see no change)
        quiet = [n for n in sim.devices if routes_of(sim, n) == routes[n]]
        sim.restore_link("spine01", "leaf01")
        assert quiet and all(poller.polls(n) == before[n] for n in quiet), (quiet, before)
    finally:
        await poller.stop()


async def test_device_refusing_the_monitor_is_polled_and_the_reason_kept(make_farm):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    poller = Poller(farm.inventory(**FAST), interval_s=0.02, stream_retry_s=SLOW)
    try:
        await poller.start()
        await wait_for(lambda: poller.stream_error("leaf01") is not None and poller.polls("leaf01") >= 3)
    finally:
        await poller.stop()
    assert not poller.streaming("leaf01")
    assert poller.stream_error("leaf01").startswith("monitor: command not found")
    assert farm.endpoints["leaf01"].handler.calls.count(MONITOR.line) == 1  # not retried in a loop


async def test_stream_comes_back_after_the_device_does(make_farm):
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    farm = await make_farm({n: with_monitor(sim, n, poll_s=0.005) for n in sim.devices})
    ep = farm.endpoints["spine01"]
    poller = Poller(farm.inventory(sim.roles(), **FAST), interval_s=0.05)
    try:
        await poller.start()
        await wait_for(lambda: ep.counters.streams == 1)
        await ep.stop()
        await wait_for(lambda: poller.snapshot().devices["spine01"].health.status is HealthStatus.STALE)
        assert not poller.streaming("spine01")
        await ep.start()
        await wait_for(lambda: ep.counters.streams == 2)
        sim.fail_link("spine01", "leaf02")
        await wait_for(lambda: _anycast_nexthops(poller.snapshot().devices["spine01"]) == 1)
    finally:
        await poller.stop()
    statuses = [s for _, s, _ in poller.transitions("spine01")]
    assert statuses[:3] == [HealthStatus.OK, HealthStatus.STALE, HealthStatus.OK]
