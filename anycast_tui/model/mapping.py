"""Hash -> next hop: modulo-N, Linux hash-threshold, resilient buckets, Maglev.

All mappings take a uint32 array of 31-bit hashes and return an int64 array of
indices (or next-hop ids); -1 means "no usable next hop".  Each has a small
pure-Python reference (``*_one``) used by the property tests.

Which next hops are usable (Linux, fib_rebalance / rt6_multipath_rebalance /
fib_select_multipath / nexthop_select_path_hthr):

* ``dead`` (admin down, or the route's device gone): always excluded — upper
  bound -1, weight leaves the total.
* ``linkdown`` (no carrier): excluded the same way only when
  ``ignore_routes_with_linkdown`` is 1 (conf/all OR conf/DEV) — and only from
  the next rebalance, i.e. the next up/down event of a next hop of the route.
* neighbour FAILED/INCOMPLETE (not NUD_VALID): the next hop keeps its hash
  range but is skipped at selection time (flows fall to the next good next hop
  whose bound is >= hash, else the first good one).  Nexthop-object groups
  always do this; plain IPv4 routes only with ``fib_multipath_use_neigh=1``.
  We usually do not know neighbour state: pass ``good=None`` (all good).
* Nexthop objects whose device goes down or loses carrier are deleted by the
  kernel and leave their groups: model that as removal, not as a flag.

Source preference (IPv4 plain routes, fib_select_multipath on 6.18 stable):
locally generated lookups carry fl4->saddr, and a next hop whose source
address equals it scores higher than one whose hash range matches — so a
flow sourced from one next hop's address leaves by that next hop whatever its
hash.  Forwarded packets (and ``ip route get ... iif``) pass no fl4: no effect.
Verified against the kernel in tests/kernel/test_hash_kernel.py.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "modulo_n",
    "modulo_n_one",
    "hash_threshold_bounds",
    "hash_threshold",
    "hash_threshold_one",
    "resilient_lookup",
    "resilient_lookup_one",
    "maglev_table",
    "maglev_lookup",
    "usable_mask",
    "MAX_WEIGHT",
    "PlacementError",
    "WeightError",
    "check_weights",
]

MAX_WEIGHT = 65536  # the largest weight any kernel takes (nexthop group weights are 16-bit since 6.12)


class PlacementError(ValueError):
    """The device's tables are inconsistent (a route names a missing nexthop group, ...) or hold a value no
    kernel can.  Defined here, exported by :mod:`anycast_tui.model.placement`, so that WeightError is one."""


class WeightError(PlacementError):
    """A weight or resilient bucket count no Linux kernel can hold (weights 1..MAX_WEIGHT, buckets 1..65535).

    The parsers refuse such values (``ParseError``), so this only meets a
    DeviceState built by other means.  Raised, not worked around: a weight 0
    is not "unusable" to the kernel, it cannot exist, so any answer computed
    with it (dropping the member, or a division by zero) would be one no
    device gives.  A PlacementError, so whatever catches those (``calc``,
    ``whatif``: one line, exit 2) catches this; ``compile_device`` adds the
    route or group it was found in.
    """


def check_weights(weights: Sequence[int]) -> list[int]:
    """``weights`` as Python ints, or WeightError naming the first one outside 1..MAX_WEIGHT."""
    out = []
    for i, w in enumerate(weights):
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)) or not 1 <= w <= MAX_WEIGHT:
            text = repr(w) if not isinstance(w, int) or w.bit_length() < 64 else f"<a {w.bit_length()}-bit integer>"
            raise WeightError(f"next hop {i + 1}: weight {text[:24]} is not an integer in 1..{MAX_WEIGHT}")
        out.append(int(w))
    return out


def _h(hashes: ArrayLike) -> np.ndarray:
    return np.asarray(hashes).astype(np.int64, copy=False)


# --------------------------------------------------------------------------- modulo-N


def modulo_n(hashes: ArrayLike, n: int) -> np.ndarray:
    """The seed document's mapping: index = hash mod n (n = number of usable next hops)."""
    h = _h(hashes)
    if n <= 0:
        return np.full(h.shape, -1, np.int64)
    return h % n


def modulo_n_one(h: int, n: int) -> int:
    return h % n if n > 0 else -1


# --------------------------------------------------------------------------- hash-threshold


def usable_mask(dead: Sequence[bool], linkdown: Sequence[bool] | None = None,
                ignore_routes_with_linkdown: bool = False) -> np.ndarray:
    """Which next hops fib_rebalance keeps: not dead, and not linkdown when the sysctl says so."""
    d = np.asarray(dead, bool)
    if linkdown is not None and ignore_routes_with_linkdown:
        d = d | np.asarray(linkdown, bool)
    return ~d


