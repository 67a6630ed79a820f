"""The simulated ``ip -o monitor`` woken by the simulator's change notification: the same lines as the
polling one for a scripted sequence of changes, nothing (and no work) while idle, a change from another
thread still arrives, and over real SSH a change reaches the client through the stream."""

from __future__ import annotations

import asyncio
import threading

import asyncssh
import pytest

from anycast_tui.collect.commands import MONITOR
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.lab.simmonitor import monitor_lines, routes_of, with_monitor

from ssh_fixtures import wait_for

pytestmark = pytest.mark.ssh

SCRIPT = [
    ("fail_link", ("spine01", "leaf01")),
    ("restore_link", ("spine01", "leaf01")),
    ("withdraw", ("server02",)),
    ("set_weight", ("spine01", "192.0.2.53/32", "swp2", 3)),
    ("fail_device", ("leaf03",)),
    ("announce", ("server02",)),
    ("restore_device", ("leaf03",)),
    ("fail_device", ("spine01",)),  # the monitored device itself: both streams end
]


def _expected(before: list[str], after: list[str]) -> list[str]:
    gone, new = set(before) - set(after), set(after) - set(before)
    return [f"Deleted {ln}" for ln in before if ln in gone] + [ln for ln in after if ln in new]


async def _consume(gen, out: list[str], ended: list[bool]) -> None:
    try:
        async for line in gen:
            out.append(line)
    finally:
        ended.append(True)


async def test_event_driven_monitor_prints_what_the_polling_one_did():
    sim = SimFabric(SimConfig(spines=2, leaves=3))
    ev: list[str] = []
    po: list[str] = []
    ev_end: list[bool] = []
    po_end: list[bool] = []
    tasks = [asyncio.ensure_future(_consume(monitor_lines(sim, "spine01"), ev, ev_end)),
             asyncio.ensure_future(_consume(monitor_lines(sim, "spine01", poll_s=0.001), po, po_end))]
    try:
        await wait_for(lambda: sim.listeners == 1)  # the event-driven one has taken its first look
        await asyncio.sleep(0.01)  # and the polling one too
        for action, args in SCRIPT:
            before = routes_of(sim, "spine01")
            n_ev, n_po = len(ev), len(po)
            sim.apply(action, *args)
            after = routes_of(sim, "spine01")
            if after is None:
                await wait_for(lambda: bool(ev_end) and bool(po_end))
                assert len(ev) == n_ev and len(po) == n_po
                break
            want = _expected(before or [], after)
            await wait_for(lambda: len(ev) - n_ev == len(want) and len(po) - n_po == len(want))
            assert ev[n_ev:] == want, action
            assert po[n_po:] == want, action
        else:
            raise AssertionError("the script ends with the monitored device failing")
        assert ev == po and any(ln.startswith("Deleted ") for ln in ev)
        assert sim.listeners == 0  # the ended stream unsubscribed
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_idle_monitor_prints_nothing_and_does_no_work():
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    calls: list[str] = []
    real = sim.handle

    def counting(device: str, line: str):
        calls.append(line)
        return real(device, line)

    sim.handle = counting  # type: ignore[method-assign]
    lines: list[str] = []
    gen = monitor_lines(sim, "spine01")
    task = asyncio.ensure_future(_consume(gen, lines, []))
    try:
        await wait_for(lambda: sim.listeners == 1)
        first_look = len(calls)
        assert first_look == 2  # the IPv4 and IPv6 route dumps it diffs against
        for _ in range(50):  # many loop turns and some time: a poller would have looked again
            await asyncio.sleep(0.002)
        assert lines == [] and len(calls) == first_look
        sim.withdraw("server01")
        await wait_for(lambda: bool(lines))
        assert len(calls) == first_look + 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await wait_for(lambda: sim.listeners == 0)  # a cancelled stream unsubscribes too


async def test_a_change_from_another_thread_wakes_the_stream():
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    lines: list[str] = []
    task = asyncio.ensure_future(_consume(monitor_lines(sim, "spine01"), lines, []))
    try:
        await wait_for(lambda: sim.listeners == 1)
        t = threading.Thread(target=sim.fail_link, args=("spine01", "leaf01"))
        t.start()
        await asyncio.to_thread(t.join)
        await wait_for(lambda: any(ln.startswith("Deleted 192.0.2.53") for ln in lines))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_failing_listener_does_not_stop_the_change():
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    heard: list[int] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    sim.subscribe(broken)
    unsubscribe = sim.subscribe(lambda: heard.append(sim.generation))
    sim.fail_link("spine01", "leaf01")
    assert heard == [1] and sim.generation == 1  # the change happened and the next listener heard it
    unsubscribe()
    unsubscribe()  # twice is harmless
    sim.restore_link("spine01", "leaf01")
    assert heard == [1]


def test_nexthop_answers_are_kept_until_a_change_unless_resilient():
    plain = SimFabric(SimConfig(spines=1, leaves=2))
    line = "ip -j nexthop show"
    first = plain.handle("spine01", line)
    assert plain.handle("spine01", line) is first
    plain.fail_link("spine01", "leaf01")
    assert plain.handle("spine01", line) is not first
    t = [0.0]
    res = SimFabric(SimConfig(spines=1, leaves=2, resilient=True), clock=lambda: t[0])
    buckets = "ip -j nexthop bucket show"
    a = res.handle("spine01", buckets)
    t[0] = 5.0
    b = res.handle("spine01", buckets)
    assert a is not b and a.stdout != b.stdout  # idle times move with the clock


async def test_a_change_arrives_over_ssh_through_the_event_driven_stream(make_farm):
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    farm = await make_farm({n: with_monitor(sim, n) for n in sim.devices})
    ep = farm.endpoints["spine01"]
    async with asyncssh.connect(ep.host, ep.port, username=farm.user, client_keys=[farm.client_key],
                                known_hosts=str(farm.known_hosts_path)) as conn:
        proc = await conn.create_process(MONITOR.line)
        await wait_for(lambda: sim.listeners == 1)
        sim.fail_link("spine01", "leaf02")
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.startswith("Deleted ")
        proc.close()
        await proc.wait_closed()
    await wait_for(lambda: sim.listeners == 0)  # the closed channel ended the stream
