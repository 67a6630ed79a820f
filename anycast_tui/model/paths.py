"""Follow flows hop by hop through a fabric, to the device that answers them.

A flow enters at its ingress device; each device places it with its own
tables and hash settings (:mod:`anycast_tui.model.placement`); a next hop's
gateway address resolves to the device holding that address on an interface.
A flow ends where it is delivered locally (the anycast server that answers
it), dropped, finds no route, leaves the known fabric (a gateway no collected
device holds) or exceeds the hop limit (a loop).
"""

from __future__ import annotations

import enum
import functools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import numpy as np

from anycast_tui.model import hashing
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.placement import (CompiledDevice, HashCache, Outcome, PLACEMENTS, Placed, compiled_for,
                                         place)
from anycast_tui.model.types import DeviceState, FabricSnapshot

MAX_HOPS = 16
PARALLEL_MIN_ROWS = 1 << 16  # flows at one hop from which devices are placed on worker threads


@functools.lru_cache(maxsize=1)
def place_pool() -> ThreadPoolExecutor:
    """The worker threads large hops place their devices on (``PARALLEL_MIN_ROWS``), made on first use."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="place")

# Where flows enter: one device name for all, a name per flow (object/str array), or factorized as
# (names, int codes per flow) — the fastest form for large flow sets.
Ingress = str | np.ndarray | tuple


class PathOutcome(enum.IntEnum):
    DELIVERED = 0  # dst is local on the final device
    DROPPED = 1  # blackhole / unreachable / prohibit route
    NO_ROUTE = 2
    EXITED = 3  # next hop is not a collected device
    LOOP = 4  # still forwarding after MAX_HOPS
    NO_DEVICE = 5  # ingress is not a collected device


@dataclass(frozen=True, slots=True)
class PathResult:
    """Per flow: where it ended and how it got there.

    ``final`` indexes ``terminals`` (labels such as ``server03``,
    ``leaf01 via 198.18.0.9 dev eth1``, ``leaf02: blackhole``, ``loop``);
    ``hops`` holds device indexes (into ``devices``) per hop, −1 after the end;
    ``edges`` holds the next hop taken at each hop (index into ``edge_labels``:
    (device, gateway, dev)), −1 where none.
    """

    devices: tuple[str, ...]
    final: np.ndarray  # int32 → terminals
    terminals: tuple[str, ...]
    outcome: np.ndarray  # uint8 PathOutcome
    hops: np.ndarray  # (n, H) int16 → devices
    edges: np.ndarray  # (n, H) int32 → edge_labels
    edge_labels: tuple[tuple[str, str | None, str | None], ...]
    placement: np.ndarray  # uint8 worst placement along the path
    reason: np.ndarray  # int16 → reasons (first doubt met on the path)
    reasons: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.final)

    def final_labels(self) -> np.ndarray:
        return np.asarray(self.terminals, dtype=object)[self.final]

    def final_device(self) -> np.ndarray:
        """Device name per flow where it was delivered, else None."""
        names = np.asarray(self.terminals, dtype=object)
        out = names[self.final]
        out[self.outcome != PathOutcome.DELIVERED] = None
        return out

    def path(self, i: int) -> list[str]:
        return [self.devices[d] for d in self.hops[i] if d >= 0]

    def placement_of(self, i: int):
        return PLACEMENTS[int(self.placement[i])]


class _Labels:
    def __init__(self) -> None:
        self.items: list = []
        self.ix: dict = {}

    def code(self, item) -> int:
        c = self.ix.get(item)
        if c is None:
            c = self.ix[item] = len(self.items)
            self.items.append(item)
        return c


def code_mask(size: int, codes: list[int]) -> np.ndarray:
    """Lookup table: ``code_mask(n, codes)[x]`` is True for x in codes, False for other x in 0..n−1 and for −1."""
    m = np.zeros(size + 1, dtype=bool)
    m[codes] = True
    return m


def any_hop(codes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row of ``codes`` ((n, H), −1 = none): does any hop's code have ``mask`` set (a ``code_mask``)?"""
    out = np.zeros(codes.shape[0], dtype=bool)
    hit = np.flatnonzero(mask[:-1])
    for j in range(codes.shape[1]):  # column by column: much faster than mask[codes].any(axis=1)
        col = codes[:, j]
        if len(hit) <= 4:  # a few codes: comparisons beat a table lookup
            for c in hit:
                out |= col == int(c)
        else:
            out |= np.take(mask, col, mode="wrap")  # −1 wraps to the last entry (False)
    return out


