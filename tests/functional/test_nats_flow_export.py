"""``collect`` with ``[flow_export]`` in its inventory, on a real nats-server: the simulated fabric over real SSH,
a spine's sFlow samples over real UDP to the port the inventory names (each with the output port the
simulator's own ``route get`` gives); the collector checks them against the spine's polled state and publishes
the sampled-traffic summary (the recording's) on the bus, where a viewer reads it: every sample received and
agreeing with the model; and ``record --source`` keeps it in its recording."""

from __future__ import annotations

import signal
import socket

import pytest

from anycast_tui.fleet.conn import NatsOptions
from anycast_tui.fleet.source import NatsSource
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import HealthStatus
from anycast_tui.record.reader import Recording
from natsserver import NatsServer, start_collector, start_recorder, wait_for, write_inventory

from test_monitor_flow_export import AGENT, FLOWS, free_udp_port, spine_datagrams  # monitor test's spine01 samples

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=30.0, connect_timeout_s=30.0, backoff_base_s=0.1, backoff_max_s=0.3)


async def test_collect_runs_flow_export_and_publishes_its_summary(make_farm, tmp_path):
    server = NatsServer(tmp_path)
    server.start()
    sim = SimFabric(SimConfig())
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    port = free_udp_port()
    config = write_inventory(tmp_path / "fabric.toml", farm.inventory(sim.roles(), platform="sim", **FAST),
                             extra=("[flow_export]", f'listen = "127.0.0.1:{port}"'),
                             device_lines={"spine01": (f'sflow_agent = "{AGENT}"',)})
    log = tmp_path / "collector.log"
    collector = start_collector(config, server.url, "f", log)
    recording = tmp_path / "bus.atrec"
    recorder = start_recorder(server.url, recording, tmp_path / "recorder.log")
    viewer = NatsSource(NatsOptions((server.url,)))
    summaries: list[dict] = []
    viewer.on_sampled = summaries.append
    try:
        await viewer.start()
        await wait_for(lambda: viewer.ready.is_set() and len(viewer.health()) == len(sim.devices) and all(
            h.status is HealthStatus.OK for h in viewer.health().values()), "every device on the viewer", timeout=90)
        n = len(FLOWS)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in spine_datagrams(sim):
                s.sendto(d, ("127.0.0.1", port))

        def checked() -> dict | None:
            for m in reversed(summaries):
                a, p = m.get("agents", {}).get("spine01"), m.get("placement", {}).get("spine01")
                if a and p and a["samples"] == n and p["compared"] == n:
                    return m
            return None

        got = await wait_for(checked, "the collector's sampled traffic on the bus", timeout=90)
        assert got["placement"]["spine01"]["agreed"] == n and got["placement"]["spine01"]["disagreements"] == []
        (prefix,) = got["prefixes"]
        assert prefix.startswith("192.0.2.53") and got["prefixes"][prefix]["flows"] == n
        assert viewer.counters["bad"] == 0 and list(viewer.sampled) and viewer.sampled[next(iter(viewer.sampled))]
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(60) == 0
        recorder.send_signal(signal.SIGTERM)
        assert recorder.wait(60) == 0
    finally:
        for proc in (collector, recorder):
            if proc.poll() is None:
                proc.kill()
        await viewer.stop()
        server.stop()
    text = log.read_text()
    assert f"flow export: listening on 127.0.0.1:{port}" in text
    assert f"placement checked on spine01: = 100 % of {n} samples agree" in text
    assert "stopped" in text
    with Recording.open(recording) as rec:  # the recorder on the bus kept the collector's summaries
        kept = [body for _t, body in rec.sampled() if body.get("agents", {}).get("spine01", {}).get("samples") == n]
    assert kept and kept[-1]["placement"]["spine01"]["agreed"] == n
