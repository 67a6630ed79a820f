"""Impact of what-if events on a 2-spine × 4-leaf fabric: moved flows, TCP resets, collateral, splits, mappings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from anycast_tui.model.flows import flows_to_array, synthetic_flows
from anycast_tui.model.impact import compare_mappings, impact, what_if
from anycast_tui.model.whatif import (WhatIf, WhatIfError, WhatIfKind, apply, each_single_failure, fail_device,
                                      fail_nexthop, restore_nexthop, set_weight, settle_resilient, with_mapping)
from anycast_tui.model.paths import PathOutcome, trace
from anycast_tui.model.types import Flow

from test_paths import clos

FLOWS = synthetic_flows(200, 4000, seed=21)


def _leaf_of(res, i):
    return res.path(i)[1]


def test_failing_a_leaf_on_one_spine_moves_its_flows_plus_hash_threshold_collateral():
    before = clos()
    change = WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5")  # spine01 → leaf02
    after = apply(before, change)
    imp = impact(before, after, FLOWS, "spine01", change=change)
    on_leaf2 = np.array([_leaf_of(imp.before, i) == "leaf02" for i in range(len(FLOWS))])
    # every flow that used leaf02 moved; the others that moved are exactly the collateral
    assert imp.moved[on_leaf2].all()
    assert np.array_equal(imp.collateral, imp.moved & ~on_leaf2)
    assert imp.collateral.sum() > 0  # hash-threshold reshuffles unrelated flows
    # TCP resets / UDP split the moved flows by protocol
    tcp = FLOWS.proto == 6
    assert np.array_equal(imp.tcp_reset, imp.moved & tcp)
    assert np.array_equal(imp.udp, imp.moved & ~tcp)
    # nobody lands on server21 any more; the matrix adds up
    assert "server21" not in set(imp.after.final_device())
    m = imp.matrix()
    assert sum(m.values()) == imp.moved.sum()
    assert all(a != b for a, b in m)
    # the after paths are the same as a full re-trace
    full = trace(after, FLOWS, "spine01")
    assert list(full.final_labels()) == list(imp.after.final_labels())


def test_resilient_removal_moves_only_the_removed_members_flows():
    before = with_mapping(clos(), "resilient")
    change = WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5")
    imp = what_if(before, change, FLOWS, "spine01")
    on_leaf2 = np.array([_leaf_of(imp.before, i) == "leaf02" for i in range(len(FLOWS))])
    assert on_leaf2.any()
    assert np.array_equal(imp.moved, on_leaf2)
    assert imp.collateral.sum() == 0


def test_compare_mappings_side_by_side():
    change = WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5")
    rows = {m.name: m for m in compare_mappings(clos(), change, FLOWS, "spine01")}
    assert list(rows) == ["actual", "hash-threshold", "modulo-n", "resilient", "maglev"]
    assert rows["actual"].moved == rows["hash-threshold"].moved  # the fabric uses plain multipath routes
    assert rows["resilient"].collateral == 0
    assert rows["maglev"].collateral < rows["hash-threshold"].collateral
    # modulo-N: 4 → 3 next hops reshuffles about 3/4 of all flows
    assert rows["modulo-n"].moved > 0.6 * len(FLOWS)
    for r in rows.values():
        assert r.moved == r.tcp_reset + r.udp


def test_fail_device_and_per_ingress_counts():
    before = clos()
    ingress = np.where(np.arange(len(FLOWS)) % 2 == 0, "spine01", "spine02").astype(object)
    after = fail_device(before, "leaf03")
    change = WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03")
    imp = impact(before, after, FLOWS, ingress, change=change)
    via3 = np.array(["leaf03" in imp.before.path(i) for i in range(len(FLOWS))])
    assert imp.moved[via3].all() and np.array_equal(imp.collateral, imp.moved & ~via3)
    assert (imp.after.outcome == PathOutcome.DELIVERED).all()
    assert "server31" not in set(imp.after.final_device())
    per = imp.per_ingress(ingress)
    assert set(per) == {"spine01", "spine02"}
    assert sum(v["moved"] for v in per.values()) == imp.moved.sum()


def test_restore_after_fail_and_weight_change():
    before = clos()
    failed = fail_nexthop(before, "spine01", "198.18.1.5")
    back = restore_nexthop(failed, "spine01", "198.18.1.5", reference=before)
    assert back.devices["spine01"].routes == before.devices["spine01"].routes
    # a dead next hop comes back by clearing its flag
    sp = before.devices["spine01"]
    r0 = sp.routes[0]
    dead = replace(r0, nexthops=tuple(replace(nh, flags=("dead",)) if nh.gateway == "198.18.1.5" else nh
                                      for nh in r0.nexthops))
    snap = replace(before, devices={**before.devices, "spine01": replace(sp, routes=(dead,) + sp.routes[1:])})
    change = WhatIf(WhatIfKind.RESTORE_NEXTHOP, "spine01", "198.18.1.5")
    imp = impact(snap, apply(snap, change), FLOWS, "spine01", change=change)
    assert imp.moved.any() and np.array_equal(imp.collateral, imp.moved)  # nothing used it before
    heavy = set_weight(before, "spine01", "198.18.1.3", 5)
    assert [nh.weight for nh in heavy.devices["spine01"].routes[0].nexthops] == [5, 1, 1, 1]
    with pytest.raises(WhatIfError):
        fail_nexthop(before, "spine01", "198.18.9.9")
    with pytest.raises(WhatIfError):
        restore_nexthop(before, "spine01", "198.18.1.5")
    with pytest.raises(WhatIfError):
        fail_device(before, "nosuch")


def test_resilient_restore_and_settle():
    before = with_mapping(clos(), "resilient")
    failed = fail_nexthop(before, "spine01", "198.18.1.5")
    back = restore_nexthop(failed, "spine01", "198.18.1.5", reference=before)
    g_back = back.devices["spine01"].nexthops.groups[0]
    counts = np.bincount([b.nhid for b in g_back.bucket_table])
    settled = settle_resilient(back, "spine01").devices["spine01"].nexthops.groups[0]
    counts2 = np.bincount([b.nhid for b in settled.bucket_table])
    assert sorted(counts2[counts2 > 0]) == [32, 32, 32, 32]
    assert len(g_back.members) == 4 and counts.sum() == 128


def test_each_single_failure_lists_nexthops_and_devices():
    changes = each_single_failure(clos())
    labels = [c.label for c in changes]
    assert "spine01: fail 198.18.1.3" in labels and "spine02: fail 198.18.2.9" in labels
    assert sum(c.kind is WhatIfKind.FAIL_NEXTHOP for c in changes) == 8  # 2 spines × 4 leaves (leaves have one path)
    assert {c.device for c in changes if c.kind is WhatIfKind.FAIL_DEVICE} >= {"leaf01", "leaf04", "server11"}


def test_whatif_kinds_keep_their_names_labels_and_each_applies():
    # the values are what --json and the CLI print; every kind has an edit in apply's table
    assert [k.value for k in WhatIfKind] == ["fail_nexthop", "restore_nexthop", "fail_device", "set_weight", "settle"]
    assert [WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5").label,
            WhatIf(WhatIfKind.RESTORE_NEXTHOP, "spine01", "198.18.1.5").label,
            WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03").label,
            WhatIf(WhatIfKind.SET_WEIGHT, "spine02", "198.18.2.3", 3).label,
            WhatIf(WhatIfKind.SETTLE).label, WhatIf(WhatIfKind.SETTLE, "spine01").label] == [
        "spine01: fail 198.18.1.5", "spine01: restore 198.18.1.5", "fail leaf03", "spine02: weight 198.18.2.3 = 3",
        "settle resilient groups", "settle resilient groups on spine01"]
    before = clos()
    failed = apply(before, WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5"))
    assert failed == fail_nexthop(before, "spine01", "198.18.1.5")
    assert apply(before, WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03")) == fail_device(before, "leaf03")
    assert apply(before, WhatIf(WhatIfKind.SET_WEIGHT, "spine02", "198.18.2.3", 3)) == \
        set_weight(before, "spine02", "198.18.2.3", 3)
    assert apply(before, WhatIf(WhatIfKind.SETTLE)) == settle_resilient(before)
    with pytest.raises(WhatIfError):
        apply(before, WhatIf(WhatIfKind.RESTORE_NEXTHOP, "spine01", "198.18.1.5"))  # nothing dead to restore
    with pytest.raises(WhatIfError, match="unknown change 'fail_nexthop'"):
        apply(before, WhatIf("fail_nexthop", "spine01", "198.18.1.5"))  # a string is not a kind


def test_related_flow_splits():
    # one client, two flows of one "session" on one server before; failing its leaf may split them
    before = clos()
    rows = [Flow(6, "203.0.113.77", 20000 + i, "192.0.2.53", 21, group="ftp") for i in range(40)]
    fa, meta = flows_to_array(rows)
    res = trace(before, fa, "spine01")
    target = res.path(0)[1]
    keep = [i for i in range(40) if res.path(i)[1] == target][:2]
    fa2, meta2 = flows_to_array([rows[i] for i in keep])
    # group of 2 on one leaf/server; fail that leaf's link: both move but may land on different servers
    gw = {"leaf01": "198.18.1.3", "leaf02": "198.18.1.5", "leaf03": "198.18.1.7", "leaf04": "198.18.1.9"}[target]
    change = WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", gw)
    imp = impact(before, apply(before, change), fa2, "spine01", change=change, group=meta2.group)
    split = len(set(imp.after.final_device())) > 1
    assert imp.splits() == (int(split), ("ftp",) if split else ())
    # by client address when there are no labels: the 40 flows of one client were spread already → no split
    imp2 = impact(before, apply(before, change), fa, "spine01", change=change)
    assert imp2.splits()[0] == 0


def test_split_count_matches_a_per_group_count():
    before = clos()
    n = 3000
    fa = synthetic_flows(100, n, seed=4)
    group = np.array([f"g{i % 700}" for i in range(n)], dtype=object)
    change = WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5")
    imp = impact(before, apply(before, change), fa, "spine01", change=change, group=group)
    b, a = imp.before.final_labels(), imp.after.final_labels()
    want = 0
    for g in set(group):
        sel = group == g
        if sel.sum() >= 2 and len(set(b[sel])) == 1 and len(set(a[sel])) > 1:
            want += 1
    assert want > 0 and imp.splits()[0] == want
    # by client address (no labels)
    imp2 = impact(before, apply(before, change), fa, "spine01", change=change)
    src = np.array([fa.flow(i).src for i in range(n)], dtype=object)
    want2 = sum(1 for s in set(src) if (src == s).sum() >= 2 and len(set(b[src == s])) == 1
                and len(set(a[src == s])) > 1)
    assert imp2.splits()[0] == want2


@pytest.mark.parametrize("change", [
    WhatIf(WhatIfKind.FAIL_NEXTHOP, "spine01", "198.18.1.5"),
    WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03"),
    WhatIf(WhatIfKind.FAIL_DEVICE, "server21"),
    WhatIf(WhatIfKind.SET_WEIGHT, "spine02", "198.18.2.3", 3),
])
def test_incremental_after_paths_equal_a_full_trace(change):
    before = clos(servers_per_leaf=2)
    devices = {n: (replace(s, hash=replace(s.hash, seed=1000 + i)) if n.startswith("leaf") else s)
               for i, (n, s) in enumerate(sorted(before.devices.items()))}
    before = replace(before, devices=devices)
    ingress = np.where(np.arange(len(FLOWS)) % 3 == 0, "spine01", "spine02").astype(object)
    after = apply(before, change)
    imp = impact(before, after, FLOWS, ingress, change=change)
    full = trace(after, FLOWS, ingress)
    assert list(imp.after.final_labels()) == list(full.final_labels())
    assert np.array_equal(imp.after.outcome, full.outcome)
    for i in range(0, len(FLOWS), 37):
        assert imp.after.path(i) == full.path(i)
        assert [imp.after.edge_labels[e] for e in imp.after.edges[i] if e >= 0] == \
            [full.edge_labels[e] for e in full.edges[i] if e >= 0]
    assert imp.moved.any()