def address_map(snapshot: FabricSnapshot) -> dict[str, str]:
    """Interface address → device name (first device wins when an address is held twice)."""
    owners: dict[str, str] = {}
    for name in sorted(snapshot.devices):
        for itf in snapshot.devices[name].interfaces:
            for a in itf.addresses:
                owners.setdefault(a.local, name)
    return owners


def neighbour_names(hops: Iterable[tuple[str, str | None]], owners: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """``(device, gateway)`` → how to name that next hop: its neighbour's name (``owners``: ``address_map``);
    where the device has several next hops to that neighbour, ``name (IPv4)`` / ``name (IPv6)`` when that
    tells them apart, else ``name (gateway)``.  Gateways no device holds (and targets that are interface
    names) are left out: they stay as they are."""
    pairs = {(d, g): owners[g] for d, g in hops if g is not None and g in owners}
    fam = {g: "IPv6" if ":" in g else "IPv4" for _, g in pairs}
    per = Counter((d, n) for (d, _), n in pairs.items())
    per_family = Counter((d, n, fam[g]) for (d, g), n in pairs.items())
    out = {}
    for (d, g), n in pairs.items():
        if per[(d, n)] == 1:
            out[(d, g)] = n
        else:
            out[(d, g)] = f"{n} ({fam[g] if per_family[(d, n, fam[g])] == 1 else g})"
    return out


class Tracer:
    """Compiled devices of one snapshot plus a hash cache for one FlowArray; trace() many times."""

    def __init__(self, snapshot: FabricSnapshot, flows: FlowArray, cache: HashCache | None = None,
                 compiled: Mapping[int, CompiledDevice] | None = None):
        self.snapshot = snapshot
        self.flows = flows
        self.cache = cache or HashCache(flows)
        self.devices = tuple(sorted(snapshot.devices))
        self.dev_ix = {d: i for i, d in enumerate(self.devices)}
        self.owners = address_map(snapshot)
        self._compiled: dict[int, CompiledDevice] = dict(compiled or {})
        self._verified: set[int] = set()
        self._all = np.arange(len(flows))

    def compiled(self, state: DeviceState) -> CompiledDevice:
        """Compiled tables, shared between snapshots that hold the very same DeviceState object, and between
        states holding the very same records (``placement.compiled_for``)."""
        cd = self._compiled.get(id(state))
        if cd is not None and (cd.state is state or id(state) in self._verified):
            return cd
        cd = self._compiled[id(state)] = compiled_for(state)
        self._verified.add(id(state))  # the snapshot keeps ``state`` alive: its id stays its own
        return cd

    def ingress_codes(self, ingress: Ingress | None, rows: np.ndarray) -> np.ndarray:
        """Device code per row of an ingress given as one name, a name per flow, or (names, codes)."""
        if ingress is None:
            raise ValueError("no ingress device given")
        if isinstance(ingress, str):
            return np.full(len(rows), self.dev_ix.get(ingress, -1), dtype=np.int32)
        uniq, inv = self.cache.factorize(ingress)
        codes = np.array([self.dev_ix.get(str(u), -1) for u in uniq] or [-1], dtype=np.int32)
        return codes[inv if len(rows) == len(inv) and rows is self._all else inv[rows]]

    def trace(self, ingress: Ingress, rows: np.ndarray | None = None, *,
              reuse: PathResult | None = None, changed: frozenset[str] | set[str] = frozenset()) -> PathResult:
        """Follow ``rows`` of the flows (all when None) from ``ingress`` (a device name, or one name per flow).

        ``reuse``: the paths of all flows in an earlier snapshot with the same address ownership, whose
        devices differ from this one only in ``changed``: a flow that reaches the device it reached at the
        same hop before, with no changed device on the rest of its old path, keeps that rest (its
        placement is then the worse of the new prefix and the whole old path).
        """
        whole = rows is None  # rows[i] == i: no gathers through rows
        rows = self._all if rows is None else np.asarray(rows)
        n = len(rows)
        old = _Reuse(self, reuse, rows, changed) if reuse is not None else None
        terminals, edges, reasons = _Labels(), _Labels(), _Labels()
        reasons.code("")
        cur = self.ingress_codes(ingress, rows)
        final = np.full(n, -1, dtype=np.int32)
        outcome = np.full(n, PathOutcome.LOOP, dtype=np.uint8)
        placement = np.zeros(n, dtype=np.uint8)
        reason = np.zeros(n, dtype=np.int16)
        hop_cols: list[np.ndarray] = []
        edge_cols: list[np.ndarray] = []
        bad = cur < 0
        if bad.any():
            final[bad] = terminals.code("unknown ingress")
            outcome[bad] = PathOutcome.NO_DEVICE
            cur[bad] = -1
        for _ in range(MAX_HOPS):
            active = np.flatnonzero(cur >= 0)
            if not len(active):
                break
            hop_col = cur.astype(np.int16)  # −1 where already ended
            edge_col = np.full(n, -1, dtype=np.int32)
            nxt = np.full(n, -1, dtype=np.int32)
            groups = _by_device(active, cur if len(active) == n else cur[active], len(self.devices))
            for (d, idx), placed in zip(groups, self._place_groups(groups, rows, whole)):
                name = self.devices[d]
                pl = placed.placement
                if pl.any():
                    worse = pl > placement[idx]
                    if worse.any():
                        rcodes = np.array([reasons.code(r) for r in placed.reasons], dtype=np.int16)
                        reason[idx[worse]] = rcodes[placed.reason[worse]]
                        placement[idx[worse]] = pl[worse]
                # per choice: the edge taken, the next device, or how the flow ends here
                k = len(placed.choices)
                edge_tab = np.full(k, -1, dtype=np.int32)
                next_tab = np.full(k, -1, dtype=np.int32)
                end_tab = np.full(k, -1, dtype=np.int32)
                out_tab = np.zeros(k, dtype=np.uint8)
                ch = placed.choice
                used = np.flatnonzero(np.bincount(ch, minlength=k))
                direct: list[int] = []
                for ci in used:
                    c = placed.choices[ci]
                    if c.outcome == Outcome.FORWARD:
                        edge_tab[ci] = edges.code((name, c.gateway, c.dev))
                        owner = self.owners.get(c.gateway) if c.gateway else None
                        if owner is not None:
                            next_tab[ci] = self.dev_ix[owner]
                        elif c.gateway is None:
                            direct.append(int(ci))
                        else:
                            end_tab[ci], out_tab[ci] = terminals.code(f"{name} {c.label}"), PathOutcome.EXITED
                    elif c.outcome == Outcome.LOCAL:
                        end_tab[ci], out_tab[ci] = terminals.code(name), PathOutcome.DELIVERED
                    elif c.outcome == Outcome.DROP:
                        end_tab[ci], out_tab[ci] = terminals.code(f"{name}: {c.label}"), PathOutcome.DROPPED
                    else:
                        end_tab[ci], out_tab[ci] = terminals.code(f"{name}: no route"), PathOutcome.NO_ROUTE
                one = int(used[0]) if len(used) == 1 else None  # one choice for all: scalars, no gathers
                if (edge_tab[used] >= 0).any():
                    edge_col[idx] = edge_tab[one] if one is not None else np.take(edge_tab, ch)
                if (next_tab[used] >= 0).any():
                    nxt[idx] = next_tab[one] if one is not None else np.take(next_tab, ch)
                ending = end_tab[used] >= 0
                if ending.all():
                    final[idx] = end_tab[one] if one is not None else np.take(end_tab, ch)
                    outcome[idx] = out_tab[one] if one is not None else np.take(out_tab, ch)
                elif ending.any():
                    ends = end_tab[ch] >= 0
                    final[idx[ends]] = end_tab[ch[ends]]
                    outcome[idx[ends]] = out_tab[ch[ends]]
                for ci in direct:  # connected route without gateway: the device holding the dst
                    sub = idx[ch == ci]
                    owner = self._direct_owner(rows[sub])
                    if owner is None:
                        final[sub] = terminals.code(f"{name} {placed.choices[ci].label}")
                        outcome[sub] = PathOutcome.EXITED
                    else:
                        nxt[sub] = self.dev_ix[owner]
            hop_cols.append(hop_col)
            edge_cols.append(edge_col)
            if old is not None:
                old.take_over(len(hop_cols), nxt)
            cur = nxt
        looping = cur >= 0
        if looping.any():
            final[looping] = terminals.code("loop")
            outcome[looping] = PathOutcome.LOOP
        if old is not None:
            old.finish(hop_cols, edge_cols, final, outcome, placement, reason, terminals, edges, reasons)
        hops = np.stack(hop_cols, axis=1) if hop_cols else np.full((n, 0), -1, dtype=np.int16)
        edge_arr = np.stack(edge_cols, axis=1) if edge_cols else np.full((n, 0), -1, dtype=np.int32)
        return PathResult(self.devices, final, tuple(terminals.items), outcome, hops, edge_arr,
                          tuple(edges.items), placement, reason, tuple(reasons.items))

    def _place_groups(self, groups: list[tuple[int, np.ndarray]], rows: np.ndarray, whole: bool) -> Iterator[Placed]:
        """place() for each (device, positions) group, in order.  Large hops place every group at once on
        worker threads, so one device's hashing overlaps the bookkeeping of the devices before it (the
        results, and the order in which labels are numbered, stay the same)."""
        cds = [self.compiled(self.snapshot.devices[self.devices[d]]) for d, _ in groups]
        args = [(cd, idx if whole else rows[idx]) for cd, (_, idx) in zip(cds, groups)]
        serial = (len(args) < 2 or hashing.WORKERS < 2 or sum(len(r) for _, r in args) < PARALLEL_MIN_ROWS
                  or len({id(cd) for cd in cds}) < len(cds))  # one CompiledDevice in two groups: serial
        if serial:
            return (place(cd, self.flows, r, cache=self.cache) for cd, r in args)
        futures = [place_pool().submit(place, cd, self.flows, r, cache=self.cache) for cd, r in args]
        return (f.result() for f in futures)

    def _direct_owner(self, rows_ix: np.ndarray) -> str | None:
        """A directly connected route (no gateway): the device holding the flows' dst, if one dst and one owner."""
        import ipaddress

        dst = np.asarray(self.flows.dst)[np.asarray(rows_ix)]
        if not len(dst) or not (dst == dst[0]).all():
            return None
        f = self.flows.flow(int(rows_ix[0]))
        return self.owners.get(str(ipaddress.ip_address(f.dst)))


def _by_device(active: np.ndarray, at: np.ndarray, ndev: int) -> list[tuple[int, np.ndarray]]:
    """(device, positions) for the active flows (ascending positions) grouped by device code ``at``."""
    counts = np.bincount(at, minlength=ndev)
    present = np.flatnonzero(counts)
    if len(present) == 1:
        return [(int(present[0]), active)]
    if len(present) <= 8:  # a few devices: one comparison pass each beats a sort
        small = at.astype(np.int8) if ndev <= 127 else at
        if active[-1] == len(active) - 1:  # active is ascending: it is 0..m−1, so positions are the rows
            return [(int(d), np.flatnonzero(small == int(d))) for d in present]
        return [(int(d), active[np.flatnonzero(small == int(d))]) for d in present]
    by_dev = active[np.argsort(at.astype(np.int16), kind="stable")]
    bounds = np.r_[0, np.cumsum(counts[present])]
    return [(int(d), by_dev[bounds[j]:bounds[j + 1]]) for j, d in enumerate(present)]


class _Reuse:
    """Suffixes of earlier paths that a re-trace can keep (see Tracer.trace)."""

    def __init__(self, tracer: Tracer, old: PathResult, rows: np.ndarray, changed: frozenset[str] | set[str]):
        self.old = old
        self.full = len(rows) == len(old) and (rows is tracer._all or bool((rows == np.arange(len(rows))).all()))
        self.rows = rows
        self.dmap = np.array([tracer.dev_ix.get(d, -1) for d in old.devices] + [-1], dtype=np.int32)
        self.same_devices = old.devices == tracer.devices  # dmap is the identity
        self.width = old.hops.shape[1]
        tab = code_mask(len(old.devices), [i for i, d in enumerate(old.devices) if d in changed])
        self.clean: list[np.ndarray] = [np.empty(0, bool)] * self.width
        dirty = np.zeros(len(rows), dtype=bool)
        for j in reversed(range(self.width)):  # clean[j]: no changed device from hop j on
            dirty |= tab[self._col(j)]
            self.clean[j] = ~dirty
        self.at = np.full(len(rows), -1, dtype=np.int16)  # hop from which the old path is kept

    def _col(self, j: int, sel: np.ndarray | None = None) -> np.ndarray:
        """Old device codes at hop j for the rows (or the ``sel`` positions of them)."""
        col = self.old.hops[:, j]
        if sel is None:
            return col if self.full else col[self.rows]
        return col[sel] if self.full else col[self.rows[sel]]

    def take_over(self, hop: int, nxt: np.ndarray) -> None:
        """Flows whose next device is the old one at ``hop`` with a clean rest stop here (nxt → −1)."""
        if hop >= self.width:
            return
        col = self._col(hop)
        same = (col == nxt) if self.same_devices else (self.dmap[col] == nxt)
        same &= self.clean[hop]
        same &= nxt >= 0
        keep = np.flatnonzero(same)
        self.at[keep] = hop
        nxt[keep] = -1

    def finish(self, hop_cols: list[np.ndarray], edge_cols: list[np.ndarray], final: np.ndarray,
               outcome: np.ndarray, placement: np.ndarray, reason: np.ndarray, terminals: _Labels, edges: _Labels,
               reasons: _Labels) -> None:
        """Copy the kept rests of the old paths into the per-hop columns (widened to the old width)."""
        kept = np.flatnonzero(self.at >= 0)
        if not len(kept):
            return
        old, r = self.old, (kept if self.full else self.rows[kept])
        tmap = np.array([terminals.code(t) for t in old.terminals], dtype=np.int32)
        emap = np.array([edges.code(e) for e in old.edge_labels] + [-1], dtype=np.int32)
        rmap = np.array([reasons.code(x) for x in old.reasons], dtype=np.int16)
        final[kept] = np.take(tmap, old.final[r])
        outcome[kept] = old.outcome[r]
        old_pl = old.placement[r]
        if old_pl.any():
            worse = old_pl > placement[kept]
            placement[kept[worse]] = old_pl[worse]
            reason[kept[worse]] = rmap[old.reason[r[worse]]]
        n = len(self.at)
        while len(hop_cols) < self.width:
            hop_cols.append(np.full(n, -1, dtype=np.int16))
            edge_cols.append(np.full(n, -1, dtype=np.int32))
        at = self.at[kept]
        last = int(at.max())
        for j in range(int(at.min()), self.width):  # column j: the flows kept from a hop ≤ j
            k, rk = (kept, r) if j >= last else (kept[at <= j], r[at <= j])
            col = old.hops[:, j][rk]  # 1-D gathers and np.take (−1 wraps to the tables' last entry, −1)
            hop_cols[j][k] = col if self.same_devices else np.take(self.dmap, col, mode="wrap")
            edge_cols[j][k] = np.take(emap, old.edges[:, j][rk], mode="wrap")


def trace(snapshot: FabricSnapshot, flows: FlowArray, ingress: Ingress, *,
          cache: HashCache | None = None) -> PathResult:
    """Follow every flow from ``ingress`` (one device name, or a name/index per flow) to where it ends."""
    return Tracer(snapshot, flows, cache).trace(ingress)
