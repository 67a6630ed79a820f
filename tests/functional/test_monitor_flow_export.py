"""``monitor --headless`` with ``[flow_export]`` in the inventory: the demo fabric over real SSH, a spine's sFlow
samples sent over real UDP to the port the inventory names, each with the output port the simulator's own
``route get`` gives; the run says where it listened, and at the end what the exporter sent and that every
sample agreed with the model's placement.  A port already taken is one line and exit 2."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path

import pytest

from demo_inventory import write_inventory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
import sflow_build as sb  # noqa: E402

from anycast_tui.model.flows import synthetic_flows  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
AGENT = "198.18.255.1"
FLOWS = synthetic_flows(40, 120, seed=9)

pytestmark = pytest.mark.ssh


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spine_datagrams(sim) -> list[bytes]:  # noqa: ANN001
    ifindex = {i.name: i.ifindex for i in sim.interfaces("spine01")}
    samples = []
    for i, f in enumerate(FLOWS.flows()):
        r = sim.route_get("spine01", f.dst, src=f.src, iif="swp99", proto=f.proto, sport=f.sport, dport=f.dport)
        l4 = sb.tcp(f.sport, f.dport) if f.proto == 6 else sb.udp(f.sport, f.dport)
        samples.append(sb.flow_sample([sb.raw_header(sb.ether(sb.ipv4(f.src, f.dst, f.proto, l4), 0x0800))],
                                      seq=i + 1, rate=100, inp=99, out=ifindex[r.nexthops[0].dev]))
    return [sb.datagram(samples[k:k + 8], agent=AGENT, seq=k // 8 + 1) for k in range(0, len(samples), 8)]


async def test_headless_monitor_collects_exports_and_checks_placement(tmp_path):
    from anycast_tui.lab.demo import DemoFabric

    port = free_udp_port()
    async with DemoFabric(tmp_path / "demo", scenario=None) as fabric:
        cfg = write_inventory(fabric, tmp_path / "fabric.toml",
                              device_lines={"spine01": (f'sflow_agent = "{AGENT}"',)},
                              extra=("[flow_export]", f'listen = "127.0.0.1:{port}"', ""))
        proc = await asyncio.create_subprocess_exec(*CLI, "monitor", "-c", str(cfg), "--headless", "6", "--no-record",
                                                    cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first.decode().startswith(f"flow export: listening on 127.0.0.1:{port} ")
        await asyncio.sleep(2.0)  # the first polls are in: the spine's state to check against
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in spine_datagrams(fabric.sim):
                s.sendto(d, ("127.0.0.1", port))
            s.sendto(b"garbage", ("127.0.0.1", port))  # from 127.0.0.1: a device's host? shared by all: unknown
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = first.decode() + out.decode()
    assert proc.returncode == 0, err.decode()
    n = len(FLOWS)
    assert re.search(rf"^flow export on 127\.0\.0\.1:{port}: spine01: {n} samples in {(n + 7) // 8} datagrams$",
                     text, re.M), text
    assert f"placement checked on spine01: = 100 % of {n} samples agree" in text, text
    assert re.search(rf"^flow export on 127\.0\.0\.1:{port}: 1 datagrams from addresses not in the inventory "
                     r"dropped \(newest: 127\.0\.0\.1\)$", text, re.M), text


async def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    from anycast_tui.lab.demo import DemoFabric

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        async with DemoFabric(tmp_path / "demo", scenario=None) as fabric:
            cfg = write_inventory(fabric, tmp_path / "fabric.toml", extra=("[flow_export]",
                                                                          f'listen = "127.0.0.1:{port}"', ""))
            proc = await asyncio.create_subprocess_exec(*CLI, "monitor", "-c", str(cfg), "--headless", "3",
                                                        "--no-record", cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines[-1] == f"anycast-tui monitor: flow export: cannot listen on 127.0.0.1:{port}: Address already in use", lines
