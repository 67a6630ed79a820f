"""The fabric's own sampled traffic as a flow source: a rolling window of the flows to the anycast prefixes that
the devices' sFlow / IPFIX exports reported.

Each flow (its 5-tuple, and the IPv6 flow label) keeps the traffic it is estimated to carry — sampled packets
and bytes times the sampling rate —, when it was first and last seen, and where it entered the fabric: the
sampling device closest to the clients (client-facing router, then spine, then leaf, then server: ``RANK``),
with the interface it came in on.  A sampled packet's device also says which way it went: that is checked
against the model in ``model/placement_check.py``, not here.

Bounded: flows not seen for ``window_s`` are dropped; beyond ``max_flows`` the least recently inserted ones
are, and counted (``evicted``), never silently.  Thread-safe: the collector adds on its thread while the
incident worker reads.  Pure otherwise: times come in as arguments.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.samples import FlowSample
from anycast_tui.model.types import Role

WINDOW_S = 300.0
MAX_FLOWS = 500_000
RANK = {Role.CLIENT: 0, Role.BORDER: 0, Role.SPINE: 1, Role.LEAF: 2, Role.OTHER: 2, Role.SERVER: 3}

Key = tuple[int, int, bytes, bytes, int, int, int]  # family, proto, src, dst, sport, dport, flowlabel


@dataclass(frozen=True, slots=True)
class SampledFlowSet:
    """The sampled flows to one anycast prefix at one moment, as columns."""

    flows: FlowArray
    entry_names: tuple[str, ...]  # devices flows entered at
    entry: np.ndarray  # int: index into entry_names per flow
    packets: np.ndarray  # float64: estimated packets (sampled × rate) over the window
    octets: np.ndarray  # float64: estimated bytes
    first_seen: np.ndarray  # float64 UNIX seconds
    last_seen: np.ndarray
    rates: tuple[int, ...]  # the sampling rates seen (1 in N), ascending
    window_s: float

    def __len__(self) -> int:
        return len(self.flows)

    @property
    def rate_text(self) -> str:
        """``1:400`` (``1:1`` = every packet; ``1:100–1:400`` when devices differ; ``1:?`` when unknown)."""
        known = [r for r in self.rates if r > 0]
        if not known:
            return "1:?"
        return f"1:{known[0]}" if len(known) == 1 else f"1:{known[0]}–1:{known[-1]}"

    def pps(self, mask: np.ndarray | None = None) -> float:
        """Estimated packets per second of the (masked) flows over the window."""
        p = self.packets if mask is None else self.packets[mask]
        return float(p.sum()) / self.window_s if self.window_s > 0 else 0.0

    def select(self, mask: np.ndarray) -> "SampledFlowSet":
        return SampledFlowSet(self.flows.take(mask), self.entry_names, self.entry[mask], self.packets[mask], self.octets[mask],
                              self.first_seen[mask], self.last_seen[mask], self.rates, self.window_s)


def flow_array(samples: Sequence[FlowSample]) -> FlowArray:
    """The samples' 5-tuples (and IPv6 flow labels) as one ``FlowArray`` row each, in order; addresses are
    joined per family and read in bulk, not sample by sample."""
    n = len(samples)
    fam = np.fromiter((s.family for s in samples), np.uint8, n)
    src = np.zeros((n, 16), np.uint8)
    dst = np.zeros((n, 16), np.uint8)
    for family, width in ((4, 4), (6, 16)):
        rows = np.flatnonzero(fam == family)
        if len(rows):
            src[rows, :width] = np.frombuffer(b"".join(samples[i].src for i in rows), np.uint8).reshape(-1, width)
            dst[rows, :width] = np.frombuffer(b"".join(samples[i].dst for i in rows), np.uint8).reshape(-1, width)
    label = np.fromiter((s.flowlabel & 0xFFFFF if s.family == 6 else 0 for s in samples), np.uint32, n)
    return FlowArray(fam, np.fromiter((s.proto for s in samples), np.uint8, n), src, dst,
                     np.fromiter((s.sport for s in samples), np.uint16, n),
                     np.fromiter((s.dport for s in samples), np.uint16, n), label)


class SampledWindow:
    """The rolling window (see the module doc)."""

    def __init__(self, prefixes: Iterable[str], *, window_s: float = WINDOW_S, max_flows: int = MAX_FLOWS) -> None:
        if window_s <= 0 or max_flows <= 0:
            raise ValueError("window_s and max_flows must be positive")
        self.window_s = float(window_s)
        self.max_flows = int(max_flows)
        self.networks = tuple(ipaddress.ip_network(p, strict=False) for p in prefixes)
        self._exact = {n.network_address.packed for n in self.networks if n.prefixlen == n.max_prefixlen}
        self._wide = [(n.version, int(n.network_address), int(n.netmask)) for n in self.networks
                      if n.prefixlen != n.max_prefixlen]
        # key -> [first, last, packets, octets, rate, rank, entry device, in_if, export kind counted]
        self._flows: dict[Key, list] = {}
        self._lock = threading.Lock()
        self.samples = 0  # samples added (to the anycast prefixes)
        self.ignored = 0  # samples to other destinations
        self.evicted = 0  # flows dropped over max_flows before their window ended
        self.expired = 0

    def wanted(self, dst: bytes) -> bool:
        """Is ``dst`` (packed) inside an anycast prefix?"""
        if dst in self._exact:
            return True
        if self._wide:
            v, a = (4 if len(dst) == 4 else 6), int.from_bytes(dst, "big")
            return any(v == nv and a & mask == net for nv, net, mask in self._wide)
        return False

    def add(self, device: str, role: Role, samples: Iterable[FlowSample]) -> int:
        """Samples one device exported; returns how many were to the anycast prefixes."""
        rank = RANK.get(role, 2)
        n = ignored = 0
        exact, wide = self._exact, self._wide
        with self._lock:
            flows = self._flows
            for s in samples:
                dst = s.dst
                if dst not in exact and not (wide and self.wanted(dst)):
                    ignored += 1
                    continue
                n += 1
                key = (s.family, s.proto, s.src, dst, s.sport, s.dport, s.flowlabel)
                rate = s.sampling_rate or 1
                at = s.received
                rec = flows.get(key)
                if rec is None:
                    flows[key] = [at, at, s.packets * rate, s.octets * rate, s.sampling_rate, rank, device,
                                  s.input_if, s.kind]
                    continue
                if at > rec[1]:
                    rec[1] = at
                elif at < rec[0]:
                    rec[0] = at
                if rank < rec[5]:  # seen closer to the clients: that is where it entered; count from there
                    rec[2:9] = [s.packets * rate, s.octets * rate, s.sampling_rate, rank, device, s.input_if, s.kind]
                elif rank == rec[5] and device == rec[6] and s.kind is rec[8]:
                    # count each packet once: on its entry device only, and from one export of it (a device
                    # exporting both sFlow and IPFIX reports the same packets twice)
                    rec[2] += s.packets * rate
                    rec[3] += s.octets * rate
                    rec[4] = s.sampling_rate
            self.samples += n
            self.ignored += ignored
            over = len(flows) - self.max_flows
            if over > 0:
                for key in list(flows)[:over]:
                    del flows[key]
                self.evicted += over
        return n

    def expire(self, now: float) -> int:
        """Drop flows not seen for the window; how many."""
        cut = now - self.window_s
        with self._lock:
            old = [k for k, r in self._flows.items() if r[1] < cut]
            for k in old:
                del self._flows[k]
            self.expired += len(old)
        return len(old)

    def __len__(self) -> int:
        return len(self._flows)

    def flow_set(self, prefix: str, *, now: float, seen_by: float | None = None) -> SampledFlowSet | None:
        """Flows to ``prefix`` seen within the window before ``now`` (and first seen by ``seen_by``, when given:
        the flows alive before an incident's onset); None when there is none."""
        net = ipaddress.ip_network(prefix, strict=False)
        cut = now - self.window_s
        first_by = float("inf") if seen_by is None else seen_by
        width = 4 if net.version == 4 else 16
        packed = net.network_address.packed
        base, mask = int(net.network_address), int(net.netmask)

        def inside(d: bytes) -> bool:
            return len(d) == width and int.from_bytes(d, "big") & mask == base
        with self._lock:
            if net.prefixlen == net.max_prefixlen:
                items = [(k, r) for k, r in self._flows.items()
                         if k[3] == packed and cut <= r[1] and r[0] <= first_by]
            else:
                items = [(k, r) for k, r in self._flows.items()
                         if cut <= r[1] and r[0] <= first_by and inside(k[3])]
            if not items:
                return None
            keys, recs = zip(*items)
            vals = list(zip(*recs))  # first, last, packets, octets, rate, rank, device, in_if, kind: read under the
            # lock (the collector goes on updating the records)
        n = len(keys)
        cols = list(zip(*keys))  # family, proto, src, dst, sport, dport, flowlabel
        src = np.zeros((n, 16), np.uint8)
        dst = np.zeros((n, 16), np.uint8)
        src[:, :width] = np.frombuffer(b"".join(cols[2]), np.uint8).reshape(n, width)
        dst[:, :width] = np.frombuffer(b"".join(cols[3]), np.uint8).reshape(n, width)
        names, entry = np.unique(np.array(vals[6], dtype=object), return_inverse=True)
        flows = FlowArray(np.full(n, net.version, np.uint8), np.array(cols[1], np.uint8), src, dst,
                          np.array(cols[4], np.uint16), np.array(cols[5], np.uint16),
                          np.array(cols[6], np.uint32) & 0xFFFFF)
        return SampledFlowSet(flows, tuple(str(x) for x in names), entry.astype(np.int64),
                              np.array(vals[2], np.float64), np.array(vals[3], np.float64),
                              np.array(vals[0], np.float64), np.array(vals[1], np.float64),
                              tuple(sorted(set(vals[4]))), self.window_s)
