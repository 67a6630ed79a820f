"""The hash engine against the real kernel: every flow must land where the kernel puts it.

Each case builds a router in namespaces (tests/kernel/kernelrouter.py), asks the
kernel about >= 2,000 random TCP/UDP flows with one ``ip -batch`` process (or real
packets, or raw RTM_GETROUTE when a flow label must be carried) and requires the
model to agree on 100 % of them.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from anycast_tui.lab import netns as nsmod
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import linux_multipath_hash
from anycast_tui.model.mapping import hash_threshold, resilient_lookup, usable_mask
from anycast_tui.model.resilient import ResilientGroup
from kernelrouter import (KernelRouter, kernel_forward_batch, kernel_forward_sockets, kernel_route_get_netlink,
                          parse_route_get_json)

pytestmark = pytest.mark.kernel

SEED = 0x12345678
N = 2000


def flows(seed: int, *, family: int = 4, protos: tuple[int, ...] = (6, 17), labels: bool = False) -> FlowArray:
    return FlowArray.random(N, rng=np.random.default_rng(seed), family=family, protos=protos, flowlabels=labels)


def hashes(fa: FlowArray, *, policy: int = 1, fields: int = 0x37, forwarded: bool = True) -> np.ndarray:
    return linux_multipath_hash(fa, policy=policy, seed=SEED, fields=fields, forwarded=forwarded)


def assert_same(kernel: list[int] | np.ndarray, model: np.ndarray, fa: FlowArray) -> None:
    k = np.asarray(kernel)
    bad = np.flatnonzero(k != model)
    assert bad.size == 0, (f"{bad.size} of {len(k)} flows differ; first {fa.flow(int(bad[0]))}: "
                           f"kernel {k[bad[0]]}, model {model[bad[0]]}")


# --------------------------------------------------------------------------- plain multipath routes


@pytest.mark.parametrize("n", [4, 16])
def test_equal_weights(netns, n):
    r = KernelRouter.build(netns, n, seed=SEED, policy=1)
    r.route_multipath(range(n))
    fa = flows(n)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1] * n), fa)


def test_unequal_weights(netns):
    w = [1, 2, 3, 4, 10]
    r = KernelRouter.build(netns, len(w), seed=SEED, policy=1)
    r.route_multipath(range(len(w)), w)
    fa = flows(2)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), w), fa)


def test_next_hop_removed(netns):
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    r.route_multipath(range(4))
    r.route_multipath([0, 1, 3], replace=True)
    fa = flows(3)
    assert_same(r.route_get(fa), np.array([0, 1, 3])[hash_threshold(hashes(fa), [1, 1, 1])], fa)


def test_admin_down_next_hop_is_dead(netns):
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    r.route_multipath(range(4), [1, 2, 1, 1])
    r.ip("link", "set", "nh2", "down")
    route = json.loads(r.ip("-j", "route", "show", "192.0.2.53"))[0]
    assert "dead" in route["nexthops"][2]["flags"]
    fa = flows(4)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1, 2, 1, 1], [True, True, False, True]), fa)


def test_ipv6_admin_down_sibling_is_dead(netns):
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    r.route_multipath(range(4), family=6)
    r.ip("link", "set", "nh2", "down")
    assert "dead" in r.ip("-6", "route", "show", "2001:db8:53::53")
    fa = flows(14, family=6)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1] * 4, [True, True, False, True]), fa)


@pytest.mark.parametrize("use_neigh", [False, True])
def test_failed_neighbour(netns, use_neigh):
    """FAILED neighbour: plain routes skip it only with fib_multipath_use_neigh=1, groups always;
    its hash range is kept and its flows fall to the next good next hop."""
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1, use_neigh=use_neigh)
    r.route_multipath(range(4))
    r.ip("neigh", "replace", "198.19.1.2", "dev", "nh1", "nud", "failed")
    assert "FAILED" in r.ip("neigh", "show", "198.19.1.2", "dev", "nh1")
    fa = flows(15)
    good = [True, False, True, True]
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1] * 4, good=good if use_neigh else None), fa)
    r.group(1, r.nexthops(range(4)))
    r.route_nhid(1)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1] * 4, good=good), fa)


@pytest.mark.parametrize("src,prefer", [("198.19.2.1", [False, False, True, False]), ("198.18.0.1", None)])
def test_local_output_prefers_the_next_hop_with_the_flows_source(netns, src, prefer):
    """Locally generated (no iif): the flowi hash (ports as given) and, on IPv4 plain routes,
    fib_select_multipath's preference for a next hop whose source address is the flow's."""
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    r.route_multipath(range(4))
    fa = flows(16)
    local = FlowArray.from_columns(fa.family, fa.proto, np.tile(np.array(src.split("."), np.uint8), (N, 1)),
                                   fa.dst, fa.sport, fa.dport)
    lines = [f"route get {f.dst} from {f.src} ipproto {f.proto} sport {f.sport} dport {f.dport}"
             for f in local.flows()]
    gw = r.gateway_index()
    kernel = [gw[g] for g in parse_route_get_json(nsmod.batch(r.router, lines, json=True), N)]
    model = hash_threshold(hashes(local, forwarded=False), [1] * 4, prefer=prefer)
    assert_same(kernel, model, local)
    if prefer is not None:
        assert set(kernel) == {2}  # every flow, in range or not, takes the matching next hop


@pytest.mark.parametrize("ignore", [False, True])
def test_carrier_down(netns, ignore):
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1, ignore_linkdown=ignore)
    r.route_multipath(range(4))
    nsmod.ip(r.peer, "link", "set", "eth1", "down")  # the router's nh1 loses carrier
    route = json.loads(r.ip("-j", "route", "show", "192.0.2.53"))[0]
    assert "linkdown" in route["nexthops"][1]["flags"]
    fa = flows(5)
    usable = usable_mask([False] * 4, [False, True, False, False], ignore)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1] * 4, usable), fa)


@pytest.mark.parametrize("policy,fields", [(0, 0x37), (1, 0x37), (3, 0x37), (3, 0x03), (3, 0x01), (3, 0x34),
                                           (3, 0x24), (3, 0x3F)])
def test_ipv4_policies_and_field_masks(netns, policy, fields):
    r = KernelRouter.build(netns, 8, seed=SEED, policy=policy, fields=fields)
    r.route_multipath(range(8))
    fa = flows(6 + fields)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa, policy=policy, fields=fields), [1] * 8), fa)


# --------------------------------------------------------------------------- nexthop objects


def test_mpath_nexthop_group(netns):
    w = [1, 3, 2, 1]
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    ids = r.nexthops(range(4))
    r.group(1, ids, w)
    r.route_nhid(1)
    fa = flows(7)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), w), fa)
    # a member leaves the group (its nexthop object is deleted)
    r.ip("nexthop", "del", "id", str(ids[1]))
    assert_same(r.route_get(fa), np.array([0, 2, 3])[hash_threshold(hashes(fa), [1, 2, 1])], fa)


def _wait_balanced(r: KernelRouter, gid: int, wants: dict[int, int], limit: float = 20.0) -> None:
    """Poll the bucket table until every member holds the buckets it wants (the kernel's
    ``unbalanced_time`` is in 1/100 s and reads 0 in the first jiffies, so it cannot tell)."""
    end = time.monotonic() + limit
    while True:
        table = r.buckets(gid)
        if {m: table.count(m) for m in wants} == wants:
            return
        if time.monotonic() > end:
            pytest.fail(f"group {gid} still unbalanced after {limit} s")
        time.sleep(0.2)


def _nhids(r: KernelRouter, fa: FlowArray) -> np.ndarray:
    return np.array(r.route_get(fa)) + 100


def test_resilient_group_busy_buckets_wait_for_the_unbalanced_timer(netns):
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    ids = r.nexthops(range(4))  # 100..103
    r.group(1, ids, kind="resilient", buckets=64, idle_timer=120, unbalanced_timer=0)
    r.route_nhid(1)
    model = ResilientGroup.create(ids, num_buckets=64, idle_timer=120, unbalanced_timer=0, now=time.monotonic())
    assert r.buckets(1) == list(model.table)
    fa = flows(8)
    h = hashes(fa)
    assert_same(_nhids(r, fa), resilient_lookup(h, model.table), fa)
    model.touch(np.unique(h % 64), time.monotonic())  # ip route get marked these buckets busy

    # a member leaves: only its buckets move, busy or not
    r.ip("nexthop", "del", "id", "101")
    model.remove(101, now=time.monotonic())
    assert r.buckets(1) == list(model.table)
    time.sleep(0.05)  # a later jiffy: the lookups below count as use after the migration
    assert_same(_nhids(r, fa), resilient_lookup(h, model.table), fa)
    model.touch(np.unique(h % 64), time.monotonic())

    # it comes back: every bucket is busy (idle_timer 120 s) so nothing moves yet
    r.nexthops([1])
    r.group(1, ids, kind="resilient", replace=True)
    model.add(101, now=time.monotonic(), position=1)
    assert r.buckets(1) == list(model.table)
    table = r.buckets(1)
    assert not model.balanced and table.count(101) == 0

    # an unbalanced timer forces the busy buckets over
    r.group(1, ids, kind="resilient", replace=True, unbalanced_timer=1)
    t = time.monotonic()
    model.replace(ids, now=t, unbalanced_timer=1)
    _wait_balanced(r, 1, model.wants())
    model.advance(t + 10)
    assert model.balanced and r.buckets(1) == list(model.table)
    assert_same(_nhids(r, fa), resilient_lookup(h, model.table), fa)


def test_resilient_group_settles_once_buckets_are_idle(netns):
    r = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    ids = r.nexthops(range(4))
    r.group(1, ids, [2, 1, 1, 1], kind="resilient", buckets=32, idle_timer=1, unbalanced_timer=0)
    r.route_nhid(1)
    model = ResilientGroup.create(ids, [2, 1, 1, 1], num_buckets=32, idle_timer=1, now=time.monotonic())
    assert r.buckets(1) == list(model.table)
    r.ip("nexthop", "del", "id", "102")
    model.remove(102, now=time.monotonic())
    assert r.buckets(1) == list(model.table)
    fa = flows(9)
    h = hashes(fa)
    time.sleep(0.05)
    assert_same(_nhids(r, fa), resilient_lookup(h, model.table), fa)
    model.touch(np.unique(h % 32), time.monotonic())
    time.sleep(1.5)  # > idle_timer: every bucket is idle again
    r.nexthops([2])
    r.group(1, ids, [2, 1, 1, 1], kind="resilient", replace=True)
    model.add(102, 1, now=time.monotonic(), position=2)
    assert model.balanced and r.buckets(1) == list(model.table)
    assert_same(_nhids(r, fa), resilient_lookup(h, model.table), fa)


# --------------------------------------------------------------------------- IPv6


def test_ipv6_policy1(netns):
    r = KernelRouter.build(netns, 8, seed=SEED, policy=1, policy6=1)
    r.route_multipath(range(8), [1, 1, 2, 1, 1, 1, 3, 1], family=6)
    fa = flows(10, family=6, labels=True)
    assert_same(r.route_get(fa), hash_threshold(hashes(fa), [1, 1, 2, 1, 1, 1, 3, 1]), fa)


def test_ipv6_policy0_hashes_flow_labels(netns):
    r = KernelRouter.build(netns, 8, seed=SEED, policy=1, policy6=0)
    r.route_multipath(range(8), family=6)
    fa = flows(11, family=6, labels=True)
    idx = r.gateway_index()
    kernel = [idx[g] for g in kernel_route_get_netlink(r.router, fa, r.iif)]  # carries RTA_FLOWLABEL
    assert_same(kernel, hash_threshold(hashes(fa, policy=0), [1] * 8), fa)
    # the same flows without labels land elsewhere: the label really is hashed
    nolab = FlowArray(fa.family, fa.proto, fa.src, fa.dst, fa.sport, fa.dport, np.zeros(N, np.uint32))
    assert (hashes(nolab, policy=0) != hashes(fa, policy=0)).mean() > 0.99


def test_ipv6_route_get_takes_the_flowi_path(netns):
    """inet6_rtm_getroute passes no skb even with iif: policy 3 has no jhash step there."""
    r = KernelRouter.build(netns, 8, seed=SEED, policy=1, policy6=3, fields6=0x3F)
    r.route_multipath(range(8), family=6)
    fa = flows(12, family=6, labels=True)
    idx = r.gateway_index()
    kernel = np.array([idx[g] for g in kernel_route_get_netlink(r.router, fa, r.iif)])
    assert_same(kernel, hash_threshold(hashes(fa, policy=3, fields=0x3F, forwarded=False), [1] * 8), fa)
    assert (kernel != hash_threshold(hashes(fa, policy=3, fields=0x3F, forwarded=True), [1] * 8)).mean() > 0.5


# --------------------------------------------------------------------------- real packets


@pytest.mark.parametrize("family,policy,fields", [(4, 1, 0x37), (4, 3, 0x3F), (6, 0, 0x37), (6, 1, 0x37),
                                                  (6, 3, 0x3F), (6, 3, 0x0D)])
def test_forwarded_packets_take_the_modelled_path(netns, family, policy, fields):
    """Frames injected on the client link (GRE mixed in: no ports), seen leaving on the peers' links."""
    r = KernelRouter.build(netns, 8, seed=SEED, policy=policy, fields=fields)
    r.route_multipath(range(8), family=family)
    fa = flows(13 + policy, family=family, protos=(6, 17, 47), labels=True)
    got = kernel_forward_batch(r, fa)
    assert -1 not in got, f"{got.count(-1)} packets were not seen"
    assert_same(got, hash_threshold(hashes(fa, policy=policy, fields=fields, forwarded=True), [1] * 8), fa)


