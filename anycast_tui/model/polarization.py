"""Hash polarization: how each device spreads the flows that really reach it, and who hashes alike.

A device hashing with the same function as the device before it (same policy — and fields under policy 3 —
and the same non-zero seed) receives only flows that already hashed one way: a spine that sent leaf01 the
flows whose hash falls in its first quarter leaves leaf01, hashing them again alike, all of them in the
first half of its own hash space.  So, per device and anycast prefix (``spreads``):

* ``shares``: the flows placed end to end (``shares.PrefixPaths``, the sample from where it enters) that
  reach the device, over its next hops — as the tracer placed them at that hop;
* ``uniform``: the same device's hash space per next hop (``placement.hash_space``): what uniform input gets.

A next hop below ``low`` or above ``high`` times its uniform share is polarized when the gap is also far
beyond the sample's own noise (binomial, ``Z`` standard deviations; a device reached by a few flows is not
judged).  Flows placed with an unknown hash (seed 0, an ASIC) are left out: their placement is a guess.

``hash_table`` lists every answering device's settings tier by tier, with the neighbours on an anycast path
that hash alike (``same_hash``): the risk even when today's distribution looks fine.  Pure.
"""

from __future__ import annotations

import math
import numpy as np

from anycast_tui.model.findings import DeviceSpread, HashRow
from anycast_tui.model.paths import neighbour_names
from anycast_tui.model.placement import HARDWARE_PLATFORMS, UNKNOWN, Outcome
from anycast_tui.model.shares import HashSpaces, PrefixPaths
from anycast_tui.model.types import FabricSnapshot, HashSettings, Role

Z = 4.0  # standard deviations of binomial noise a polarized next hop must be beyond
P_NOISE = 1e-6  # and the exact binomial chance of landing that far by noise alone must be below this: a fabric
# of 250 spines with ~40 sample flows each tests a thousand next hops, the normal tail (3e-5 at 4 σ) lets one in
TIERS = (Role.CLIENT, Role.BORDER, Role.SPINE, Role.LEAF, Role.SERVER, Role.OTHER)


def hash_key(hs: HashSettings, family: int) -> tuple[int, int | None, int]:
    """What makes two devices hash a flow alike: policy, fields (policy 3 only), seed."""
    policy, fields = (hs.policy, hs.fields) if family == 4 else (hs.policy6, hs.fields6)
    return policy, (fields if policy == 3 else None), hs.seed


def hashes_known(snap: FabricSnapshot, name: str) -> bool:
    """The device's hash is the kernel's with a known key (not seed 0, not an ASIC)."""
    st = snap.devices[name]
    return st.collected_at_ms is not None and st.hash.seed != 0 and st.device.platform not in HARDWARE_PLATFORMS


def same_hash(snap: FabricSnapshot, a: str, b: str, family: int) -> bool:
    return (hashes_known(snap, a) and hashes_known(snap, b)
            and hash_key(snap.devices[a].hash, family) == hash_key(snap.devices[b].hash, family))


def adjacency(snap: FabricSnapshot, spaces: HashSpaces) -> set[tuple[str, str]]:
    """(a, b): a forwards the prefix to b and b forwards it on (b does not deliver it): by the routes."""
    pairs = set()
    for a in snap.devices:
        for choice, _ in spaces.of(a):
            b = spaces.next_device(choice)
            if b is not None and b in snap.devices and any(c.outcome is Outcome.FORWARD for c, _ in spaces.of(b)):
                pairs.add((a, b))
    return pairs


