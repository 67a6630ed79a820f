"""Resilient group simulation: the kernel's fill order, wants, idle and unbalanced timers.

Tables marked "kernel" were read with ``ip -j nexthop bucket show`` on 6.18
(tests/kernel/test_hash_kernel.py re-checks them live).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.model.resilient import ResilientGroup
from anycast_tui.model.types import Bucket, GroupMember, NexthopGroup


def test_initial_fill_matches_the_kernel():
    # kernel: under-weight list in reverse member order, buckets handed out from index 0
    assert list(ResilientGroup.create([100, 101, 102], num_buckets=4).table) == [102, 101, 101, 100]
    assert list(ResilientGroup.create([100, 101, 102], num_buckets=8).table) == [102] * 3 + [101] * 2 + [100] * 3
    g = ResilientGroup.create([100, 101, 102, 103], [3, 1, 1, 2], num_buckets=13)
    assert list(g.table) == [103] * 4 + [102] * 2 + [101] + [100] * 6
    assert g.wants() == {100: 6, 101: 1, 102: 2, 103: 4} and g.balanced


def test_remove_moves_only_the_removed_members_buckets():
    g = ResilientGroup.create([1, 2, 3, 4], num_buckets=64, idle_timer=100)
    before = g.table
    g.touch(range(64), now=1.0)  # busy buckets do not protect a departed member's buckets
    g.remove(2, now=2.0)
    after = g.table
    assert (after[before != 2] == before[before != 2]).all()
    assert 2 not in after and g.balanced
    assert sorted(g.counts().values()) == [21, 21, 22]


def test_add_moves_idle_buckets_of_overweight_members_only_to_the_new_member():
    g = ResilientGroup.create([1, 2, 3], num_buckets=60, idle_timer=100)
    before = g.table
    g.add(4, now=1.0)  # never-used buckets are idle at once
    after = g.table
    changed = after != before
    assert set(after[changed]) == {4} and changed.sum() == 15 and g.balanced


def test_busy_buckets_wait_for_the_idle_timer():
    g = ResilientGroup.create([1, 2, 3], num_buckets=30, idle_timer=10)
    g.touch(range(30), now=1.0)
    before = g.table
    g.add(4, now=2.0)
    assert (g.table == before).all() and not g.balanced
    g.advance(10.9)
    assert (g.table == before).all()
    g.advance(11.0)  # idle since 1.0 + 10
    assert g.balanced and (g.table == 4).sum() == g.wants()[4] == 7  # 30 - round(22.5)


def test_recently_used_buckets_stay_unbalanced_forever_without_unbalanced_timer():
    g = ResilientGroup.create([1, 2], num_buckets=16, idle_timer=5)
    g.add(3, now=0.1)
    assert g.balanced
    for t in range(1, 50):
        g.lookup(np.arange(16), now=float(t))  # traffic on every bucket every second
    g.set_weight(3, 4, now=50.0)
    for t in range(51, 100):
        g.lookup(np.arange(16), now=float(t))
    assert not g.balanced


def test_unbalanced_timer_forces_busy_buckets():
    g = ResilientGroup.create([1, 2], num_buckets=16, idle_timer=100, unbalanced_timer=3)
    g.touch(range(16), now=1.0)
    g.add(3, now=2.0)
    assert not g.balanced
    g.advance(4.9)
    assert not g.balanced
    g.advance(5.6)  # unbalanced since 2.0 + 3, strictly after, then the 0.5 s upkeep spacing
    assert g.balanced


def test_lookup_marks_buckets_busy():
    g = ResilientGroup.create([1, 2, 3], num_buckets=8, idle_timer=10)
    nh = g.lookup(np.array([0, 9]), now=4.0)
    assert list(nh) == [g.table[0], g.table[1]]
    assert list(g.idle_time(5.0)[:3]) == [1.0, 1.0, 5.0]


def test_from_group_reads_a_collected_table():
    g = ResilientGroup.create([100, 101, 102], num_buckets=8)
    grp = NexthopGroup(id=1, members=(GroupMember(100), GroupMember(101), GroupMember(102)), type="resilient",
                       buckets=8, idle_timer=120, unbalanced_timer=0,
                       bucket_table=tuple(Bucket(1, i, int(n), idle_time=3.0) for i, n in enumerate(g.table)))
    s = ResilientGroup.from_group(grp, now=100.0)
    assert (s.table == g.table).all() and s.balanced
    assert list(s.idle_time(100.0)) == [3.0] * 8
    with pytest.raises(ValueError):
        ResilientGroup.from_group(NexthopGroup(id=2, members=(GroupMember(1),), type="mpath"))


def test_invalid_groups_are_rejected():
    with pytest.raises(ValueError):
        ResilientGroup.create([], num_buckets=8)
    with pytest.raises(ValueError):
        ResilientGroup.create([1, 1], num_buckets=8)
    with pytest.raises(ValueError):
        ResilientGroup.create([1, 2], [1, 0], num_buckets=8)
    g = ResilientGroup.create([1], num_buckets=8)
    with pytest.raises(ValueError):
        g.remove(1, now=1.0)


ops = st.lists(st.tuples(st.sampled_from(["add", "remove", "weight", "touch", "wait"]),
                         st.integers(1, 8), st.integers(1, 5)), max_size=12)


@settings(max_examples=80, deadline=None)
@given(members=st.lists(st.integers(1, 8), min_size=1, max_size=6, unique=True), buckets=st.integers(1, 96),
       steps=ops, idle=st.sampled_from([0, 1, 5]), unb=st.sampled_from([0, 2]))
def test_invariants_under_random_operations(members, buckets, steps, idle, unb):
    g = ResilientGroup.create(members, num_buckets=buckets, idle_timer=idle, unbalanced_timer=unb)
    now = 0.0
    for op, m, w in steps:
        now += 0.25
        before = g.table
        over = {k for k, c in g.counts().items() if c > g.wants().get(k, 0)}
        if op == "add" and m not in g.members:
            g.add(m, w, now=now)
            moved = g.table != before
            # only buckets of over-weight members (after the change) may move, and only to under-weight ones
            assert np.isin(before[moved], list(set(g.members) - {m})).all()
        elif op == "remove" and m in g.members and len(g.members) > 1:
            g.remove(m, now=now)
            assert m not in g.table
        elif op == "weight" and m in g.members:
            g.set_weight(m, w, now=now)
        elif op == "touch":
            g.touch(np.arange(0, buckets, m), now)
        elif op == "wait":
            now += w
            g.advance(now)
            moved = g.table != before
            assert set(before[moved]) <= over
        assert (g.table >= 0).all() and set(g.table) <= set(g.members)
        assert sum(g.wants().values()) == buckets
    g.advance(now + 1000.0)
    # every bucket is idle after idle_timer without traffic: the group settles
    assert g.balanced and g.counts() == {k: v for k, v in g.wants().items()}
