"""Mappings hash -> next hop: vectorised versions equal their pure-Python references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.model.mapping import (hash_threshold, hash_threshold_bounds, hash_threshold_one, maglev_lookup,
                                       maglev_table, modulo_n, modulo_n_one, resilient_lookup, resilient_lookup_one,
                                       usable_mask)

hashes = st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=40)


def test_bounds_follow_fib_rebalance_rounding():
    # DIV_ROUND_CLOSEST_ULL((u64)w << 31, total) - 1
    assert list(hash_threshold_bounds([1, 1, 1, 1])) == [2**29 - 1, 2**30 - 1, 3 * 2**29 - 1, 2**31 - 1]
    b = hash_threshold_bounds([1, 1, 1])
    assert list(b) == [round(2**31 / 3) - 1, round(2 * 2**31 / 3) - 1, 2**31 - 1]
    assert list(hash_threshold_bounds([1, 2, 3], [True, False, True])) == [2**29 - 1, -1, 2**31 - 1]
    assert list(hash_threshold_bounds([5, 5], [False, False])) == [-1, -1]


def test_hash_threshold_edges():
    w = [1, 1, 1, 1]
    edges = np.array([0, 2**29 - 1, 2**29, 2**30 - 1, 2**30, 2**31 - 1])
    assert list(hash_threshold(edges, w)) == [0, 0, 1, 1, 2, 3]
    # an unusable next hop's range goes to the rest; its weight leaves the total
    assert list(hash_threshold(edges, w, [True, False, True, True])) == [0, 0, 0, 2, 2, 3]
    assert list(hash_threshold(edges, w, [False] * 4)) == [-1] * 6


def test_neighbour_bad_next_hop_keeps_its_range_but_is_skipped():
    w = [1, 1, 1, 1]
    h = np.array([0, 2**29 + 5, 2**30 + 5, 2**31 - 1])
    # nh1 bad: its flows fall to nh2 (next good whose bound >= hash); others stay
    assert list(hash_threshold(h, w, good=[True, False, True, True])) == [0, 2, 2, 3]
    # the last one bad: no later good bound -> the first good next hop
    assert list(hash_threshold(h, w, good=[True, True, True, False])) == [0, 1, 2, 0]


def test_prefer_source_address_picks_the_matching_next_hop_first():
    w = [1, 1, 1, 1]
    h = np.array([0, 2**30 + 5])
    assert list(hash_threshold(h, w, prefer=[False, False, True, True])) == [2, 2]
    assert list(hash_threshold(h, w, prefer=[False, False, False, False])) == [0, 2]


@settings(max_examples=200, deadline=None)
@given(h=hashes, data=st.data())
def test_hash_threshold_vectorised_equals_reference(h, data):
    n = data.draw(st.integers(1, 16))
    weights = data.draw(st.lists(st.integers(1, 255), min_size=n, max_size=n))
    usable = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    good = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    prefer = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    got = hash_threshold(np.array(h, np.uint32), weights, usable, good=good, prefer=prefer)
    assert list(got) == [hash_threshold_one(x, weights, usable, good=good, prefer=prefer) for x in h]


@settings(max_examples=100, deadline=None)
@given(h=hashes, n=st.integers(0, 64))
def test_modulo_n_equals_reference(h, n):
    assert list(modulo_n(np.array(h, np.uint32), n)) == [modulo_n_one(x, n) for x in h]


@settings(max_examples=100, deadline=None)
@given(h=hashes, table=st.lists(st.integers(100, 110), min_size=1, max_size=300))
def test_resilient_lookup_equals_reference(h, table):
    got = resilient_lookup(np.array(h, np.uint32), np.array(table))
    assert list(got) == [resilient_lookup_one(x, table) for x in h]


def test_resilient_lookup_checks_the_table_size():
    with pytest.raises(ValueError):
        resilient_lookup(np.array([1]), np.array([1, 2, 3]), 4)


def test_usable_mask_honours_ignore_routes_with_linkdown():
    assert list(usable_mask([False, True, False], [True, False, False], False)) == [True, False, True]
    assert list(usable_mask([False, True, False], [True, False, False], True)) == [False, False, True]


def test_hash_threshold_shares_follow_weights():
    h = np.random.default_rng(0).integers(0, 2**31, 200000)
    idx = hash_threshold(h, [1, 2, 1])
    share = np.bincount(idx, minlength=3) / h.size
    assert np.allclose(share, [0.25, 0.5, 0.25], atol=0.01)


def test_maglev_is_balanced_and_consistent():
    t = maglev_table(["a", "b", "c", "d"], size=251)
    counts = np.bincount(t, minlength=4)
    assert counts.sum() == 251 and counts.max() - counts.min() <= 1
    # removing a member moves mostly its own entries
    t2 = maglev_table(["a", "b", "c"], size=251)
    moved = (t != t2) & (t != 3)
    assert moved.sum() < 0.15 * 251
    w = np.bincount(maglev_table(["a", "b"], [3, 1], size=251), minlength=2)
    assert w[0] > 2 * w[1]
    assert list(maglev_lookup(np.array([0, 251]), t)) == [t[0], t[0]]
