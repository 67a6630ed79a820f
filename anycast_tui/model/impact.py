"""Blast radius: which flows an event (a real one, or a what-if edit of ``model.whatif``) moves to another server.

A flow *moves* when the end of its path (the server that answers it, or
where it is dropped / leaves the fabric) differs between ``before`` and
``after``.  Of the moved flows, TCP ones that reached an endpoint before
(delivered, or handed to a gateway outside the snapshot) are reset (the new
server has no socket); UDP ones just continue.  *Collateral* flows
are moved flows whose before-path did not traverse the changed element: the
changed next hop (device + gateway/dev) for next-hop events, the device for
device events; for a plain snapshot diff (no WhatIf), any device whose state
differs.  A *split* is a set of related flows (same ``group`` label, else the
same client address) that ended on one server before and on several after
(computed on demand: :meth:`Impact.splits`).

:func:`what_if` is the impact of one what-if edit; :func:`compare_mappings` reruns one edit under each
mapping (modulo-N, hash-threshold, resilient, maglev) side by side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.paths import Ingress, PathOutcome, PathResult, Tracer, any_hop, code_mask
from anycast_tui.model.placement import HashCache
from anycast_tui.model.types import DeviceState, FabricSnapshot, Route
from anycast_tui.model.whatif import MAPPINGS, NEXTHOP_KINDS, WhatIf, WhatIfKind, apply, with_mapping


@dataclass(frozen=True, slots=True)
class Impact:
    """Per-flow masks (bool arrays) and the summaries of one before → after comparison."""

    change: WhatIf | None
    before: PathResult
    after: PathResult
    labels: tuple[str, ...]  # end labels shared by before_end/after_end
    before_end: np.ndarray  # int32 → labels
    after_end: np.ndarray
    moved: np.ndarray
    tcp_reset: np.ndarray
    udp: np.ndarray
    collateral: np.ndarray
    flows: FlowArray
    group: np.ndarray | None  # related-flow labels (None: flows of one client address are related)

    @property
    def counts(self) -> dict[str, int]:
        return {"flows": int(len(self.moved)), "moved": int(self.moved.sum()), "tcp_reset": int(self.tcp_reset.sum()),
                "udp": int(self.udp.sum()), "collateral": int(self.collateral.sum())}

    def splits(self, limit: int = 20) -> tuple[int, tuple[str, ...]]:
        """(number of related-flow sets split across endpoints, the first ``limit`` of their keys); on demand."""
        delivered = np.isin(self.before.outcome, (PathOutcome.DELIVERED, PathOutcome.EXITED))
        return _splits(self.flows, self.group, self.before_end, self.after_end, delivered, self.moved, limit)

    def matrix(self) -> dict[tuple[str, str], int]:
        """(from, to) → number of moved flows."""
        if not self.moved.any():
            return {}
        n = len(self.labels)
        pairs = self.before_end[self.moved].astype(np.int64) * n + self.after_end[self.moved]
        uniq, cnt = np.unique(pairs, return_counts=True)
        return {(self.labels[int(u) // n], self.labels[int(u) % n]): int(c) for u, c in zip(uniq, cnt)}

    def per_ingress(self, ingress: Ingress) -> dict[str, dict[str, int]]:
        """Counts per ingress device."""
        if isinstance(ingress, str):
            return {ingress: self.counts}
        if isinstance(ingress, tuple):
            values, codes = list(ingress[0]), np.asarray(ingress[1])
        else:
            values, codes = np.unique(np.asarray(ingress).astype(str), return_inverse=True)
            codes = codes.ravel()
        out = {}
        for k, name in enumerate(values):
            sel = codes == k
            if not sel.any():
                continue
            out[str(name)] = {"flows": int(sel.sum()), "moved": int(self.moved[sel].sum()),
                              "tcp_reset": int(self.tcp_reset[sel].sum()), "udp": int(self.udp[sel].sum()),
                              "collateral": int(self.collateral[sel].sum())}
        return out


@dataclass(frozen=True, slots=True)
class EventImpact:
    """What one change (or incident) did to the sample flows, as flow indexes into the sample for ``prefix``.

    ``before``/``after`` are the snapshots the engine compared; ``moved`` etc. are
    flow indexes (int32, ascending); ``from_end``/``to_end`` give, per moved flow,
    its end before and after (indexes into ``labels``); ``split`` holds the flows
    of related-flow sets this change split across servers.
    """

    prefix: str
    before: FabricSnapshot
    after: FabricSnapshot
    counts: dict[str, int]
    moved: np.ndarray
    tcp_reset: np.ndarray
    udp: np.ndarray
    collateral: np.ndarray
    labels: tuple[str, ...]
    from_end: np.ndarray
    to_end: np.ndarray
    split: np.ndarray
    n_splits: int

    @classmethod
    def of(cls, prefix: str, before: FabricSnapshot, after: FabricSnapshot, imp: "Impact",
           split: np.ndarray | None = None, n_splits: int = 0) -> "EventImpact":
        """The per-flow index arrays of one ``Impact`` of ``before`` → ``after`` (its path results are not kept)."""
        moved = np.flatnonzero(imp.moved).astype(np.int32)
        return cls(prefix, before, after, imp.counts, moved,
                   np.flatnonzero(imp.tcp_reset).astype(np.int32), np.flatnonzero(imp.udp).astype(np.int32),
                   np.flatnonzero(imp.collateral).astype(np.int32), imp.labels, imp.before_end[moved],
                   imp.after_end[moved], split if split is not None else np.zeros(0, np.int32), n_splits)



def _shared_labels(a: PathResult, b: PathResult) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    labels: list[str] = list(a.terminals)
    ix = {t: i for i, t in enumerate(labels)}
    for t in b.terminals:
        if t not in ix:
            ix[t] = len(labels)
            labels.append(t)
    bmap = np.array([ix[t] for t in b.terminals] or [0], dtype=np.int32)
    return tuple(labels), a.final.astype(np.int32), bmap[b.final]


def _merge(base: PathResult, part: PathResult, rows: np.ndarray) -> PathResult:
    """``base`` with the flows at ``rows`` replaced by ``part`` (label spaces merged)."""
    def union(x: Sequence, y: Sequence) -> tuple[tuple, np.ndarray]:
        items = list(x)
        ix = {v: i for i, v in enumerate(items)}
        for v in y:
            if v not in ix:
                ix[v] = len(items)
                items.append(v)
        return tuple(items), np.array([ix[v] for v in y] + [-1], dtype=np.int64)

    terminals, tmap = union(base.terminals, part.terminals)
    edge_labels, emap = union(base.edge_labels, part.edge_labels)
    reasons, rmap = union(base.reasons, part.reasons)
    devices = base.devices
    if part.devices != devices:
        devices, dmap = union(base.devices, part.devices)
    else:
        dmap = np.r_[np.arange(len(devices)), -1]
    width = max(base.hops.shape[1], part.hops.shape[1])

    def widen(a: np.ndarray, w: int) -> np.ndarray:
        if a.shape[1] == w:
            return a.copy()
        out = np.full((a.shape[0], w), -1, dtype=a.dtype)
        out[:, :a.shape[1]] = a
        return out

    hops = widen(base.hops, width)
    edges = widen(base.edges, width)
    hops[rows] = widen(dmap[part.hops].astype(np.int16), width)
    edges[rows] = widen(emap[part.edges].astype(np.int32), width)
    final = base.final.copy()
    final[rows] = tmap[part.final]
    outcome = base.outcome.copy()
    outcome[rows] = part.outcome
    placement = base.placement.copy()
    placement[rows] = part.placement
    reason = base.reason.copy()
    reason[rows] = rmap[part.reason]
    return PathResult(devices, final, terminals, outcome, hops, edges, edge_labels, placement, reason, reasons)


def _changed_devices(before: FabricSnapshot, after: FabricSnapshot) -> set[str]:
    names = set(before.devices) | set(after.devices)
    return {n for n in names if before.devices.get(n) is not after.devices.get(n)
            and before.devices.get(n) != after.devices.get(n)}


def _traversed(result: PathResult, change: WhatIf | None, changed: set[str], snapshot: FabricSnapshot) -> np.ndarray:
    """Flows whose path went through the changed element (see module doc)."""
    n = len(result)
    if change is not None and change.kind in NEXTHOP_KINDS:
        codes = [i for i, (d, gw, dev) in enumerate(result.edge_labels)
                 if d == change.device and change.target in (gw, dev)]
        return any_hop(result.edges, code_mask(len(result.edge_labels), codes)) if codes else np.zeros(n, bool)
    if change is not None and change.kind is WhatIfKind.FAIL_DEVICE:
        names = {change.device}
    else:
        names = changed
    codes = [i for i, d in enumerate(result.devices) if d in names]
    return any_hop(result.hops, code_mask(len(result.devices), codes)) if codes else np.zeros(n, bool)


def _splits(flows: FlowArray, group: np.ndarray | None, before_end: np.ndarray, after_end: np.ndarray,
            delivered: np.ndarray, moved: np.ndarray, limit: int = 20) -> tuple[int, tuple[str, ...]]:
    """Related-flow sets (≥2 flows) that all reached one endpoint before and several after."""
    if not moved.any():
        return 0, ()
    if group is not None:
        labels = np.asarray(group, dtype=object)
        has = np.flatnonzero(labels != None)  # noqa: E711 (elementwise)
        if not len(has):
            return 0, ()
        names, codes = np.unique(labels[has].astype(str), return_inverse=True)
        order = has[np.argsort(codes.ravel(), kind="stable")]
        ks = codes.ravel()[np.argsort(codes.ravel(), kind="stable")]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        name_of = lambda s: str(names[ks[s]])  # noqa: E731
    else:
        src = np.ascontiguousarray(flows.src)
        hi = src[:, :8].copy().view(">u8").ravel()
        lo = src[:, 8:].copy().view(">u8").ravel()
        if not lo.any():
            order = np.argsort(hi, kind="stable")
            h = hi[order]
            starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        else:
            order = np.lexsort((lo, hi))
            h, lo_s = hi[order], lo[order]
            starts = np.flatnonzero(np.r_[True, (h[1:] != h[:-1]) | (lo_s[1:] != lo_s[:-1])])
        name_of = lambda s: flows.flow(int(order[s])).src  # noqa: E731
    b, a = before_end[order], after_end[order]
    size = np.diff(np.r_[starts, len(order)])
    gone = np.add.reduceat((~delivered[order]).astype(np.int32), starts) > 0
    split = ((size >= 2) & ~gone & (np.minimum.reduceat(b, starts) == np.maximum.reduceat(b, starts))
             & (np.minimum.reduceat(a, starts) != np.maximum.reduceat(a, starts)))
    idx = np.flatnonzero(split)
    return int(len(idx)), tuple(name_of(starts[i]) for i in idx[:limit])


def _same_ingress(a: Ingress, b: Ingress) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        if tuple(a[0]) == tuple(b[0]):
            return bool(np.array_equal(np.asarray(a[1]), np.asarray(b[1])))
        return False
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def impact(before: FabricSnapshot, after: FabricSnapshot, flows: FlowArray, ingress: Ingress, *,
           change: WhatIf | None = None, group: np.ndarray | None = None, cache: HashCache | None = None,
           before_result: PathResult | None = None, ingress_after: Ingress | None = None) -> Impact:
    """Flows whose end changes between ``before`` and ``after`` (see module doc).

    ``ingress_after``: where flows enter in ``after`` when that differs (an entry device failed);
    default ``ingress``.
    """
    cache = cache or HashCache(flows)
    tb = Tracer(before, flows, cache)
    res_b = before_result if before_result is not None else tb.trace(ingress)
    changed = _changed_devices(before, after)
    ta = Tracer(after, flows, cache, compiled=tb._compiled)
    kept = {a: d for a, d in tb.owners.items() if d in after.devices}
    if ingress_after is not None and not _same_ingress(ingress, ingress_after):
        res_a = ta.trace(ingress_after)
    elif set(after.devices) <= set(before.devices) and kept == ta.owners:
        # only flows that visited a changed (or removed) device can take another path
        codes = [i for i, d in enumerate(res_b.devices) if d in changed]
        rows = np.flatnonzero(any_hop(res_b.hops, code_mask(len(res_b.devices), codes))) if codes \
            else np.zeros(0, np.int64)
        if len(rows) == len(flows):
            res_a = ta.trace(ingress, reuse=res_b, changed=changed)
        else:
            res_a = _merge(res_b, ta.trace(ingress, rows, reuse=res_b, changed=changed), rows) if len(rows) else res_b
    else:
        res_a = ta.trace(ingress)
    labels, b_end, a_end = _shared_labels(res_b, res_a)
    moved = b_end != a_end
    proto = np.asarray(flows.proto)
    delivered = np.isin(res_b.outcome, (PathOutcome.DELIVERED, PathOutcome.EXITED))  # had a live endpoint
    tcp_reset = moved & (proto == 6) & delivered
    udp = moved & (proto == 17)
    collateral = moved & ~_traversed(res_b, change, changed, before)
    return Impact(change, res_b, res_a, labels, b_end, a_end, moved, tcp_reset, udp, collateral, flows, group)


def what_if(snapshot: FabricSnapshot, change: WhatIf, flows: FlowArray, ingress: Ingress, *,
            group: np.ndarray | None = None, cache: HashCache | None = None,
            before_result: PathResult | None = None) -> Impact:
    """impact(snapshot, apply(snapshot, change), ...): the blast radius of one what-if event."""
    return impact(snapshot, apply(snapshot, change), flows, ingress, change=change, group=group, cache=cache,
                  before_result=before_result)


@dataclass(frozen=True, slots=True)
class MappingImpact:
    name: str
    moved: int
    tcp_reset: int
    udp: int
    collateral: int
    impact: Impact | None = dataclasses.field(default=None, repr=False, compare=False)


def compare_mappings(before: FabricSnapshot, change: WhatIf, flows: FlowArray, ingress: Ingress, *,
                     mappings: Iterable[str] = MAPPINGS, group: np.ndarray | None = None,
                     cache: HashCache | None = None, keep: bool = False) -> list[MappingImpact]:
    """The blast radius of ``change`` under each mapping, side by side (``keep`` keeps each Impact)."""
    cache = cache or HashCache(flows)
    out = []
    for name in mappings:
        b = with_mapping(before, name)
        a = apply(b, change)
        imp = impact(b, a, flows, ingress, change=change, group=group, cache=cache)
        c = imp.counts
        out.append(MappingImpact(name, c["moved"], c["tcp_reset"], c["udp"], c["collateral"], imp if keep else None))
    return out


def changed_routes(before: DeviceState, after: DeviceState) -> list[Route]:
    """Routes of ``after`` that differ from ``before`` (for display)."""
    old = {r.key: r for r in before.routes}
    return [r for r in after.routes if old.get(r.key) != r]
