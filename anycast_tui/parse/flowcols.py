"""Vectorised parsers of the flows columns, shared by the CSV and the Parquet readers.

A column is text cells given as byte spans of one buffer: ``buf`` (uint8, carrying :data:`PAD` zero bytes
past its last span: :func:`padded`), ``s`` and ``e`` (int64 start and end offsets per row).  Each parser
returns its values and a ``bad`` mask: rows it could not take on the fast path (not only invalid ones: a cell
padded with a Unicode space is valid but goes the slow way).  The readers give every ``bad`` row to the
per-row reference code (``flowcsv.row_flow``), which either raises the exact one-line reason or accepts the
row: the fast path never decides an error on its own.

No per-row Python: distinct values are found by hashing each cell 8 bytes at a time and ``np.unique`` on the
hashes (every cell then compared whole with its representative), and only distinct values are looked at in
Python (protocols, IPv6 addresses, labels); IPv4 dotted quads and ports are parsed in bulk.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from anycast_tui.model.flows import proto_number

PAD = 8  # zero bytes a buffer carries past its last span (spans are read 8 bytes at a time)
MAX_LABEL = 256  # bytes of an ingress/group cell taken on the fast path (longer: the row goes the slow way)
MAX_ADDR = 64  # bytes of an address cell taken on the fast path (IPv6 text is at most 45, plus a scope)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


def padded(data: bytes | memoryview | np.ndarray) -> np.ndarray:
    """``data`` as uint8 with PAD zero bytes after it (a copy)."""
    raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    out = np.zeros(len(raw) + PAD, np.uint8)
    out[: len(raw)] = raw
    return out


def trim(buf: np.ndarray, s: np.ndarray, e: np.ndarray, *, lead_only: bool = False
         ) -> tuple[np.ndarray, np.ndarray]:
    """Spans without leading/trailing spaces and tabs (what ``str.strip`` removes in an ASCII cell; other
    whitespace makes a cell bad somewhere and so goes to the reference code).  One pass per padding byte,
    over the rows still padded."""
    if len(s) == 0:
        return s, e
    first, last = buf[s], buf[np.maximum(e - 1, 0)]
    padded_ = (first == 32) | (first == 9)
    if not lead_only:
        padded_ |= (last == 32) | (last == 9)
    todo = np.flatnonzero(padded_ & (s < e))
    if todo.size == 0:
        return s, e
    s, e = s.copy(), e.copy()
    for lead in (True,) if lead_only else (True, False):
        active = todo
        while active.size:
            b = buf[s[active] if lead else np.maximum(e[active] - 1, 0)]
            active = active[(s[active] < e[active]) & ((b == 32) | (b == 9))]
            if lead:
                s[active] += 1
            else:
                e[active] -= 1
    return s, e


def _words(buf: np.ndarray, s: np.ndarray, e: np.ndarray, width: int) -> list[np.ndarray]:
    """Each span as ceil(width / 8) little-endian uint64 words, bytes past its end zeroed: unaligned loads
    through a one-byte-stride view of ``buf``, no per-byte passes."""
    last = len(buf) - PAD
    u64 = np.ndarray((last + 1,), dtype="<u8", buffer=buf, offset=0, strides=(1,))
    out = []
    for k in range(0, max(width, 1), 8):
        p = s + k
        keep = np.clip(e - p, 0, 8).astype(np.uint64)
        mask = np.where(keep >= 8, _ALL, (np.uint64(1) << (keep * np.uint64(8))) - np.uint64(1))
        out.append(u64[np.clip(p, 0, last)] & mask)
    return out


def unique_codes(keys: np.ndarray, step: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row per distinct key, int64 code per row) of an integer array.  Few distinct keys (the
    usual flow set: a handful of protocols, one service address) are found in a sample of every ``step``-th row
    and every row looked up there (a binary search, no sort of all rows); else ``np.unique`` sorts them all."""
    n = len(keys)
    if n > 64 * step:
        sample = np.arange(0, n, step)
        probe, at = np.unique(keys[sample], return_index=True)
        other = keys[step // 2::step]  # a second sample first: many distinct keys fail it cheaply
        if (probe[np.minimum(np.searchsorted(probe, other), len(probe) - 1)] == other).all():
            pos = np.minimum(np.searchsorted(probe, keys), len(probe) - 1)
            if (probe[pos] == keys).all():
                return sample[at], pos.astype(np.int64)
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    return first, codes.reshape(n)


def factorize(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row index of one span per distinct value, int64 code per span).  A hash collision (never seen) falls
    back to sorting the words themselves."""
    n = len(s)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ln = (e - s).astype(np.uint64)
    words = _words(buf, s, e, int(ln.max(initial=0)))
    h = ln * np.uint64(0x9E3779B97F4A7C15)
    for w in words:
        h = (h ^ w) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(31)
    first, codes = unique_codes(h)
    rep = first[codes]
    if (ln == ln[rep]).all() and all((w == w[rep]).all() for w in words):
        return first, codes
    _, first, codes = np.unique(np.rec.fromarrays([ln, *words]), return_index=True, return_inverse=True)
    return first, codes.reshape(n)


def texts(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> list[str | None]:
    """The spans as text (None: not UTF-8): one Python step per span, so give distinct ones."""
    out: list[str | None] = []
    for a, b in zip(s.tolist(), e.tolist()):
        try:
            out.append(buf[a:b].tobytes().decode("utf-8"))
        except UnicodeDecodeError:
            out.append(None)
    return out


def protos(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``tcp``, ``udp``, ``icmp`` … or 0-255 → uint8, and the bad mask."""
    bad = (e == s) | (e - s > 16)
    e = np.minimum(e, s + 16)
    first, codes = factorize(buf, s, e)
    table = np.zeros(len(first), np.uint8)
    ok = np.zeros(len(first), bool)
    for k, text in enumerate(texts(buf, s[first], e[first])):
        try:
            table[k], ok[k] = proto_number(text), True  # type: ignore[arg-type]
        except (ValueError, AttributeError):
            pass
    return table[codes], bad | ~ok[codes]


def ports(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal 0-65535 (at most 5 digits) → uint16, and the bad mask."""
    ln = e - s
    bad = (ln == 0) | (ln > 5)
    word = _words(buf, s, np.minimum(e, s + 5), 8)[0] if len(s) else np.zeros(0, np.uint64)
    val = np.zeros(len(s), np.int32)
    for j in range(5):
        act = j < ln
        d = ((word >> np.uint64(8 * j)) & np.uint64(0xFF)).astype(np.int32) - 48
        bad |= act & ((d < 0) | (d > 9))
        val = np.where(act, val * 10 + d, val)
    bad |= val > 65535
    return np.where(bad, 0, val).astype(np.uint16), bad


def _ipv4(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strict dotted quads (what ``ipaddress`` accepts: 4 decimal octets, no leading zeros) → (n, 4) bytes and
    an ``ok`` mask; what is not one is left to ``ipaddress``."""
    n = len(s)
    ln = e - s
    out = np.zeros((n, 4), np.uint8)
    ok = (ln >= 7) & (ln <= 15)
    cols = np.arange(16)
    m = np.zeros((n, 16), np.uint8)
    if n:
        w = _words(buf, s, np.minimum(e, s + 16), 16)
        m = np.column_stack(w).view(np.uint8).reshape(n, 16)
    inside = cols < ln[:, None]
    dot = (m == 46) & inside
    dig = (m >= 48) & (m <= 57) & inside
    ok &= ((dot | dig) == inside).all(axis=1) & (dot.sum(axis=1) == 3)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return out, ok
    mo = m[rows].astype(np.int64) - 48
    dots = np.nonzero(dot[rows])[1].reshape(-1, 3)
    start = np.column_stack([np.zeros(len(rows), np.int64), dots + 1])
    width = np.column_stack([dots, ln[rows]]) - start
    r = np.arange(len(rows))[:, None]
    d0, d1, d2 = (mo[r, np.minimum(start + j, 15)] for j in range(3))
    octet = np.where(width == 1, d0, np.where(width == 2, d0 * 10 + d1, d0 * 100 + d1 * 10 + d2))
    good = ((width >= 1) & (width <= 3)).all(axis=1)
    good &= ~((width > 1) & (d0 == 0)).any(axis=1) & (octet <= 255).all(axis=1)
    out[rows] = np.where(good[:, None], octet, 0).astype(np.uint8)
    ok[rows] = good
    return out, ok


def addrs(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Addresses → (family uint8 4/6, (n, 16) big-endian bytes, bad mask), once per distinct cell: dotted
    quads in bulk, everything else through ``ipaddress`` (stripped as the reference code strips)."""
    bad = (e - s > MAX_ADDR) | (e == s)
    e = np.minimum(e, s + MAX_ADDR)
    first, codes = factorize(buf, s, e)
    us, ue = s[first], e[first]
    ufam = np.zeros(len(first), np.uint8)
    upacked = np.zeros((len(first), 16), np.uint8)
    v4, ok4 = _ipv4(buf, us, ue)
    ufam[ok4] = 4
    upacked[ok4, :4] = v4[ok4]
    rest = np.flatnonzero(~ok4)
    for k, text in zip(rest.tolist(), texts(buf, us[rest], ue[rest])):
        try:
            a = ipaddress.ip_address(text.strip())  # type: ignore[union-attr]
        except (ValueError, AttributeError):
            continue
        ufam[k] = a.version
        upacked[k, : len(a.packed)] = np.frombuffer(a.packed, np.uint8)
    fam = ufam[codes]
    return fam, upacked[codes], bad | (fam == 0)


def labels(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Free text (``ingress``, ``group``) → (distinct values, empty → None; int32 code per row; bad mask)."""
    bad = e - s > MAX_LABEL
    e = np.minimum(e, s + MAX_LABEL)
    first, codes = factorize(buf, s, e)
    values: list[str | None] = []
    for k, text in enumerate(texts(buf, s[first], e[first])):
        if text is None:
            bad |= codes == k
        values.append((text or "").strip() or None)
    return values, codes.astype(np.int32), bad
