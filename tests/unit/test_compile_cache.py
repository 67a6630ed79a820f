"""Compiled devices are shared by states holding the very same records (what the poller hands back while a
device does not change), recompiled when a record changes, and the cache stays bounded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model import placement
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.paths import trace
from anycast_tui.model.placement import HashCache, compile_device, compiled_for, lookup


def test_same_records_share_one_compiled_device_and_a_change_recompiles():
    st = SimFabric().snapshot(1).devices["spine01"]
    a = compiled_for(st)
    assert compiled_for(replace(st, collected_at_ms=2)) is a  # a new poll, the same records
    assert compiled_for(replace(st, routes=tuple(list(st.routes)))) is not a  # equal, but not the same records
    assert compiled_for(replace(st, hash=replace(st.hash, seed=st.hash.seed + 1))) is not a


def test_paths_are_the_same_with_shared_compilations():
    sim = SimFabric()
    before = sim.snapshot(1)
    flows = synthetic_flows(50, 2_000, seed=5)
    first = trace(before, flows, "spine01")
    again = trace(replace(before, devices={n: replace(s, collected_at_ms=9) for n, s in before.devices.items()}),
                  flows, "spine01")
    assert np.array_equal(first.final_labels(), again.final_labels())
    # and every destination finds the same route as in a device compiled afresh, every route resolved
    _, first = HashCache(flows).destinations()
    for name, st in before.devices.items():
        fresh, shared = compile_device(st), compiled_for(st)
        a, b = lookup(fresh, flows, first), lookup(shared, flows, first)
        assert [fresh.decisions[i].route if i >= 0 else None for i in a] == \
            [shared.decisions[i].route if i >= 0 else None for i in b], name


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(placement, "COMPILE_CACHE_DEVICES", 3)
    st = SimFabric().snapshot(1).devices["leaf01"]
    for k in range(6):
        compiled_for(replace(st, routes=tuple(list(st.routes))))
    assert len(placement._COMPILED) <= 3


def test_routes_are_resolved_on_use_and_an_unused_inconsistent_route_does_not_stop_placement():
    """A live session resolves only the routes its flows reach (a device of thousands of routes sends anycast
    flows by one); the CLI's compile_device still resolves, and checks, every route."""
    from anycast_tui.model.mapping import PlacementError
    from anycast_tui.model.placement import place
    from anycast_tui.model.types import Route

    st = SimFabric().snapshot(1).devices["spine01"]
    broken = Route("198.18.250.0/24", 4, nhid=999)  # names a nexthop the table lacks
    st = replace(st, routes=st.routes + tuple(Route(f"198.18.{200 + k // 250}.{k % 250}/32", 4, nhid=999)
                                              for k in range(500)) + (broken,))
    flows = synthetic_flows(50, 2_000, seed=5)
    cd = compiled_for(st)
    placed = place(cd, flows)
    assert len(cd.decisions) <= 4 < len(st.routes)  # the anycast routes, not the 500 others
    assert len(set(placed.choice.tolist())) > 1  # spread over the leaves
    try:
        compile_device(st)
    except PlacementError as exc:
        assert "nhid 999" in str(exc)
    else:
        raise AssertionError("compile_device accepted a route naming a missing nexthop")


def test_a_table_received_encoded_is_placed_without_being_built():
    """A viewer's device as the bus brings it (``RouteTable``): its anycast flows are placed as with the routes
    themselves, reading destinations from the encoding and building only the routes a lookup reaches;
    compile_device builds it whole."""
    import json

    from anycast_tui.model.placement import place
    from anycast_tui.model.types import RouteTable
    from anycast_tui.record.codec import chunk_of_routes, routes_of_chunk

    st = SimFabric().snapshot(1).devices["spine01"]
    received = replace(st, routes=routes_of_chunk(json.loads(json.dumps(chunk_of_routes(st.routes)))))
    assert isinstance(received.routes, RouteTable) and len(received.routes) == len(st.routes) > 20
    flows = synthetic_flows(50, 2_000, seed=5)
    want = place(st, flows)
    got = place(compiled_for(received), flows)
    assert not received.routes.built
    assert [want.choices[c] for c in want.choice] == [got.choices[c] for c in got.choice]
    compile_device(received)
    assert received.routes.built