def socket_flows(seed: int, family: int, proto: int, n: int = 400) -> FlowArray:
    """Flows with unique (source, sport), none from the client range's network/broadcast address."""
    rng = np.random.default_rng(seed)
    fa = FlowArray.random(n, rng=rng, family=family, protos=(proto,))
    sport = rng.choice(np.arange(10000, 60000), n, replace=False).astype(np.uint16)
    fa = FlowArray.from_columns(fa.family, fa.proto, fa.src, fa.dst, sport, fa.dport)
    if family == 4:
        fa = fa.take(np.flatnonzero((fa.src[:, 3] != 0) & (fa.src[:, 3] != 255)))
    return fa


@pytest.mark.parametrize("family,proto,policy,auto_flowlabels,predictable", [
    (4, 17, 1, True, True),     # IPv4 UDP sockets attach no hash
    (6, 17, 1, False, True),    # nor IPv6 UDP without automatic flow labels
    (6, 17, 1, True, False),    # ip6_make_flowlabel() hashes the skb: the L4 hash rides along
    (4, 6, 1, True, False),     # TCP: the socket's random txhash rides along
    (6, 6, 1, False, False),
    (4, 6, 3, True, True),      # policy 3 never short-circuits on skb->l4_hash
    (6, 6, 3, True, True),
    (4, 6, 0, True, True),
])
def test_real_socket_traffic_and_the_l4_hash_bypass(netns, family, proto, policy, auto_flowlabels, predictable):
    """Policy 1 on the forwarding path returns skb->hash >> 1 when the packet already has an
    L4 hash, and a sender's socket hash survives veth: then placement is a per-connection
    random draw, not the seeded hash.  Policies 0 and 3 ignore it and stay exact."""
    r = KernelRouter.build(netns, 8, seed=SEED, policy=policy, fields=0x37)
    r.route_multipath(range(8), family=family)
    fa = socket_flows(17 + family + proto + policy, family, proto)
    got = np.array(kernel_forward_sockets(r, fa, auto_flowlabels=auto_flowlabels))
    assert (got >= 0).all(), f"{(got < 0).sum()} first packets were not seen"
    model = hash_threshold(hashes(fa, policy=policy, fields=0x37), [1] * 8)
    if predictable:
        assert_same(got, model, fa)
    else:
        assert (got == model).mean() < 0.5  # about 1/8: a random draw per connection


