"""The real ``ip -o monitor route link nexthop`` (iproute2 of this machine) of a namespace, served over
real SSH on 127.0.0.1: a route added in the kernel reaches the Poller through the stream, long before the
periodic poll; ``ip -V`` is the real one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))

from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.lab import netns as nsx  # noqa: E402
from anycast_tui.lab.sshserver import SSHFarm  # noqa: E402

from nsdevice import NamespaceDevice  # noqa: E402
from ssh_fixtures import wait_for  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.ssh]


def _has(poller: Poller, dst: str) -> bool:
    return any(r.dst == dst for r in poller.snapshot().devices["r1"].routes)


async def test_kernel_route_change_arrives_through_the_stream(netns, tmp_path):
    ns = netns.add("r1")
    nsx.ip(ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    for dev in ("v0", "v1"):
        nsx.ip(ns, "link", "set", dev, "up")
    nsx.ip(ns, "addr", "add", "198.18.5.1/24", "dev", "v0")
    device = NamespaceDevice(ns)
    farm = SSHFarm({"r1": device}, workdir=tmp_path / "farm")
    await farm.start()
    poller = Poller(farm.inventory(platform="linux", command_timeout_s=5.0), interval_s=3600.0)
    try:
        await poller.start()
        await wait_for(lambda: poller.polls("r1") >= 1)
        await wait_for(lambda: device.monitors == 1)
        assert poller.snapshot().devices["r1"].health.status.value == "ok", poller.snapshot().devices["r1"].health
        k = 0
        while not poller.streaming("r1"):  # the monitor subscribes a moment after it starts
            k += 1
            nsx.ip(ns, "route", "replace", "192.0.2.60/32", "via", "198.18.5.2", "metric", str(k))
            await asyncio.sleep(0.05)
            assert k < 200
        polls = poller.polls("r1")
        nsx.ip(ns, "route", "add", "192.0.2.53/32", "via", "198.18.5.2")
        await wait_for(lambda: _has(poller, "192.0.2.53/32"))
        nsx.ip(ns, "route", "del", "192.0.2.53/32")
        await wait_for(lambda: not _has(poller, "192.0.2.53/32"))
        assert poller.polls("r1") >= polls + 2 and poller.stream_error("r1") is None
        version = poller.iproute_version("r1")
        assert version is not None and version >= (4, 17)
    finally:
        await poller.stop()
        await farm.stop()
