"""Scenario and ScenarioRunner on an injected clock (no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from anycast_tui.lab.scenario import AppliedStep, Scenario, ScenarioRunner, Step, default_scenario
from anycast_tui.lab.sim import SimFabric


class FakeTime:
    """A clock whose sleep advances time at once."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    async def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.t += dt
        await asyncio.sleep(0)


def anycast_leaves(sim: SimFabric) -> int:
    r = [r for r in sim.routes("spine01", 4, table="main") if r.dst == "192.0.2.53/32"]
    return len(r[0].nexthops) if r else 0


def test_default_scenario_shape():
    sc = default_scenario()
    assert [(s.at, s.action, s.args) for s in sc] == [
        (5, "fail_device", ("leaf03",)), (20, "restore_device", ("leaf03",)),
        (30, "withdraw", ("server02",)), (40, "announce", ("server02",))]
    assert sc.duration == 40


def test_steps_are_validated_and_sorted():
    with pytest.raises(ValueError):
        Step(1, "explode", ("leaf01",))
    with pytest.raises(ValueError):
        Step(1, "fail_link", ("leaf01",))
    with pytest.raises(ValueError):
        Step(-1, "withdraw", ("server01",))
    sc = Scenario.of([(9, "announce", ["server01"]), (3, "withdraw", ["server01"])])
    assert [s.action for s in sc] == ["withdraw", "announce"]


async def test_runner_applies_each_step_at_its_time_and_reports_it():
    sim = SimFabric()
    ft = FakeTime()
    seen: list[tuple[AppliedStep, int, tuple[str, ...]]] = []
    runner = ScenarioRunner(default_scenario(), sim, on_step=lambda a: seen.append((a, anycast_leaves(sim),
                                                                                     sim.announcing())),
                            clock=ft.clock, sleep=ft.sleep)
    applied = await runner.run()
    assert [a.at for a in applied] == [5, 20, 30, 40]
    assert ft.sleeps == [5, 15, 10, 10]
    assert [n for _, n, _ in seen] == [3, 4, 3, 4]
    assert "server02" not in seen[2][2] and "server02" in seen[3][2]
    assert [a.description for a in applied] == ["leaf03 failed", "leaf03 restored",
                                                "server02 withdrew 192.0.2.53/32", "server02 announced 192.0.2.53/32"]
    assert all(a.error is None for a in applied)
    assert sim.generation == 4


async def test_runner_goes_through_the_targets_fail_and_restore():
    class Target:  # the demo fabric's surface: .sim plus async fail/restore that also stop SSH
        def __init__(self) -> None:
            self.sim = SimFabric()
            self.calls: list[str] = []

        async def fail(self, name: str) -> None:
            self.calls.append(f"fail {name}")
            self.sim.fail_device(name)

        async def restore(self, name: str) -> None:
            self.calls.append(f"restore {name}")
            self.sim.restore_device(name)

    t = Target()
    ft = FakeTime()
    await ScenarioRunner(default_scenario(), t, clock=ft.clock, sleep=ft.sleep).run()
    assert t.calls == ["fail leaf03", "restore leaf03"]
    assert t.sim.generation == 4 and anycast_leaves(t.sim) == 4


async def test_a_bad_step_is_reported_not_raised():
    sim = SimFabric()
    ft = FakeTime()
    sc = Scenario.of([(0, "withdraw", ("server99",)), (1, "withdraw", ("server01",))])
    applied = await ScenarioRunner(sc, sim, clock=ft.clock, sleep=ft.sleep).run()
    assert applied[0].error is not None and "server99" in applied[0].error
    assert applied[1].error is None and "server01" not in sim.announcing()


async def test_cancel_stops_before_later_steps():
    sim = SimFabric()
    ft = FakeTime()
    gate = asyncio.Event()

    async def sleep(dt: float) -> None:
        ft.t += dt
        if ft.t - 100.0 > 10:  # block before the step at 20 s
            await gate.wait()

    runner = ScenarioRunner(default_scenario(), sim, clock=ft.clock, sleep=sleep)
    task = asyncio.create_task(runner.run())
    while not runner.applied:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [a.step.action for a in runner.applied] == ["fail_device"]
    assert not sim.is_up("leaf03")


async def test_default_clock_is_the_event_loop():
    sim = SimFabric()
    sc = Scenario.of([(0, "withdraw", ("server04",))])
    applied = await ScenarioRunner(sc, sim).run()
    assert applied[0].at >= 0 and "server04" not in sim.announcing()
