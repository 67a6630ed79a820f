"""The README's nats-server accounts: a collector that may only publish the fabric, a viewer that may only
read it; passwords from environment variables, never logged."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import nats
import pytest

from anycast_tui.fleet.conn import NatsOptions
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import HealthStatus
from natsserver import NatsServer, start_collector, wait_for, write_inventory

pytestmark = pytest.mark.ssh

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_config() -> str:
    """The minimal nats-server config block of the README (the one this test runs)."""
    text = README.read_text()
    m = re.search(r"```\n(accounts \{.*?\n\})\n```", text, re.S)
    assert m, "README: no nats-server accounts block"
    return m.group(1)


async def test_readme_accounts_collector_publishes_viewer_reads(make_farm, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLECTOR_PASS", "c0llect-pw-123")
    monkeypatch.setenv("VIEWER_PASS", "v1ew-pw-456")
    monkeypatch.setenv("ATUI_NATS_USER", "collector")
    server = NatsServer(tmp_path, config=_readme_config())
    server.start()
    sim = SimFabric()
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    config = write_inventory(tmp_path / "fabric.toml", farm.inventory(sim.roles(), platform="sim",
                                                                       backoff_base_s=0.1, backoff_max_s=0.3))
    log = tmp_path / "collector.log"
    proc = start_collector(config, server.url, "a", log, "--nats-user-env", "ATUI_NATS_USER",
                           "--nats-password-env", "COLLECTOR_PASS")
    monkeypatch.setenv("ATUI_VIEWER_USER", "viewer")
    viewer = NatsSource(NatsOptions((server.url,), user_env="ATUI_VIEWER_USER", password_env="VIEWER_PASS"))
    try:
        await viewer.start()
        await wait_for(lambda: len(viewer.health()) == len(sim.devices) and
                       all(h.status is HealthStatus.OK for h in viewer.health().values()), "the viewer's devices")
        # the viewer's account cannot write the fabric
        nc = await nats.connect(server.url, user="viewer", password="v1ew-pw-456")
        try:
            with pytest.raises(Exception):
                await nc.jetstream().publish("anycast.a.leaf01.state", b"j{}", timeout=2)
        finally:
            await nc.close()
        # nor can anyone without the password
        with pytest.raises(Exception):
            await nats.connect(server.url, user="viewer", password="wrong", allow_reconnect=False,
                               connect_timeout=2, max_reconnect_attempts=0)
        assert viewer.counters["bad"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        await viewer.stop()
        server.stop()
    text = log.read_text()
    assert "stopped" in text and "c0llect-pw-123" not in text and "v1ew-pw-456" not in text
