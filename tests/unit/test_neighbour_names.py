"""Next hops named by the neighbour they lead to, told apart where one neighbour has several."""

from __future__ import annotations

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.whatif import WhatIfKind, each_single_failure
from anycast_tui.model.paths import address_map, neighbour_names
from anycast_tui.session import SimSession


def test_sim_spine_next_hops_named_by_leaf_and_family():
    session = SimSession(SimFabric())
    session.poll()
    snap = session.timeline.snapshot
    hops = [(c.device, c.target) for c in each_single_failure(snap) if c.kind is WhatIfKind.FAIL_NEXTHOP]
    names = neighbour_names(hops, address_map(snap))
    spine = {g: n for (d, g), n in names.items() if d == "spine01"}
    # every gateway of spine01 is a leaf's address, once over IPv4 and once over IPv6
    for g, n in spine.items():
        holder = next(st.device.name for st in snap.devices.values()
                      for i in st.interfaces for a in i.addresses if a.local == g)
        assert n == f"{holder} ({'IPv6' if ':' in g else 'IPv4'})"
    assert len(spine) == 8 and len(set(spine.values())) == 8


def test_one_hop_is_the_name_parallel_links_keep_the_gateway_unknown_stays_out():
    owners = {"10.0.0.1": "leafA", "10.0.1.1": "leafA", "10.0.2.1": "leafB"}
    hops = [("s", "10.0.0.1"), ("s", "10.0.1.1"), ("s", "10.0.2.1"), ("t", "10.0.0.1"), ("s", "10.9.9.9"),
            ("s", "swp1"), ("s", None)]
    assert neighbour_names(hops, owners) == {
        ("s", "10.0.0.1"): "leafA (10.0.0.1)", ("s", "10.0.1.1"): "leafA (10.0.1.1)",
        ("s", "10.0.2.1"): "leafB", ("t", "10.0.0.1"): "leafA"}
