"""Paths and what-if mutations against the simulated fabric (anycast_tui.lab.sim): its own per-flow
``route get`` walked hop by hop, before and after it recomputes its routes for a failure."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
import simwalk
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.impact import impact
from anycast_tui.model.whatif import WhatIf, WhatIfKind, apply
from anycast_tui.model.paths import trace
from anycast_tui.model.types import FabricSnapshot

FLOWS = synthetic_flows(100, 300, seed=17)


def walk(sim: SimFabric, snap: FabricSnapshot, ingress: str) -> list[str]:
    """Where each flow ends, asking the simulator one hop at a time (forwarding path: iif given)."""
    return simwalk.walk(sim, snap, FLOWS, [ingress] * len(FLOWS))


@pytest.mark.parametrize("resilient", [False, True])
def test_trace_and_fail_device_agree_with_the_simulator(resilient):
    sim = SimFabric(SimConfig(spines=2, leaves=4, servers_per_leaf=2, resilient=resilient))
    before = sim.snapshot()
    res = trace(before, FLOWS, "spine02")
    assert list(res.final_device()) == walk(sim, before, "spine02")
    assert len(set(res.final_device())) == 8

    change = WhatIf(WhatIfKind.FAIL_DEVICE, "leaf02")
    imp = impact(before, apply(before, change), FLOWS, "spine02", change=change)
    sim.fail_device("leaf02")
    assert list(imp.after.final_device()) == walk(sim, sim.snapshot(), "spine02")
    on_leaf2 = np.array(["leaf02" in res.path(i) for i in range(len(FLOWS))])
    assert imp.moved[on_leaf2].all()
    if resilient:
        assert not imp.collateral.any()
    else:
        assert imp.collateral.any()


@pytest.mark.parametrize("resilient", [False, True])
def test_fail_device_edits_as_dropping_each_of_its_addresses_in_turn(resilient):
    """fail_device edits only the addresses a device's next hops name; the oracle is the definition: every other
    device drops every address of the failed one, in order (resilient groups: their bucket tables too)."""
    from anycast_tui.model.whatif import _edit_device, device_addresses, fail_device

    sim = SimFabric(SimConfig(spines=3, leaves=4, servers_per_leaf=2, resilient=resilient))
    before = sim.snapshot()
    for name in before.devices:
        addrs = sorted(device_addresses(before.devices[name]))
        got = fail_device(before, name)
        assert set(got.devices) == set(before.devices) - {name}
        for other, state in before.devices.items():
            if other == name:
                continue
            want = state
            for a in addrs:
                want, _ = _edit_device(want, a, drop=True)
            assert got.devices[other] == want, (name, other)
            assert (got.devices[other] is state) == (want is state)  # untouched devices stay the same objects


_NETS = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))))


@settings(max_examples=2000, deadline=None)
@given(_NETS, st.lists(_NETS, min_size=1, max_size=3))
def test_a_route_overlaps_the_covered_prefixes_as_ipaddress_says(dst, covering):
    """with_mapping(covering=) keeps a route when its destination overlaps one of the prefixes: ``ipaddress``'s
    ``overlaps`` (same family) is the oracle of the integer test."""
    from anycast_tui.model.placement import dst_key
    from anycast_tui.model.whatif import _overlaps

    want = any(ipaddress.ip_network(dst).version == ipaddress.ip_network(p).version
               and ipaddress.ip_network(dst).overlaps(ipaddress.ip_network(p)) for p in covering)
    assert _overlaps(dst, tuple(dst_key(p)[:3] for p in covering)) == want
