"""A real demo fabric for pilot tests: the simulator served over SSH on 127.0.0.1.

No scenario runs and nothing polls on its own: a test polls explicitly
(``await demo.poll()``), and the session's clock is fixed, so what the app
shows depends only on the fabric's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from anycast_tui.lab.demo import DemoFabric
from anycast_tui.session import LiveSession

NOW = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC


@dataclass
class Demo:
    fabric: DemoFabric
    session: LiveSession

    async def poll(self) -> None:
        await self.session.poll_once()


@pytest.fixture
async def demo(tmp_path):
    fabric = DemoFabric(tmp_path / "demo", scenario=None, interval_s=0.5)
    await fabric.start()
    session = LiveSession(fabric.inventory(), interval_s=0.5, clock=lambda: NOW)
    try:
        yield Demo(fabric, session)
    finally:
        await session.stop()
        await fabric.stop()
