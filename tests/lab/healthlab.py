"""What the health lab tests share: one poll of the whole lab over SSH, in process."""

from __future__ import annotations

import asyncio

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.lab.labctl import Lab
from anycast_tui.model.types import FabricSnapshot
from anycast_tui.session import LiveSession


def poll_snapshot(lab: Lab) -> FabricSnapshot | None:
    """Every lab device polled once (the collector's commands over real SSH); the fabric snapshot."""
    async def run() -> FabricSnapshot | None:
        session = LiveSession(load_inventory(lab.cfg.inventory), interval_s=60.0)
        try:
            return await session.poll_once()
        finally:
            await session.stop()
    return asyncio.run(run())
