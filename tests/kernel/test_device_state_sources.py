"""One device, two collectors: a namespace read by the SSH poller (over real SSH, this machine's ``ip``,
``sysctl`` and ``ss`` run in it) and by the netlink collector gives the same DeviceState — routes, nexthop
objects and resilient groups, interfaces, hash sysctls and the live flows to the anycast prefix — because
both hand their outputs to the one builder (``collect.devicestate.assemble``).

With FRR (zebra + staticd) in the namespace, FRR's RIB is read by both too (the poller's ``frr_rib`` line over
SSH; netlink's ``vtysh=`` argv), with the same parts missing for the same reason (no bgpd).

The live flows are real sockets in the namespace: a TCP connection to the anycast address that talks every
0.2 s (alive: heard from well within ``LIVE_WINDOW_S``) and a connected UDP socket pair (``ss -Hun``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))

from anycast_tui.collect import netlink  # noqa: E402
from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.lab import frr as labfrr  # noqa: E402
from anycast_tui.lab import netns as nsx  # noqa: E402
from anycast_tui.lab.sshserver import SSHFarm  # noqa: E402
from anycast_tui.model.types import Device, DeviceState, Flow  # noqa: E402
from anycast_tui.parse.route import parse_ip_route_json  # noqa: E402

from frrns import start_frr, stop_frr, wait_until  # noqa: E402
from nsdevice import NamespaceDevice, python_in  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.ssh]

ANY = "192.0.2.53"
PREFIX = f"{ANY}/32"
TCP = Flow(6, "203.0.113.7", 40001, ANY, 8053)
UDP = Flow(17, "203.0.113.7", 40003, ANY, 8053)

SETUP = [
    "link set lo up",
    f"addr add {ANY}/32 dev lo", "addr add 203.0.113.7/32 dev lo",
    "addr add 198.18.1.1/24 dev v1", "addr add 198.18.2.1/24 dev v2",
    "addr add 2001:db8:1::1/64 dev v1 nodad",
    "link set v1 up", "link set v2 up",
    "route add 192.0.2.60/32 nexthop via 198.18.1.2 dev v1 weight 3 nexthop via 198.18.2.2 dev v2",
    "route add 2001:db8:53::/64 via 2001:db8:1::2 dev v1",
    "nexthop add id 1 via 198.18.1.2 dev v1", "nexthop add id 2 via 198.18.2.2 dev v2",
    "nexthop add id 10 group 1/2 type resilient buckets 16 idle_timer 0",
    "route add 192.0.2.80/32 nhid 10",
]

# TCP: one connection, asked every 0.2 s; UDP: a server socket connected to its client (as ss -Hun lists it).
HELPER = """
import socket, sys, threading, time
ANY = ("192.0.2.53", 8053)
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); lst.bind(ANY); lst.listen()
c = socket.socket(); c.bind(("203.0.113.7", 40001)); c.connect(ANY); s, _ = lst.accept()
us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); us.bind(ANY); us.connect(("203.0.113.7", 40003))
uc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); uc.bind(("203.0.113.7", 40003)); uc.connect(ANY)
def talk():
    while True:
        c.sendall(b"?"); s.recv(8); s.sendall(b"!"); c.recv(8); time.sleep(0.2)
