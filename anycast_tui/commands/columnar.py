"""Rows of text without a Python object per row: each row is the concatenation of *fragments*, each fragment
a pick from a small table of byte strings by a per-row code (``Frag``).  Rows are built a chunk at a time in
an (rows, width) byte matrix, every fragment in its own NUL-padded slot, and the NULs dropped (no output
fragment holds a NUL: JSON escapes it, the table and CSV never carry one).

:func:`addr_frags` writes addresses: IPv4 from a table of the 256 octets, IPv6 once per distinct address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from anycast_tui.parse.flowcols import unique_codes

CHUNK = 4096  # rows per matrix: ~1 MB at 250 bytes a row, in cache (faster than larger chunks)


@dataclass(frozen=True)
class Frag:
    """``table``: (k, w) uint8, each entry NUL padded; ``codes``: int per row (None: entry 0 on every row)."""

    table: np.ndarray
    codes: np.ndarray | None
    lengths: np.ndarray  # bytes of each table entry

    def length(self, n: int) -> np.ndarray:
        return np.full(n, int(self.lengths[0])) if self.codes is None else self.lengths[self.codes]


def frag(entries: Sequence[bytes | str], codes: np.ndarray | None = None) -> Frag:
    """A fragment from its table entries (str is UTF-8 encoded) and per-row codes into them."""
    raw = [x.encode("utf-8") if isinstance(x, str) else x for x in entries]
    lengths = np.array([len(x) for x in raw], np.int64)
    w = max(int(lengths.max(initial=0)), 1)
    table = np.frombuffer(b"".join(x.ljust(w, b"\0") for x in raw), np.uint8).reshape(len(raw), w)
    return Frag(table, None if codes is None else np.asarray(codes), lengths)


def const(text: bytes | str) -> Frag:
    return frag([text])


def lengths(frags: Sequence[Frag], n: int) -> np.ndarray:
    """Bytes of each row."""
    out = np.zeros(n, np.int64)
    for f in frags:
        out += f.length(n)
    return out


def chunks(frags: Sequence[Frag], n: int, size: int = CHUNK) -> Iterator[np.ndarray]:
    """The rows' bytes (uint8), ``size`` rows at a time, in order."""
    widths = [f.table.shape[1] for f in frags]
    total = sum(widths)
    for lo in range(0, n, size):
        hi = min(n, lo + size)
        m = np.empty((hi - lo, total), np.uint8)
        col = 0
        for f, w in zip(frags, widths):
            m[:, col:col + w] = f.table[0] if f.codes is None else f.table[f.codes[lo:hi]]
            col += w
        flat = m.reshape(-1)
        yield flat[flat != 0]


def strings(frags: Sequence[Frag], n: int) -> tuple[np.ndarray, np.ndarray]:
    """All rows at once as (bytes, int64 offsets of n + 1): an Arrow string column's buffers."""
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths(frags, n), out=offsets[1:])
    data = np.concatenate(list(chunks(frags, n))) if n else np.zeros(0, np.uint8)
    return data, offsets


def number_frag(codes: np.ndarray, before: str = "", after: str = "", count: int = 65536) -> Frag:
    """``before`` + the decimal of each row's code (0 .. count-1) + ``after``, the table built in bulk (the
    digits sit NUL padded between the two: NULs are dropped with the padding)."""
    nums = np.arange(count)
    nd = np.ones(count, np.int64)
    for p in range(1, len(str(count - 1))):
        nd += nums >= 10 ** p
    width = int(nd.max())
    digits = np.zeros((count, width), np.uint8)
    for j in range(width):
        digits[:, j] = np.where(j < nd, (nums // 10 ** np.maximum(nd - 1 - j, 0)) % 10 + 48, 0)
    b, a = before.encode(), after.encode()
    table = np.hstack([np.broadcast_to(np.frombuffer(b, np.uint8), (count, len(b))), digits,
                       np.broadcast_to(np.frombuffer(a, np.uint8), (count, len(a)))])
    return Frag(np.ascontiguousarray(table), np.asarray(codes), nd + len(b) + len(a))


def table_frag(data: np.ndarray, offsets: np.ndarray, codes: np.ndarray) -> Frag:
    """A fragment whose entries are the strings of (bytes, offsets), e.g. :func:`strings`'s."""
    lens = np.diff(offsets)
    k, w = len(lens), max(int(lens.max(initial=0)), 1)
    table = np.zeros((k, w), np.uint8)
    rows = np.repeat(np.arange(k), lens)
    table[rows, np.arange(len(rows)) - np.repeat(offsets[:-1] - offsets[0], lens)] = data[offsets[0]:offsets[-1]]
    return Frag(table, codes, lens)


def addr_frag(family: np.ndarray, packed: np.ndarray) -> Frag:
    """One fragment writing each row's address (as ``str(ipaddress.ip_address(...))`` does), formatted once
    per distinct address: the 16 bytes and the family hashed, distinct hashes found, every row then checked
    against its representative (a collision, never seen, falls back to sorting the addresses)."""
    n = len(family)
    w = np.ascontiguousarray(packed, np.uint8).view(np.uint64).reshape(n, 2)
    fam = np.asarray(family, np.uint64)
    h = (w[:, 0] * np.uint64(0x9E3779B97F4A7C15)) ^ (w[:, 1] * np.uint64(0xBF58476D1CE4E5B9)) ^ fam
    h ^= h >> np.uint64(29)
    first, codes = unique_codes(h)
    rep = first[codes]
    if not ((w[rep] == w).all() and (fam[rep] == fam).all()):
        _, first, codes = np.unique(np.rec.fromarrays([w[:, 0], w[:, 1], fam]), return_index=True,
                                    return_inverse=True)
        codes = codes.reshape(n)
    data, offsets = strings(addr_frags(family[first], packed[first]), len(first))
    return table_frag(data, offsets, codes)


def addr_frags(family: np.ndarray, packed: np.ndarray, before: bytes = b"", after: bytes = b"") -> list[Frag]:
    """Fragments writing each row's address as ``str(ipaddress.ip_address(...))`` does, between ``before``
    and ``after``: IPv4 as four picks from the 256 octets, IPv6 once per distinct address."""
    n = len(family)
    v6 = family == 6
    octets = [str(i).encode() for i in range(256)] + [b""]
    out = [frag([before + o for o in octets[:256]] + [before], np.where(v6, 256, packed[:, 0].astype(np.int64)))]
    for j in (1, 2, 3):
        out.append(frag([b"." + o for o in octets[:256]] + [b""], np.where(v6, 256, packed[:, j].astype(np.int64))))
    codes = np.zeros(n, np.int64)
    texts: list[bytes] = [b""]
    rows = np.flatnonzero(v6)
    if rows.size:
        keys = np.ascontiguousarray(packed[rows]).view("V16").reshape(-1)
        uniq, inv = np.unique(keys, return_inverse=True)
        texts += [str(ipaddress.IPv6Address(bytes(u))).encode() for u in uniq]
        codes[rows] = inv.reshape(-1) + 1
    out.append(frag([t + after for t in texts], codes))
    return out
