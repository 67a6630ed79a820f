"""linux_multipath_hash(rows=...) hashes exactly the flows a take() would (gathered per chunk in the workers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import linux_multipath_hash, linux_multipath_hash_one

SEED = 0x9E3779B9


def _mixed(n4: int, n6: int, seed: int) -> FlowArray:
    rng = np.random.default_rng(seed)
    a = FlowArray.random(n4, rng=rng, protos=(6, 17, 1, 47))
    b = FlowArray.random(n6, rng=rng, family=6, flowlabels=True, protos=(6, 17, 58))
    both = FlowArray(*(np.concatenate([getattr(a, c), getattr(b, c)]) for c in
                       ("family", "proto", "src", "dst", "sport", "dport", "flowlabel")))
    return both.take(rng.permutation(len(both)))


@settings(max_examples=60, deadline=None)
@given(policy=st.sampled_from([0, 1, 3]), fields=st.integers(1, 0x3F), forwarded=st.booleans(),
       pick=st.lists(st.integers(0, 59), min_size=0, max_size=40))
def test_rows_equal_take(policy, fields, forwarded, pick):
    flows = _mixed(30, 30, 5)
    rows = np.array(pick, dtype=np.int64)
    got = linux_multipath_hash(flows, policy=policy, seed=SEED, fields=fields, forwarded=forwarded, rows=rows)
    want = linux_multipath_hash(flows.take(rows), policy=policy, seed=SEED, fields=fields, forwarded=forwarded)
    assert got.dtype == np.uint32 and list(got) == list(want)
    assert list(got) == [linux_multipath_hash_one(flows.flow(int(i)), policy=policy, seed=SEED, fields=fields,
                                                  forwarded=forwarded) for i in rows]


@pytest.mark.parametrize("policy", [0, 1, 3])
def test_rows_across_chunks_mixed_families(policy):
    flows = _mixed(50_000, 20_000, 7)
    rows = np.random.default_rng(3).choice(len(flows), 45_000, replace=False)
    got = linux_multipath_hash(flows, policy=policy, seed=SEED, fields=0x3F, rows=rows)
    assert np.array_equal(got, linux_multipath_hash(flows, policy=policy, seed=SEED, fields=0x3F)[rows])


def test_rows_of_a_non_contiguous_address_column():
    flows = _mixed(100, 0, 9)
    wide = np.zeros((100, 32), np.uint8)
    wide[:, ::2] = flows.src  # every other byte: a strided (n, 16) view
    odd = FlowArray(flows.family, flows.proto, wide[:, ::2], flows.dst, flows.sport, flows.dport, flows.flowlabel)
    rows = np.arange(0, 100, 3)
    assert np.array_equal(linux_multipath_hash(odd, policy=1, seed=SEED, rows=rows),
                          linux_multipath_hash(flows, policy=1, seed=SEED)[rows])