def hash_threshold_bounds(weights: Sequence[int], usable: Sequence[bool] | None = None) -> np.ndarray:
    """Upper bounds as fib_rebalance sets them (int64, -1 for unusable next hops).

    bound_i = DIV_ROUND_CLOSEST_ULL(cum_w_i << 31, total) - 1, cum and total over
    usable next hops only, in route order.  WeightError on a weight outside 1..MAX_WEIGHT.
    """
    w = np.asarray(check_weights(weights), np.int64)
    u = np.ones(w.shape, bool) if usable is None else np.asarray(usable, bool)
    total = int(w[u].sum())
    bounds = np.full(w.shape, -1, np.int64)
    cum = 0
    for i in range(w.shape[0]):
        if not u[i]:
            continue
        cum += int(w[i])
        bounds[i] = ((cum << 31) + total // 2) // total - 1  # DIV_ROUND_CLOSEST_ULL
    return bounds


def hash_threshold(hashes: ArrayLike, weights: Sequence[int], usable: Sequence[bool] | None = None, *,
                   good: Sequence[bool] | None = None,
                   prefer: Sequence[bool] | None = None) -> np.ndarray:
    """Linux hash-threshold: index of the first usable next hop whose bound >= hash.

    ``good``: neighbour state is valid (default all); bad ones keep their range
    but are skipped.  ``prefer``: IPv4 plain routes on locally generated traffic
    (fib_select_multipath with fl4->saddr set) prefer next hops whose source
    address equals the flow's; forwarded packets pass no fl4, so leave it None.
    -1 where no next hop is usable.
    """
    h = np.asarray(hashes)
    if h.dtype not in (np.uint32, np.int64):
        h = h.astype(np.int64)
    bounds = hash_threshold_bounds(weights, usable)
    cand = bounds >= 0
    if good is not None:
        cand &= np.asarray(good, bool)
    out = np.full(h.shape, -1, np.int64)
    idx = np.flatnonzero(cand)
    if idx.size == 0:
        return out
    if prefer is None:
        return _first_in_range(h, bounds, idx, fallback=int(idx[0]))
    pref = np.asarray(prefer, bool) & cand
    pidx = np.flatnonzero(pref)
    if pidx.size == 0:
        return _first_in_range(h, bounds, idx, fallback=int(idx[0]))
    # score = 2*prefer + in_range; the first next hop with the best score wins
    best = _first_in_range(h, bounds, pidx, fallback=int(pidx[0]))
    return best


def _first_in_range(h: np.ndarray, bounds: np.ndarray, idx: np.ndarray, fallback: int) -> np.ndarray:
    b = bounds[idx].astype(h.dtype)  # usable bounds are 0..2^31-1: no widening of h needed
    pos = np.searchsorted(b, h, side="left")  # first bound >= hash (bounds ascend)
    return np.append(idx, fallback).astype(np.int64)[pos]


def hash_threshold_one(h: int, weights: Sequence[int], usable: Sequence[bool] | None = None, *,
                       good: Sequence[bool] | None = None,
                       prefer: Sequence[bool] | None = None) -> int:
    """Reference, following fib_select_multipath (6.18, score version) line by line."""
    weights = check_weights(weights)
    n = len(weights)
    u = [True] * n if usable is None else list(usable)
    g = [True] * n if good is None else list(good)
    total = sum(w for w, ok in zip(weights, u) if ok)
    bounds = []
    cum = 0
    for w, ok in zip(weights, u):
        if not ok:
            bounds.append(-1)
            continue
        cum += w
        bounds.append(((cum << 31) + total // 2) // total - 1)
    saddr = prefer is not None
    sel = -1
    score = -1
    for i in range(n):
        if bounds[i] == -1 or not g[i]:
            continue
        nh_score = 0
        if saddr and prefer[i]:  # type: ignore[index]
            nh_score += 2
        if h <= bounds[i]:
            nh_score += 1
        if score < nh_score:
            sel = i
            score = nh_score
            if nh_score == 3 or (not saddr and nh_score == 1):
                return sel
    return sel


# --------------------------------------------------------------------------- resilient buckets


def resilient_lookup(hashes: ArrayLike, bucket_nhids: ArrayLike, num_buckets: int | None = None) -> np.ndarray:
    """nexthop_select_path_res: bucket = hash % num_buckets; returns the bucket's nhid."""
    table = np.asarray(bucket_nhids, np.int64)
    b = table.shape[0] if num_buckets is None else num_buckets
    if b != table.shape[0]:
        raise ValueError(f"bucket table has {table.shape[0]} entries, expected {b}")
    return table[_h(hashes) % b]


def resilient_lookup_one(h: int, bucket_nhids: Sequence[int]) -> int:
    return int(bucket_nhids[h % len(bucket_nhids)])


# --------------------------------------------------------------------------- Maglev (what-if only)


def _h64(s: str, salt: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8, key=salt).digest(), "little")


def maglev_table(members: Sequence[object], weights: Sequence[int] | None = None,
                 size: int = 65537) -> np.ndarray:
    """Maglev lookup table (Eisenbud et al. 2016) of member indices; ``size`` should be prime.

    Weighted by giving member i ``weights[i]`` turns per round.  Not a Linux
    mapping: for what-if comparison of consistent hashing only.
    """
    m = len(members)
    table = np.full(size, -1, np.int64)
    if m == 0:
        return table
    w = [1] * m if weights is None else [int(x) for x in weights]
    offs = [_h64(str(x), b"offset") % size for x in members]
    skips = [_h64(str(x), b"skip") % (size - 1) + 1 for x in members]
    nxt = [0] * m
    filled = 0
    live = [i for i in range(m) if w[i] > 0]
    if not live:
        return table
    while True:
        for i in live:
            for _ in range(w[i]):
                while True:
                    c = (offs[i] + nxt[i] * skips[i]) % size
                    nxt[i] += 1
                    if table[c] < 0:
                        break
                table[c] = i
                filled += 1
                if filled == size:
                    return table


def maglev_lookup(hashes: ArrayLike, table: np.ndarray) -> np.ndarray:
    return table[_h(hashes) % table.shape[0]]
