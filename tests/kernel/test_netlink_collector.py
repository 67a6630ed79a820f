"""Local netlink collector against the real kernel: same DeviceState as the ``ip -j`` path, and change notifications."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from anycast_tui.collect import netlink
from anycast_tui.collect.commands import LINUX_POLL
from anycast_tui.lab import netns as nsx
from anycast_tui.model.types import Device, DeviceState
from anycast_tui.parse.device import build_device_state

pytestmark = pytest.mark.kernel

SETUP = [
    "link set lo up",
    "addr add 198.18.255.1/32 dev lo",
    "addr add 198.18.1.1/24 dev v1", "addr add 198.18.2.1/24 dev v2", "addr add 198.18.3.1/24 dev v3",
    "addr add 198.18.3.9/24 dev v3 label v3:sec",
    "addr add 2001:db8:1::1/64 dev v1 nodad", "addr add 2001:db8:2::1/64 dev v2 nodad",
    "link set v1 up", "link set v2 up", "link set v3 up", "link set l1 up",
    "link property add dev v1 altname anycast-uplink-1", "link set v2 alias uplink-two",
    "route add 192.0.2.53/32 nexthop via 198.18.1.2 dev v1 weight 3 nexthop via 198.18.2.2 dev v2 weight 1 "
    "nexthop via 198.18.3.2 dev v3 weight 2",
    "route add 192.0.2.55/32 via 198.18.9.9 dev v1 onlink",
    "route add blackhole 192.0.2.60/32", "route add unreachable 192.0.2.61/32", "route add prohibit 192.0.2.62/32",
    "route add 192.0.2.64/32 via 198.18.1.2 table 100 proto bgp metric 50",
    "route add 192.0.2.70/32 via inet6 fe80::1 dev v1", "route add 192.0.2.71/32 tos 0x10 via 198.18.1.2",
    "route add 192.0.2.72/32 tos 0x24 via 198.18.1.2 realm 3",
    "route add 192.0.2.100/32 via 198.18.1.2 mtu lock 1400 advmss 1360 rtt 10ms initcwnd 10 congctl cubic "
    "features ecn src 198.18.255.1",
    "route add 2001:db8:53::/64 nexthop via 2001:db8:1::2 dev v1 weight 2 nexthop via 2001:db8:2::2 dev v2",
    "nexthop add id 1 via 198.18.1.2 dev v1", "nexthop add id 2 via 198.18.2.2 dev v2",
    "nexthop add id 3 via 198.18.3.2 dev v3",
    "nexthop add id 10 group 1/2,2/3 type resilient buckets 32 idle_timer 0",
    "nexthop add id 11 group 1/3",
    "route add 192.0.2.80/32 nhid 10", "route add 192.0.2.81/32 nhid 11 proto static",
]


@pytest.fixture
def router(netns):
    r = netns.add("r")
    peer = netns.add("p")
    for ns in (r, peer):
        for key in ("net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"):
            nsx.sysctl(ns, key, 0)
    nsx.sysctl(r, "net.ipv4.fib_multipath_hash_policy", 1)
    nsx.sysctl(r, "net.ipv4.fib_multipath_hash_seed", 12345)
    for i in (1, 2, 3):
        nsx.ip(r, "link", "add", f"v{i}", "type", "veth", "peer", "name", f"p{i}", "netns", peer)
        nsx.ip(peer, "link", "set", f"p{i}", "up")
    nsx.ip(r, "link", "add", "l1", "type", "veth", "peer", "name", "l2")  # l2 stays down: l1 has no carrier
    nsx.batch(r, SETUP)
    return r


def ip_outputs(ns: str) -> dict[str, str]:
    return {c.id: nsx.run(ns, *c.argv).stdout for c in LINUX_POLL}


def test_netlink_outputs_equal_ip_json(router):
    mine = netlink.read_outputs(router)
    ref = ip_outputs(router)
    for cid in ("routes4", "routes6", "addrs"):
        assert json.loads(mine[cid]) == json.loads(ref[cid]), cid
    assert mine["nexthops"] == ref["nexthops"] and mine["sysctl"] == ref["sysctl"]


def without_idle_times(state: DeviceState) -> DeviceState:
    """Bucket idle times grow between two reads; everything else must be equal."""
    groups = tuple(dataclasses.replace(g, bucket_table=tuple(dataclasses.replace(b, idle_time=0.0)
                                                             for b in g.bucket_table))
                   for g in state.nexthops.groups)
    return dataclasses.replace(state, nexthops=dataclasses.replace(state.nexthops, groups=groups))


def test_netlink_state_equals_ip_json_state(router):
    device = Device("r1")
    state = netlink.read_state(device, router)
    ref = build_device_state(device, ip_outputs(router), collected_at_ms=state.collected_at_ms,
                             health=state.health)
    assert without_idle_times(state) == without_idle_times(ref)
    # ... and it is not trivially equal: the interesting parts are there.
    routes = {r.dst: r for r in state.routes if r.table == "main"}
    assert [nh.weight for nh in routes["192.0.2.53/32"].nexthops] == [3, 1, 2]
    assert routes["192.0.2.55/32"].nexthops[0].onlink
    assert routes["192.0.2.80/32"].nhid == 10
    assert routes["198.18.3.0/24"].nexthops[0].dev == "v3"
    assert routes["2001:db8:53::/64"].multipath
    assert {r.type for r in state.routes} >= {"blackhole", "unreachable", "prohibit", "local"}
    assert any(r.table == "100" and r.protocol == "bgp" for r in state.routes)
    group = state.group(10)
    assert group is not None and group.type == "resilient" and len(group.bucket_table) == 32
    assert state.hash.policy == 1 and state.hash.seed == 12345
    l1 = state.interface("l1")
    assert l1 is not None and l1.admin_up and not l1.carrier
    assert ("altnames", '["anycast-uplink-1"]') in state.interface("v1").extra
    v3 = state.interface("v3")
    assert [a.label for a in v3.addresses if a.family == 4] == ["v3", "v3:sec"]


def test_missing_namespace_is_one_line_error_and_is_not_created():
    with pytest.raises(netlink.NetlinkError) as info:
        netlink.read_outputs("atui-t-does-not-exist")
    assert "\n" not in str(info.value) and "atui-t-does-not-exist" in str(info.value)
    assert "atui-t-does-not-exist" not in nsx.list_namespaces("atui-t-does-not")


async def test_watching_a_missing_namespace_fails_in_one_line():
    with pytest.raises(netlink.NetlinkError):
        async for _ in netlink.watch_states(Device("x"), "atui-t-does-not-exist"):
            pass
    assert "atui-t-does-not-exist" not in nsx.list_namespaces("atui-t-does-not")


async def _first_link_change(ns: str, action) -> netlink.Change:
    seen: list[netlink.Change] = []
    ready = asyncio.Event()

    async def consume() -> netlink.Change:
        async for burst in netlink.changed(ns, settle_s=0.05, ready=ready):
            seen.extend(burst)
            for ch in burst:
                if ch.kind == "link":
                    return ch

    task = asyncio.create_task(consume())
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.to_thread(action)
    # Generous timeout: no timing is asserted, it only stops a hang.
    return await asyncio.wait_for(task, 60)


async def test_link_down_is_notified(router):
    index = int(json.loads(nsx.ip(router, "-j", "link", "show", "v2"))[0]["ifindex"])
    ch = await _first_link_change(router, lambda: nsx.ip(router, "link", "set", "v2", "down"))
    assert ch.event == "RTM_NEWLINK" and ch.ifindex == index


async def test_watch_states_rereads_after_a_change(router):
    device = Device("r1")
    states = netlink.watch_states(device, router, settle_s=0.05)
    first = await asyncio.wait_for(anext(states), 60)
    assert first.interface("v2").admin_up
    nsx.ip(router, "link", "set", "v2", "down")
    second = await asyncio.wait_for(anext(states), 60)
    await states.aclose()
    assert not second.interface("v2").admin_up
    (mp,) = [r for r in second.routes if r.dst == "192.0.2.53/32"]
    assert [nh.dead for nh in mp.nexthops if nh.dev == "v2"] == [True]


async def test_nexthop_change_is_notified(router):
    seen: list[netlink.Change] = []
    ready = asyncio.Event()

    async def consume() -> None:
        async for burst in netlink.changed(router, settle_s=0.05, ready=ready):
            seen.extend(burst)
            if any(c.kind == "nexthop" for c in burst):
                return

    task = asyncio.create_task(consume())
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.to_thread(nsx.ip, router, "nexthop", "add", "id", "99", "via", "198.18.1.2", "dev", "v1")
    await asyncio.wait_for(task, 60)
    assert any(c.kind == "nexthop" and c.event == "RTM_NEWNEXTHOP" for c in seen)


def test_reads_this_machine_read_only():
    state = netlink.read_state(Device("here"))
    lo = state.interface("lo")
    assert lo is not None and lo.link_type == "loopback"
    assert any(r.table == "local" and r.dst == "127.0.0.1/32" for r in state.routes)
