"""Large hops place their devices on worker threads: the paths, labels and impact equal the serial run."""

from __future__ import annotations

import numpy as np
import pytest

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model import hashing, paths
from anycast_tui.model.flows import synthetic_flows
from anycast_tui.model.impact import impact
from anycast_tui.model.whatif import WhatIf, WhatIfKind, apply
from anycast_tui.model.paths import PathResult, Tracer


def _fields(r: PathResult) -> dict:
    return {k: getattr(r, k) for k in r.__slots__}


def _same(a: PathResult, b: PathResult) -> None:
    fa, fb = _fields(a), _fields(b)
    for k in fa:
        if isinstance(fa[k], np.ndarray):
            assert fa[k].dtype == fb[k].dtype and np.array_equal(fa[k], fb[k]), k
        else:
            assert fa[k] == fb[k], k


def _run(resilient: bool) -> tuple:
    sim = SimFabric(SimConfig(spines=2, leaves=4, servers_per_leaf=2, resilient=resilient))
    before = sim.snapshot()
    after = apply(before, WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03"))
    flows = synthetic_flows(300, 4000, seed=5)
    ingress = (["spine01", "spine02", "nowhere"], (np.arange(len(flows)) % 3).astype(np.int32))
    whole = Tracer(before, flows).trace(ingress)
    part = Tracer(before, flows).trace(ingress, np.arange(1, len(flows), 3))
    imp = impact(before, after, flows, ingress, change=WhatIf(WhatIfKind.FAIL_DEVICE, "leaf03"))
    return whole, part, imp


@pytest.mark.parametrize("resilient", [False, True])
def test_parallel_placement_equals_serial(monkeypatch, resilient):
    monkeypatch.setattr(hashing, "WORKERS", 1)
    serial = _run(resilient)
    monkeypatch.setattr(hashing, "WORKERS", 2)
    monkeypatch.setattr(paths, "PARALLEL_MIN_ROWS", 0)
    submitted = []
    real = paths.place_pool()

    class Spy:
        def submit(self, *a, **k):
            submitted.append(a[1])
            return real.submit(*a, **k)

    monkeypatch.setattr(paths, "place_pool", lambda: Spy())
    parallel = _run(resilient)
    assert len(submitted) > 4  # the threaded path ran
    _same(serial[0], parallel[0])
    _same(serial[1], parallel[1])
    _same(serial[2].before, parallel[2].before)
    _same(serial[2].after, parallel[2].after)
    assert serial[2].counts == parallel[2].counts and serial[2].counts["moved"] > 0
    assert np.array_equal(serial[2].collateral, parallel[2].collateral)
