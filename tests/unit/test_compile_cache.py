"""Compiled devices are shared by states holding the very same records (what the poller hands back while a
device does not change), recompiled when a record changes, and the cache stays bounded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model import placement
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.paths import trace
from anycast_tui.model.placement import compile_device, compiled_for


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
    # and equal to compiling afresh
    for name, st in before.devices.items():
        fresh, shared = compile_device(st), compiled_for(st)
        assert [d.route for d in fresh.decisions] == [d.route for d in shared.decisions], name


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(placement, "COMPILE_CACHE_DEVICES", 3)
    st = SimFabric().snapshot(1).devices["leaf01"]
    for k in range(6):
        compiled_for(replace(st, routes=tuple(list(st.routes))))
    assert len(placement._COMPILED) <= 3