def test_resilient_group_random_changes_without_traffic(netns):
    """No lookups: every bucket stays idle, so each change completes at once; after each one
    the bucket table must equal the model's (order of under-weight members, rounding of wants)."""
    r = KernelRouter.build(netns, 6, seed=SEED, policy=1)
    ids = r.nexthops(range(6))
    rng = np.random.default_rng(21)
    members, weights = ids[:3], [1, 1, 1]
    r.group(1, members, weights, kind="resilient", buckets=50, idle_timer=60)
    model = ResilientGroup.create(members, weights, num_buckets=50, idle_timer=60, now=0.0)
    assert r.buckets(1) == list(model.table)
    for step in range(1, 13):
        op = rng.choice(["add", "remove", "weight"])
        if op == "add" and len(members) < 6:
            new = int(rng.choice([i for i in ids if i not in members]))
            pos = int(rng.integers(0, len(members) + 1))
            members = members[:pos] + [new] + members[pos:]
            weights = weights[:pos] + [int(rng.integers(1, 5))] + weights[pos:]
        elif op == "remove" and len(members) > 1:
            k = int(rng.integers(0, len(members)))
            members, weights = members[:k] + members[k + 1:], weights[:k] + weights[k + 1:]
        else:
            k = int(rng.integers(0, len(members)))
            weights = weights[:k] + [int(rng.integers(1, 8))] + weights[k + 1:]
        r.group(1, members, weights, kind="resilient", replace=True)
        model.replace(members, weights, now=float(step))
        assert model.balanced
        assert r.buckets(1) == list(model.table), f"step {step}: {op} -> {members} {weights}"
