"""Scripted scenarios for the simulated fabric, played on an asyncio clock.

A :class:`Scenario` is a list of steps ``(at_seconds, action, args)``; actions
are :class:`~anycast_tui.lab.sim.SimFabric` state changes.  The
:class:`ScenarioRunner` applies them to a target, which is a ``SimFabric`` or
anything with a ``sim`` attribute (the demo fabric); on such a target
``fail_device``/``restore_device`` go through its ``fail``/``restore`` (sync or
async) so the device's SSH endpoint stops and starts too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Iterator

log = logging.getLogger(__name__)

ACTIONS: dict[str, int] = {  # action -> number of arguments
    "fail_device": 1,
    "restore_device": 1,
    "fail_link": 2,
    "restore_link": 2,
    "withdraw": 1,
    "announce": 1,
    "set_weight": 4,
}


@dataclass(frozen=True, slots=True)
class Step:
    at: float  # seconds after the scenario starts
    action: str
    args: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (one of: {', '.join(ACTIONS)})")
        if len(self.args) != ACTIONS[self.action]:
            raise ValueError(f"{self.action} takes {ACTIONS[self.action]} argument(s), got {len(self.args)}")
        if self.at < 0:
            raise ValueError(f"step time {self.at} is negative")

    def __str__(self) -> str:
        return f"t+{self.at:g}s {self.action} {' '.join(map(str, self.args))}".rstrip()


@dataclass(frozen=True)
class Scenario:
    """Steps in time order (ties keep their given order)."""

    steps: tuple[Step, ...]
    name: str = "scenario"

    @classmethod
    def of(cls, items: Iterable[tuple[float, str, Iterable[Any]] | Step], name: str = "scenario") -> "Scenario":
        steps = [s if isinstance(s, Step) else Step(float(s[0]), s[1], tuple(s[2])) for s in items]
        return cls(tuple(sorted(steps, key=lambda s: s.at)), name)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def duration(self) -> float:
        return self.steps[-1].at if self.steps else 0.0


def default_scenario() -> Scenario:
    """The demo: leaf03 fails and comes back, then server02 withdraws and re-announces."""
    return Scenario.of([
        (5, "fail_device", ("leaf03",)),
        (20, "restore_device", ("leaf03",)),
        (30, "withdraw", ("server02",)),
        (40, "announce", ("server02",)),
    ], name="demo")


@dataclass(frozen=True, slots=True)
class AppliedStep:
    step: Step
    description: str  # what the fabric said it did
    at: float  # seconds after start when it was applied (clock time)
    error: str | None = None


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class ScenarioRunner:
    """Applies a scenario's steps at their times; ``on_step`` hears each one."""

    scenario: Scenario
    target: Any
    on_step: Callable[[AppliedStep], Any] | None = None
    clock: Clock | None = None  # default: the running loop's time()
    sleep: Sleep | None = None  # default: asyncio.sleep
    applied: list[AppliedStep] = field(default_factory=list)

    async def run(self) -> list[AppliedStep]:
        """Play every step once, in order; returns what was applied.  Cancel to stop early."""
        clock = self.clock or asyncio.get_running_loop().time
        sleep = self.sleep or asyncio.sleep
        start = clock()
        for step in self.scenario:
            delay = start + step.at - clock()
            if delay > 0:
                await sleep(delay)
            try:
                desc, err = await self._apply(step), None
            except (ValueError, KeyError) as exc:  # a step naming nothing in this fabric
                desc, err = f"{step} failed: {exc}", str(exc)
                log.warning("scenario step %s: %s", step, exc)
            done = AppliedStep(step, desc, clock() - start, err)
            self.applied.append(done)
            if self.on_step is not None:
                res = self.on_step(done)
                if inspect.isawaitable(res):
                    await res
        return list(self.applied)

    async def _apply(self, step: Step) -> str:
        t = self.target
        sim = getattr(t, "sim", t)
        hook = {"fail_device": "fail", "restore_device": "restore"}.get(step.action)
        if hook is not None and sim is not t and callable(getattr(t, hook, None)):
            res = getattr(t, hook)(*step.args)
            if inspect.isawaitable(res):
                await res
            return f"{step.args[0]} {'failed' if hook == 'fail' else 'restored'}"
        return str(sim.apply(step.action, *step.args))