def upstream(paths: PrefixPaths) -> dict[str, set[str]]:
    """Device → the devices the sample flows reached it from (by the trace)."""
    hops = paths.result.hops
    names = paths.result.devices
    out: dict[str, set[str]] = {}
    for j in range(1, hops.shape[1]):
        a, b = hops[:, j - 1], hops[:, j]
        ok = b >= 0
        if not ok.any():
            break
        pair = np.unique(a[ok].astype(np.int64) * 65536 + b[ok].astype(np.int64))
        for p in pair:
            out.setdefault(names[int(p) // 65536], set())
            out.setdefault(names[int(p) % 65536], set()).add(names[int(p) // 65536])
    return out


def spreads(snap: FabricSnapshot, paths: PrefixPaths, spaces: HashSpaces) -> tuple[DeviceSpread, ...]:
    """Every multipath device's spread of the flows reaching it against uniform input (see module doc)."""
    res = paths.result
    known = res.placement < UNKNOWN
    edges = res.edges[known]
    counts = np.bincount(edges[edges >= 0], minlength=len(res.edge_labels))
    per_device: dict[str, dict[tuple[str | None, str | None], int]] = {}
    for code in np.flatnonzero(counts):
        d, gw, dev = res.edge_labels[int(code)]
        per_device.setdefault(d, {})[(gw, dev)] = int(counts[code])
    out = []
    for d in sorted(per_device):
        if d not in snap.devices or not spaces.multipath(d) or not hashes_known(snap, d):
            continue
        space = [(c, w) for c, w in spaces.of(d) if c.outcome is Outcome.FORWARD]
        names = neighbour_names([(d, c.gateway) for c, _ in space], spaces.owners)
        got = per_device[d]
        n = sum(got.values())
        label = [names.get((d, c.gateway or ""), c.gateway or c.dev or "?") for c, _ in space]
        shares = tuple((lab, got.get((c.gateway, c.dev), 0) / n) for lab, (c, _) in zip(label, space))
        uniform = tuple((lab, w) for lab, (_, w) in zip(label, space))
        out.append(DeviceSpread(d, paths.prefix, shares, uniform, n))
    return tuple(out)


def binomial_tail(k: int, n: int, p: float) -> float:
    """The chance that binomial noise alone lands this far out: P(X ≥ k) when k is above the mean n·p, else
    P(X ≤ k), for X ~ Binomial(n, p), 0 < p < 1 (summed outward from k until the terms stop counting)."""
    lp, lq, top = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    step = 1 if k > n * p else -1
    total, i = 0.0, k
    while 0 <= i <= n:
        term = math.exp(top - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
        total += term
        if term < total * 1e-12:
            break
        i += step
    return min(total, 1.0)


def worst_hop(spread: DeviceSpread, low: float, high: float) -> tuple[str, float, float] | None:
    """The next hop furthest outside [low, high] × its uniform share, beyond noise: (hop, share, uniform)."""
    uni = dict(spread.uniform)
    worst, score = None, 1.0
    for hop, s in spread.shares:
        u = uni.get(hop, 0.0)
        if u <= 0:
            continue
        r = s / u
        if low <= r <= high:
            continue
        expected = u * spread.flows
        if abs(s - u) * spread.flows <= Z * math.sqrt(max(expected * (1 - u), 1e-12)):
            continue
        if u < 1 and binomial_tail(round(s * spread.flows), spread.flows, u) > P_NOISE:
            continue  # few flows: the normal approximation's tail is too thin, the exact one says noise
        bad = max(r, 1 / r) if r > 0 else math.inf
        if bad > score:
            worst, score = (hop, s, u), bad
    return worst


def hash_table(snap: FabricSnapshot, spaces: list[HashSpaces], pairs: set[tuple[str, str]],
               family_of: dict[tuple[str, str], int]) -> tuple[HashRow, ...]:
    """Every answering device's hash settings, tier by tier, with its neighbours on an anycast path (``pairs``)
    that hash alike."""
    alike: dict[str, set[str]] = {}
    for a, b in pairs:
        if same_hash(snap, a, b, family_of.get((a, b), 4)):
            alike.setdefault(a, set()).add(b)
            alike.setdefault(b, set()).add(a)
    rows = []
    for name, st in snap.devices.items():
        if st.collected_at_ms is None:
            continue
        hs = st.hash
        rows.append(HashRow(name, st.device.role.value, hs.policy, hs.fields, hs.seed,
                            any(sp.multipath(name) for sp in spaces), tuple(sorted(alike.get(name, ())))))
    order = {r.value: i for i, r in enumerate(TIERS)}
    return tuple(sorted(rows, key=lambda r: (order.get(r.tier, len(order)), r.device)))
