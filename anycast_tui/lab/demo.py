"""The demo fabric: the simulated fabric served over real SSH on 127.0.0.1, plus its scenario.

``fail(name)`` makes a device really go away: the simulator drops it (its
neighbours lose their next hops) and its SSH endpoint stops listening, so the
poller sees connection refused.  ``restore(name)`` brings both back.  Keys and
known_hosts live in a private temporary directory removed by ``stop()``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycast_tui.collect.inventory import Inventory
from anycast_tui.lab.simmonitor import with_monitor
from anycast_tui.lab.sshserver import SSHFarm
from anycast_tui.model.types import Role

if TYPE_CHECKING:
    from anycast_tui.lab.scenario import Scenario, ScenarioRunner
    from anycast_tui.lab.sim import SimFabric

log = logging.getLogger(__name__)


class DefaultScenario(enum.Enum):
    """The type of :data:`DEFAULT`."""

    DEFAULT = "default"


DEFAULT = DefaultScenario.DEFAULT  # sentinel: the scenario module's default demo scenario
# How the simulated devices' ``ip -o monitor`` notices changes: None, woken by the simulator on every
# state change; a number, polling the simulator every so many seconds (bench/bench_idle.py's baseline).
MONITOR_POLL_S: float | None = None


class DemoFabric:
    """SimFabric + SSHFarm + ScenarioRunner; an async context manager."""

    def __init__(self, workdir: Path | None = None, scenario: Scenario | DefaultScenario | None = DEFAULT,
                 interval_s: float = 1.0, sim: SimFabric | None = None) -> None:
        from anycast_tui.lab.sim import SimFabric

        self.interval_s = interval_s
        self.sim = sim if sim is not None else SimFabric()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="atui-demo-"))
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.workdir.chmod(0o700)
        # Every device also streams ``ip -o monitor`` (as a real Linux box does), so the collector
        # re-polls on a change instead of waiting for the next poll.
        self.farm = SSHFarm({name: with_monitor(self.sim, name, poll_s=MONITOR_POLL_S) for name in self.devices},
                            workdir=self.workdir)
        self.failed: set[str] = set()
        self._scenario = scenario
        self.runner: ScenarioRunner | None = None
        self._runner_task: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ fabric

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self.sim.devices)

    @property
    def targets(self) -> tuple[str, ...]:
        """Devices the TUI's number keys fail and restore: the leaves, in order."""
        return tuple(sorted(n for n, r in self.roles().items() if r is Role.LEAF))

    def roles(self) -> dict[str, Role]:
        return dict(self.sim.roles())

    def inventory(self) -> Inventory:
        """The inventory a LiveSession polls (every endpoint on 127.0.0.1)."""
        return self.farm.inventory(self.roles(), poll_interval_s=self.interval_s, command_timeout_s=3.0,
                                   connect_timeout_s=3.0, backoff_base_s=min(1.0, self.interval_s),
                                   backoff_max_s=max(2.0, 2 * self.interval_s))

    def is_failed(self, name: str) -> bool:
        return name in self.failed

    async def fail(self, name: str) -> None:
        """The device disappears: removed from the simulated fabric and its SSH endpoint refuses."""
        if name not in self.farm.endpoints:
            raise KeyError(name)
        self.sim.fail_device(name)
        self.failed.add(name)
        await self.farm.endpoints[name].stop()

    async def restore(self, name: str) -> None:
        """The device is back in the fabric and answers SSH again (same port and host key)."""
        if name not in self.farm.endpoints:
            raise KeyError(name)
        ep = self.farm.endpoints[name]
        port = ep.port
        await ep.start()
        if ep.port != port:  # the old port was taken: the inventory would be wrong
            log.warning("%s came back on port %d instead of %d", name, ep.port, port)
            self.farm.write_known_hosts()
        self.sim.restore_device(name)
        self.failed.discard(name)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.farm.start()
        scenario = self._scenario
        if scenario is DEFAULT:
            from anycast_tui.lab import scenario as sc

            scenario = sc.default_scenario()
        if scenario is not None:
            from anycast_tui.lab.scenario import ScenarioRunner

            self.runner = ScenarioRunner(scenario, self)
            self._runner_task = asyncio.create_task(self.runner.run(), name="demo scenario")

    async def stop(self) -> None:
        task, self._runner_task = self._runner_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.farm.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> "DemoFabric":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SimControls:
    """DemoFabric's fail/restore for an in-process simulator (no SSH): the TUI's keys drive ``sim`` directly."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, r in self.sim.roles().items() if r is Role.LEAF))

    def is_failed(self, name: str) -> bool:
        return not self.sim.is_up(name)

    def fail(self, name: str) -> None:
        self.sim.fail_device(name)

    def restore(self, name: str) -> None:
        self.sim.restore_device(name)
