"""model.views (bucket bar cells) and model.drain (safest drain order) over the simulated fabric."""

from __future__ import annotations

import dataclasses

import numpy as np

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.drain import drain_order
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.impact import what_if
from anycast_tui.model.whatif import WhatIf, WhatIfKind, fail_nexthop
from anycast_tui.model.types import Bucket, GroupMember, NexthopGroup, NexthopObject, NexthopTable, Route
from anycast_tui.model.hashspace import group_space, moved_cells, sample
from anycast_tui.session import SimSession

P = "192.0.2.53/32"


def _snap():
    session = SimSession(SimFabric(clock=lambda: 1.0), clock=lambda: 1.0)
    return session.poll()


def test_hash_threshold_space_splits_by_weight_and_marks_the_moved_cells():
    snap = _snap()
    sp = group_space(snap.devices["spine01"], P, cells=64)
    assert sp is not None and sp.kind == "hash-threshold"
    gws = [m.label for m in sp.members]
    assert len(gws) == 4 and all(abs(m.target - 0.25) < 1e-9 for m in sp.members)
    assert [sp.owners.count(g) for g in gws] == [16, 16, 16, 16]
    assert list(sp.owners) == sorted(sp.owners, key=gws.index)  # in next hop order
    after = fail_nexthop(snap, "spine01", gws[2])
    sp2 = group_space(after.devices["spine01"], P, cells=64)
    moved = moved_cells(sp, sp2)
    assert gws[2] not in sp2.owners
    # every cell gws[2] held moved; with hash-threshold, boundaries shift so others move too
    assert all(moved[i] for i, o in enumerate(sp.owners) if o == gws[2])
    assert sum(moved) == sum(a != b for a, b in zip(sp.owners, sp2.owners))
    assert group_space(snap.devices["leaf01"], P) is None  # single path: no bar
    assert moved_cells(None, sp) == (False,) * 64


def test_resilient_space_is_the_bucket_table_with_idle_and_busy():
    objs = (NexthopObject(1, gateway="198.18.0.1", dev="eth0"), NexthopObject(2, gateway="198.18.0.3", dev="eth1"))
    table = tuple(Bucket(10, i, 1 if i < 6 else 2, idle_time=5.0 if i % 2 else 500.0) for i in range(8))
    g = NexthopGroup(10, (GroupMember(1, 1), GroupMember(2, 1)), type="resilient", buckets=8, idle_timer=120,
                     bucket_table=table)
    state = dataclasses.replace(_snap().devices["spine01"], routes=(Route(family=4, dst=P, nhid=10),),
                                nexthops=NexthopTable(objs, (g,)))
    sp = group_space(state, P)
    assert sp.kind == "resilient" and len(sp.owners) == 8
    assert sp.busy == tuple(bool(i % 2) for i in range(8))
    share = {m.label: (m.share, m.target) for m in sp.members}
    assert share == {"198.18.0.1": (0.75, 0.5), "198.18.0.3": (0.25, 0.5)}
    assert sample(sp.owners, 4) == ("198.18.0.1",) * 3 + ("198.18.0.3",)


def test_drain_order_is_greedy_by_moved_flows_and_counts_add_up():
    snap = _snap()
    flows = synthetic_flows(50, 2000, dst="192.0.2.53")
    ingress = np.asarray(["spine01", "spine02"], dtype=object)[np.arange(2000) % 2]
    gws = [m.label for m in group_space(snap.devices["spine01"], P).members]
    changes = [WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", gws[0]), WhatIf(WhatIfKind.FAIL_DEVICE, "spine02"),
               WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", gws[1])]
    steps = drain_order(snap, changes, flows, ingress)
    assert set(s.change for s in steps) == set(changes) and len(steps) == 3
    first = min((what_if(snap, c, flows, ingress).counts["moved"], i) for i, c in enumerate(changes))
    assert steps[0].moved == first[0] and steps[0].change == changes[first[1]]
    assert steps[-1].total == sum(s.moved for s in steps)