threading.Thread(target=talk, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def device_ns(netns):
    ns = netns.add("r")
    peer = netns.add("p")
    for key in ("net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"):
        nsx.sysctl(ns, key, 0)
    nsx.sysctl(ns, "net.ipv4.fib_multipath_hash_policy", 1)
    nsx.sysctl(ns, "net.ipv4.fib_multipath_hash_seed", 4242)
    for i in (1, 2):
        nsx.ip(ns, "link", "add", f"v{i}", "type", "veth", "peer", "name", f"p{i}", "netns", peer)
        nsx.ip(peer, "link", "set", f"p{i}", "up")
    nsx.batch(ns, SETUP)
    with python_in(ns, HELPER):
        yield ns


def comparable(state: DeviceState) -> DeviceState:
    """What both collectors read of the same moment: bucket idle times grow between two reads, and the
    time and health of a read are its own."""
    groups = tuple(dataclasses.replace(g, bucket_table=tuple(dataclasses.replace(b, idle_time=0.0)
                                                             for b in g.bucket_table))
                   for g in state.nexthops.groups)
    return dataclasses.replace(state, nexthops=dataclasses.replace(state.nexthops, groups=groups),
                               collected_at_ms=None, health=DeviceState(state.device).health)


async def _by_ssh(tmp_path: Path, device: NamespaceDevice, platform: str, **settings: object
                  ) -> tuple[DeviceState, dict[str, str]]:
    """One poll of ``device`` over real SSH: its state and the optional parts missing, with the reason."""
    farm = SSHFarm({"r1": device}, workdir=tmp_path / "farm")
    await farm.start()
    poller = Poller(farm.inventory(platform=platform, anycast_prefixes=(PREFIX,), command_timeout_s=10.0,
                                   **settings), interval_s=3600.0)
    try:
        state = (await poller.poll_once()).devices["r1"]
        missing = dict(poller.optional_errors("r1"))
    finally:
        await poller.stop()
        await farm.stop()
    assert state.health.status.value == "ok", state.health
    return state, missing


async def test_ssh_poller_and_netlink_assemble_the_same_state(device_ns, tmp_path):
    by_ssh, _ = await _by_ssh(tmp_path, NamespaceDevice(device_ns), "linux", flow_sources=("ss",))
    got = await asyncio.to_thread(netlink.read, by_ssh.device, device_ns, flow_sources=("ss",),
                                  flow_prefixes=(PREFIX,))  # pyroute2's sync API runs its own loop
    by_netlink = got.state
    assert got.optional_errors == {}
    assert comparable(by_netlink) == comparable(by_ssh)
    # ... and not trivially: the flows, the resilient group, the sysctls and the ECMP route are there.
    assert set(by_netlink.flows) >= {TCP, UDP} and by_netlink.flows_stale == 0
    assert all(f.dst == ANY for f in by_netlink.flows)
    group = by_netlink.group(10)
    assert group is not None and group.type == "resilient" and len(group.bucket_table) == 16
    assert by_netlink.hash.policy == 1 and by_netlink.hash.seed == 4242
    ecmp = next(r for r in by_netlink.routes if r.dst == "192.0.2.60/32")
    assert [nh.weight for nh in ecmp.nexthops] == [3, 1]


def test_netlink_reads_no_flows_unless_asked_and_names_a_missing_tool(device_ns):
    plain = netlink.read_state(Device("r1"), device_ns)
    assert plain.flows == () and not plain.flows_udp_known
    got = netlink.read(Device("r1"), device_ns, vtysh=("atui-no-such-vtysh",))
    assert got.state.rib is None
    assert set(got.optional_errors) == {"frr_rib", "frr_running"}  # both vtysh reads, each said in one line
    assert all("atui-no-such-vtysh" in why and "\n" not in why for why in got.optional_errors.values())


STATIC = """hostname r
ip route 192.0.2.90/32 198.18.1.2
ip route 192.0.2.90/32 198.18.2.2
ip route 192.0.2.91/32 blackhole
ip route 198.51.100.0/24 192.0.2.90
!
"""
STATIC_PREFIXES = ("192.0.2.90/32", "192.0.2.91/32", "198.51.100.0/24")


@pytest.fixture
def frr_ns(device_ns):
    why = labfrr.available()
    if why is not None:
        pytest.skip(why)
    rundir = Path("/run/anycast-tui/frr") / device_ns
    try:
        start_frr(device_ns, rundir, {"zebra": "hostname r\n!\n", "staticd": STATIC})
        wait_until(lambda: set(STATIC_PREFIXES) <= {r.dst for r in parse_ip_route_json(nsx.ip(device_ns, "-j", "route",
                                                                                            "show"))},
                   "zebra installing the static routes")
        yield device_ns, rundir
    finally:
        stop_frr(rundir)


async def test_frr_rib_read_by_ssh_and_by_netlink_is_the_same(frr_ns, tmp_path):
    ns, rundir = frr_ns
    by_ssh, ssh_missing = await _by_ssh(tmp_path, NamespaceDevice(ns, vty=str(rundir)), "frr")
    got = await asyncio.to_thread(netlink.read, by_ssh.device, ns, vtysh=("vtysh", "--vty_socket", str(rundir)))
    assert comparable(got.state) == comparable(by_ssh)
    assert dict(got.optional_errors) == ssh_missing  # no bgpd: the BGP parts, for vtysh's same reason
    assert set(ssh_missing) == {"frr_bgp4", "frr_bgp6"}, ssh_missing
    rib = got.state.rib
    assert rib is not None
    ecmp = next(r for r in rib.routes if r.dst == "192.0.2.90/32")
    assert ecmp.protocol == "static" and ecmp.selected and ecmp.installed
    assert sorted(nh.gateway for nh in ecmp.nexthops) == ["198.18.1.2", "198.18.2.2"]
    assert all(nh.fib for nh in ecmp.nexthops)
    recursive = next(r for r in rib.routes if r.dst == "198.51.100.0/24")
    assert any(nh.recursive for nh in recursive.nexthops)
