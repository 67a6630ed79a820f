"""Flows as columns: ``FlowArray``, the container every layer hands flows in (parsers build it, the hash,
path and impact code read it column by column)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from anycast_tui.model.types import Flow


@dataclass
class FlowArray:
    """n flows as columns: addresses are (n, 16) big-endian bytes, IPv4 in the first 4."""

    family: np.ndarray  # uint8: 4 or 6
    proto: np.ndarray  # uint8
    src: np.ndarray  # (n, 16) uint8
    dst: np.ndarray  # (n, 16) uint8
    sport: np.ndarray  # uint16
    dport: np.ndarray  # uint16
    flowlabel: np.ndarray  # uint32 (20 bits used)

    def __len__(self) -> int:
        return int(self.family.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(getattr(self, c).nbytes) for c in
                   ("family", "proto", "src", "dst", "sport", "dport", "flowlabel"))

    @classmethod
    def from_columns(cls, family: ArrayLike, proto: ArrayLike, src: ArrayLike, dst: ArrayLike, sport: ArrayLike,
                     dport: ArrayLike, flowlabel: ArrayLike | None = None) -> "FlowArray":
        """Build from array-likes; ``src``/``dst`` may be (n,16) bytes or (n,4) bytes (IPv4)."""
        fam = np.ascontiguousarray(np.asarray(family, dtype=np.uint8).reshape(-1))
        n = fam.shape[0]

        def addr(a: ArrayLike) -> np.ndarray:
            arr = np.asarray(a, dtype=np.uint8)
            if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] not in (4, 16):
                raise ValueError(f"addresses must be (n, 4) or (n, 16) bytes, got {arr.shape}")
            if arr.shape[1] == 4:
                out = np.zeros((n, 16), dtype=np.uint8)
                out[:, :4] = arr
                return out
            return np.ascontiguousarray(arr)

        def col(a: ArrayLike, dt: type) -> np.ndarray:
            arr = np.asarray(a)
            if arr.ndim == 0:
                arr = np.full(n, arr)
            arr = arr.astype(dt, copy=False).reshape(-1)
            if arr.shape[0] != n:
                raise ValueError("columns must have the same length")
            return np.ascontiguousarray(arr)

        fl = col(0 if flowlabel is None else flowlabel, np.uint32) & np.uint32(0xFFFFF)
        return cls(fam, col(proto, np.uint8), addr(src), addr(dst), col(sport, np.uint16),
                   col(dport, np.uint16), fl)

    @classmethod
    def from_flows(cls, flows: Sequence[Flow]) -> "FlowArray":
        n = len(flows)
        family = np.empty(n, np.uint8)
        src = np.zeros((n, 16), np.uint8)
        dst = np.zeros((n, 16), np.uint8)
        for i, f in enumerate(flows):
            s = ipaddress.ip_address(f.src)
            d = ipaddress.ip_address(f.dst)
            if s.version != d.version:
                raise ValueError(f"flow {i}: source and destination families differ")
            family[i] = s.version
            src[i, : len(s.packed)] = np.frombuffer(s.packed, np.uint8)
            dst[i, : len(d.packed)] = np.frombuffer(d.packed, np.uint8)
        return cls(
            family,
            np.fromiter((f.proto for f in flows), np.uint8, n),
            src,
            dst,
            np.fromiter((f.sport for f in flows), np.uint16, n),
            np.fromiter((f.dport for f in flows), np.uint16, n),
            np.fromiter((f.flowlabel & 0xFFFFF for f in flows), np.uint32, n),
        )

    @classmethod
    def random(cls, n: int, *, rng: np.random.Generator, family: int = 4,
               protos: Sequence[int] = (6, 17), src_net: str | None = None,
               dst: Sequence[str] | str | None = None, flowlabels: bool = False) -> "FlowArray":
        """n random flows: sources in ``src_net``, destinations drawn from ``dst``."""
        if src_net is None:
            src_net = "203.0.113.0/24" if family == 4 else "2001:db8:cafe::/64"
        if dst is None:
            dst = ["192.0.2.53"] if family == 4 else ["2001:db8:53::53"]
        if isinstance(dst, str):
            dst = [dst]
        net = ipaddress.ip_network(src_net)
        if net.version != family:
            raise ValueError("src_net family differs from family")
        width = 4 if family == 4 else 16
        base = np.frombuffer(net.network_address.packed, np.uint8)
        rnd = rng.integers(0, 256, size=(n, width), dtype=np.uint8)
        # keep the network bits, randomise the host bits
        mask = np.frombuffer(int(net.hostmask).to_bytes(width, "big"), np.uint8)
        src = (base & ~mask) | (rnd & mask)
        dsts = np.stack([np.frombuffer(ipaddress.ip_address(d).packed, np.uint8) for d in dst])
        dsel = dsts[rng.integers(0, len(dsts), size=n)]
        return cls.from_columns(
            np.full(n, family, np.uint8),
            np.asarray(protos, np.uint8)[rng.integers(0, len(protos), size=n)],
            src, dsel,
            rng.integers(1024, 65536, size=n, dtype=np.uint32).astype(np.uint16),
            rng.integers(1, 65536, size=n, dtype=np.uint32).astype(np.uint16),
            rng.integers(0, 1 << 20, size=n, dtype=np.uint32) if flowlabels else None,
        )

    def take(self, idx: ArrayLike) -> "FlowArray":
        i = np.asarray(idx)
        return FlowArray(self.family[i], self.proto[i], self.src[i], self.dst[i], self.sport[i],
                         self.dport[i], self.flowlabel[i])

    def flow(self, i: int) -> Flow:
        fam = int(self.family[i])
        width = 4 if fam == 4 else 16
        s = str(ipaddress.ip_address(bytes(self.src[i, :width])))
        d = str(ipaddress.ip_address(bytes(self.dst[i, :width])))
        return Flow(proto=int(self.proto[i]), src=s, sport=int(self.sport[i]), dst=d,
                    dport=int(self.dport[i]), flowlabel=int(self.flowlabel[i]))

    def flows(self) -> list[Flow]:
        return [self.flow(i) for i in range(len(self))]
