"""Flow hashes: Linux's multipath hash (bit-exact) and ASIC-style CRC16 hashes.

Linux (net/ipv4/route.c ``fib_multipath_hash``, net/ipv6/route.c
``rt6_multipath_hash``, net/core/flow_dissector.c ``__flow_hash_from_keys``):
the selected fields are written into a zeroed ``struct flow_keys`` (80 bytes on
64-bit: ``basic.ip_proto`` at byte 10, ``tags.flow_label`` at 12, ``ports`` at
36 (src) and 38 (dst) as be16, addresses from 44), made symmetric
(``__flow_hash_consistentify``), then hashed with SipHash-2-4 over bytes 8..56
(IPv4) or 8..80 (IPv6) with key k0 = k1 = (seed << 32) | seed.  The low 32 bits
are kept (0 becomes 1); the multipath hash is that value >> 1 (31 bits).

Paths (``forwarded``):

* ``forwarded=True`` — the skb path: forwarded packets of both families
  (checked with real frames through a namespace router) and IPv4 ``ip route
  get ... iif DEV`` (which builds a real skb).  Ports come
  from the flow dissector, so they are 0 for protocols without ports; policy 3
  adds ``jhash_2words(h, inner=0, 0)``; IPv6 policy 3 puts the flow label into
  the keys in host byte order (the dissector's ``ntohl``).
* ``forwarded=False`` — the flowi path: locally generated packets, ``ip route
  get`` without ``iif``, and *every* IPv6 ``ip route get`` (inet6_rtm_getroute
  passes no skb even with ``iif``).  Ports are hashed as given; policy 3 has no
  jhash step; IPv6 flow labels stay in network byte order.

``fields`` defaults to 0x37 (addresses, protocol, ports) for callers' convenience;
the kernel's own default for ``fib_multipath_hash_fields`` is 0x0007, so pass the
device's value.  Bit 0x08 (flow label) means nothing for IPv4.

Not modelled (placement is then not EXACT): seed 0 (random boot key); under
policy 1, a forwarded packet that already carries an L4 receive hash
(``skb->l4_hash``, e.g. a NIC's RSS hash) — the kernel then returns that hash
>> 1 instead (veth does not carry one: tested with real sockets); ICMP errors
(hashed on the inner header); tunnels' ``flowi4_multipath_hash`` (extra
jhash); IPv6 extension headers; ESP/AH SPIs; policy 2 and the inner-field bits
of policy 3.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import os
from typing import TYPE_CHECKING

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.types import Flow

if TYPE_CHECKING:  # the pool is made on first use
    from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "Placement",
    "PORT_PROTOCOLS",
    "FIELD_SRC_IP",
    "FIELD_DST_IP",
    "FIELD_IP_PROTO",
    "FIELD_FLOWLABEL",
    "FIELD_SRC_PORT",
    "FIELD_DST_PORT",
    "FIELDS_OUTER_MASK",
    "SeedUnknownError",
    "FlowKeys",
    "linux_multipath_hash",
    "linux_multipath_hash_one",
    "hash_or_unknown",
    "l4_hash_bypass",
    "jhash_2words",
    "siphash24",
    "asic_hash",
    "asic_hash_one",
    "crc16",
    "jhash_2words_v",
    "ASIC_ALGORITHMS",
]


class Placement(str, enum.Enum):
    """How far a computed placement can be trusted."""

    EXACT = "exact"  # bit-exact model of the device (Linux, known seed)
    APPROXIMATE = "approximate"  # documented vendor algorithm, device details unknown
    UNKNOWN = "unknown"  # cannot be predicted (random seed, unknown ASIC): ask the device


class SeedUnknownError(ValueError):
    """Seed 0: the kernel hashes with a random boot-time key."""


# include/net/ip_fib.h: FIB_MULTIPATH_HASH_FIELD_*
FIELD_SRC_IP = 1 << 0
FIELD_DST_IP = 1 << 1
FIELD_IP_PROTO = 1 << 2
FIELD_FLOWLABEL = 1 << 3
FIELD_SRC_PORT = 1 << 4
FIELD_DST_PORT = 1 << 5
FIELDS_OUTER_MASK = 0x3F

# Protocols whose first 4 L4 bytes are (sport, dport) for the flow dissector
# (proto_ports_offset): TCP, UDP, DCCP, SCTP, UDP-Lite.
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})
_PORT_PROTO_LUT = np.zeros(256, bool)
_PORT_PROTO_LUT[sorted(PORT_PROTOCOLS)] = True

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


# --------------------------------------------------------------------------- pure-Python reference


def _rotl64(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash24(data: bytes, k0: int, k1: int) -> int:
    """SipHash-2-4 of ``data`` (lib/siphash.c ``__siphash_aligned``): a 64-bit int."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rnd() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _M64; v1 = _rotl64(v1, 13); v1 ^= v0; v0 = _rotl64(v0, 32)  # noqa: E702
        v2 = (v2 + v3) & _M64; v3 = _rotl64(v3, 16); v3 ^= v2  # noqa: E702
        v0 = (v0 + v3) & _M64; v3 = _rotl64(v3, 21); v3 ^= v0  # noqa: E702
        v2 = (v2 + v1) & _M64; v1 = _rotl64(v1, 17); v1 ^= v2; v2 = _rotl64(v2, 32)  # noqa: E702

    n = len(data)
    end = n - (n % 8)
    for off in range(0, end, 8):
        m = int.from_bytes(data[off:off + 8], "little")
        v3 ^= m
        rnd(); rnd()  # noqa: E702
        v0 ^= m
    b = (n & 0xFF) << 56
    b |= int.from_bytes(data[end:], "little")
    v3 ^= b
    rnd(); rnd()  # noqa: E702
    v0 ^= b
    v2 ^= 0xFF
    rnd(); rnd(); rnd(); rnd()  # noqa: E702
    return v0 ^ v1 ^ v2 ^ v3


@functools.lru_cache(maxsize=4096)
def _sip_state_cached(words: tuple[int, ...], key: int) -> tuple[int, int, int, int]:
    v0, v1, v2, v3 = key ^ 0x736F6D6570736575, key ^ 0x646F72616E646F6D, key ^ 0x6C7967656E657261, \
        key ^ 0x7465646279746573
    for m in words:
        v3 ^= m
        for _ in range(2):
            v0 = (v0 + v1) & _M64; v1 = _rotl64(v1, 13); v1 ^= v0; v0 = _rotl64(v0, 32)  # noqa: E702
            v2 = (v2 + v3) & _M64; v3 = _rotl64(v3, 16); v3 ^= v2  # noqa: E702
            v0 = (v0 + v3) & _M64; v3 = _rotl64(v3, 21); v3 ^= v0  # noqa: E702
            v2 = (v2 + v1) & _M64; v1 = _rotl64(v1, 17); v1 ^= v2; v2 = _rotl64(v2, 32)  # noqa: E702
        v0 ^= m
    return v0, v1, v2, v3


def _sip_state(words: list[int], key: int) -> tuple[int, int, int, int]:
    """SipHash-2-4 state (k0 = k1 = key) after compressing whole words: for prefix sharing."""
    return _sip_state_cached(tuple(words), key)


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def jhash_2words(a: int, b: int, initval: int) -> int:
    """include/linux/jhash.h ``jhash_2words``: __jhash_nwords(a, b, 0, initval + JHASH_INITVAL + 8)."""
    iv = (initval + 0xDEADBEEF + (2 << 2)) & _M32
    a = (a + iv) & _M32
    b = (b + iv) & _M32
    c = iv  # c = 0 + initval
    # __jhash_final(a, b, c)
    c ^= b; c = (c - _rol32(b, 14)) & _M32  # noqa: E702
    a ^= c; a = (a - _rol32(c, 11)) & _M32  # noqa: E702
    b ^= a; b = (b - _rol32(a, 25)) & _M32  # noqa: E702
    c ^= b; c = (c - _rol32(b, 16)) & _M32  # noqa: E702
    a ^= c; a = (a - _rol32(c, 4)) & _M32  # noqa: E702
    b ^= a; b = (b - _rol32(a, 14)) & _M32  # noqa: E702
    c ^= b; c = (c - _rol32(b, 24)) & _M32  # noqa: E702
    return c


class FlowKeys:
    """A zeroed ``struct flow_keys`` (x86_64 layout), written field by field: what the reference hash
    (``linux_multipath_hash_one``) hashes; ``hash_bytes`` is the part SipHash reads."""

    SIZE = 80
    HASH_OFFSET = 8  # offsetof(struct flow_keys, basic)

    def __init__(self, family: int) -> None:
        self.family = family
        self.ip_proto = 0
        self.flow_label = b"\0\0\0\0"  # raw 4 bytes as stored in memory
        self.sport = b"\0\0"  # be16 bytes
        self.dport = b"\0\0"
        width = 4 if family == 4 else 16
        self.src = bytes(width)
        self.dst = bytes(width)

    def consistentify(self) -> None:
        """__flow_hash_consistentify: sort addresses and ports so both directions hash alike."""
        if self.family == 4:
            # (__force u32)dst < (__force u32)src: native (little-endian) loads of be32 addresses
            if int.from_bytes(self.dst, "little") < int.from_bytes(self.src, "little"):
                self.src, self.dst = self.dst, self.src
        else:
            if self.dst < self.src:  # memcmp(&dst, &src, 16) < 0
                self.src, self.dst = self.dst, self.src
        if int.from_bytes(self.dport, "little") < int.from_bytes(self.sport, "little"):
            self.sport, self.dport = self.dport, self.sport

    def hash_bytes(self) -> bytes:
        buf = bytearray(self.SIZE)
        buf[10] = self.ip_proto
        buf[12:16] = self.flow_label
        buf[36:38] = self.sport
        buf[38:40] = self.dport
        w = len(self.src)
        buf[44:44 + w] = self.src
        buf[44 + w:44 + 2 * w] = self.dst
        length = 48 if self.family == 4 else 72  # flow_keys_hash_length()
        return bytes(buf[self.HASH_OFFSET:self.HASH_OFFSET + length])


def _hash_from_keys(keys: FlowKeys, seed: int) -> int:
    """fib_multipath_hash_from_keys -> flow_hash_from_keys_seed -> __flow_hash_from_keys."""
    k = ((seed & _M32) << 32) | (seed & _M32)
    keys.consistentify()
    h = siphash24(keys.hash_bytes(), k, k) & _M32
    return h or 1


def linux_multipath_hash_one(flow: Flow, *, policy: int, seed: int, fields: int = 0x37,
                             forwarded: bool = True) -> int:
    """Reference (plain ints) of the kernel's multipath hash of one flow: 31 bits."""
    if seed == 0:
        raise SeedUnknownError("fib_multipath_hash_seed is 0: the kernel uses a random key")
    s = ipaddress.ip_address(flow.src)
    d = ipaddress.ip_address(flow.dst)
    fam = s.version
    has_ports = (not forwarded) or flow.proto in PORT_PROTOCOLS
    sport = (flow.sport if has_ports else 0).to_bytes(2, "big")
    dport = (flow.dport if has_ports else 0).to_bytes(2, "big")
    label_be = (flow.flowlabel & 0xFFFFF).to_bytes(4, "big")  # ip6_flowlabel(): be32
    keys = FlowKeys(fam)
    if policy == 0:
        keys.src, keys.dst = s.packed, d.packed
        if fam == 6:
            keys.flow_label = label_be
            keys.ip_proto = flow.proto
        mhash = _hash_from_keys(keys, seed)
    elif policy == 1:
        keys.src, keys.dst = s.packed, d.packed
        keys.sport, keys.dport = sport, dport
        keys.ip_proto = flow.proto
        mhash = _hash_from_keys(keys, seed)
    elif policy == 3:
        if not fields & FIELDS_OUTER_MASK:
            mhash = 0
        else:
            if fields & FIELD_SRC_IP:
                keys.src = s.packed
            if fields & FIELD_DST_IP:
                keys.dst = d.packed
            if fields & FIELD_IP_PROTO:
                keys.ip_proto = flow.proto
            if fam == 6 and fields & FIELD_FLOWLABEL:
                # the skb path takes the dissector's host-order label (ntohl)
                keys.flow_label = ((flow.flowlabel & 0xFFFFF).to_bytes(4, "little") if forwarded
                                   else label_be)
            if fields & FIELD_SRC_PORT:
                keys.sport = sport
            if fields & FIELD_DST_PORT:
                keys.dport = dport
            mhash = _hash_from_keys(keys, seed)
        if forwarded:
            mhash = jhash_2words(mhash, 0, 0)  # fib_multipath_custom_hash_skb: inner hash 0
    else:
        raise ValueError(f"hash policy {policy} is not modelled (0, 1 and 3 are)")
    return mhash >> 1


# --------------------------------------------------------------------------- vectorised


_C0 = np.uint64(0x736F6D6570736575)
_C1 = np.uint64(0x646F72616E646F6D)
_C2 = np.uint64(0x6C7967656E657261)
_C3 = np.uint64(0x7465646279746573)
_CHUNK = 1 << 15
WORKERS = max(1, min(4, os.cpu_count() or 1))  # threads a large flow set is hashed on (paths.py reads it too)


@functools.lru_cache(maxsize=1)
def _pool() -> "ThreadPoolExecutor":
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="hash")


class _Sip:
    """Vectorised SipHash-2-4 state over a chunk of flows (in-place numpy ops)."""

    def __init__(self, n: int) -> None:
        self.v = [np.empty(n, np.uint64) for _ in range(4)]
        self.t = np.empty(n, np.uint64)

    def _rotl(self, x: np.ndarray, b: int) -> None:
        t = self.t[: x.shape[0]]
        np.right_shift(x, np.uint64(64 - b), out=t)
        np.left_shift(x, np.uint64(b), out=x)
        np.bitwise_or(x, t, out=x)

    def _round(self, v0: np.ndarray, v1: np.ndarray, v2: np.ndarray, v3: np.ndarray) -> None:
        np.add(v0, v1, out=v0); self._rotl(v1, 13); np.bitwise_xor(v1, v0, out=v1); self._rotl(v0, 32)  # noqa: E702
        np.add(v2, v3, out=v2); self._rotl(v3, 16); np.bitwise_xor(v3, v2, out=v3)  # noqa: E702
        np.add(v0, v3, out=v0); self._rotl(v3, 21); np.bitwise_xor(v3, v0, out=v3)  # noqa: E702
        np.add(v2, v1, out=v2); self._rotl(v1, 17); np.bitwise_xor(v1, v2, out=v1); self._rotl(v2, 32)  # noqa: E702

    def hash(self, words: list[np.ndarray | None], length: int, key: int,
             small: np.ndarray | None = None) -> np.ndarray:
        """SipHash of messages given as little-endian u64 words (None = all-zero word).

        ``small``: words[0] takes few distinct values (and this says which, per
        flow, as a uint8 code with words[0] == code << 16): the state after
        words[0] and the all-zero words that follow is then computed once per
        value and gathered, saving those rounds.
        """
        n = next(w.shape[0] for w in words if w is not None)
        v0, v1, v2, v3 = (x[:n] for x in self.v)
        k = np.uint64(key)
        if small is not None:
            p = 1
            while p < len(words) and words[p] is None:
                p += 1
            codes = np.flatnonzero(np.bincount(small, minlength=256))  # the distinct values (cheaper than unique)
            states = np.array([_sip_state([int(c) << 16] + [0] * (p - 1), key) for c in codes], np.uint64)
            if codes.size == 1:
                for j, v in enumerate((v0, v1, v2, v3)):
                    v.fill(states[0, j])
            else:
                lut = np.zeros(256, np.intp)
                lut[codes] = np.arange(codes.size)
                inv = lut[small]
                for j, v in enumerate((v0, v1, v2, v3)):
                    np.take(states[:, j], inv, out=v)
            words = words[p:]
        else:
            v0.fill(k ^ _C0); v1.fill(k ^ _C1); v2.fill(k ^ _C2); v3.fill(k ^ _C3)  # noqa: E702
        for m in words + [np.uint64((length & 0xFF) << 56)]:
            if m is not None:
                np.bitwise_xor(v3, m, out=v3)
            self._round(v0, v1, v2, v3)
            self._round(v0, v1, v2, v3)
            if m is not None:
                np.bitwise_xor(v0, m, out=v0)
        np.bitwise_xor(v2, np.uint64(0xFF), out=v2)
        for _ in range(4):
            self._round(v0, v1, v2, v3)
        out = v0 ^ v1
        out ^= v2
        out ^= v3
        return out


def _le32(b: np.ndarray) -> np.ndarray:
    """(n,4) uint8 -> uint64 of the little-endian load."""
    return np.ascontiguousarray(b).view("<u4").reshape(-1).astype(np.uint64)


def _le64(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view("<u8").reshape(-1).copy()


def _bswap16(x: np.ndarray) -> np.ndarray:
    """uint16 with the two bytes swapped (the little-endian load of a be16)."""
    return np.asarray(x, dtype=np.uint16).byteswap()


def _bswap32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.uint32).byteswap().astype(np.uint64)


def _rol32v(x: np.ndarray, k: int) -> np.ndarray:
    return (x << np.uint32(k)) | (x >> np.uint32(32 - k))


def jhash_2words_v(a: np.ndarray, b: np.ndarray | int, initval: int) -> np.ndarray:
    """Vectorised ``jhash_2words`` over uint32 arrays."""
    iv = np.uint32((initval + 0xDEADBEEF + 8) & _M32)
    with np.errstate(over="ignore"):
        a = a.astype(np.uint32) + iv
        b = np.asarray(b, dtype=np.uint32) + iv
        b = np.broadcast_to(b, a.shape).copy()
        c = np.full(a.shape, iv, np.uint32)
        c ^= b; c -= _rol32v(b, 14)  # noqa: E702
        a ^= c; a -= _rol32v(c, 11)  # noqa: E702
        b ^= a; b -= _rol32v(a, 25)  # noqa: E702
        c ^= b; c -= _rol32v(b, 16)  # noqa: E702
        a ^= c; a -= _rol32v(c, 4)  # noqa: E702
        b ^= a; b -= _rol32v(a, 14)  # noqa: E702
        c ^= b; c -= _rol32v(b, 24)  # noqa: E702
    return c


def _addr32(a: np.ndarray) -> np.ndarray:
    """Bytes 0..3 of each (n, 16) address as little-endian uint32 loads (a strided view when possible)."""
    return np.ascontiguousarray(a, dtype=np.uint8).view("<u4")[:, 0]


def _hash_chunk(flows: FlowArray, idx: slice | np.ndarray, fam: int, policy: int, seed: int, fields: int,
                forwarded: bool, sip: _Sip, src4: np.ndarray, dst4: np.ndarray) -> np.ndarray:
    """Hashes (32 bits, 0 → 1) of the flows at ``idx``, all of family ``fam``; columns gathered here.

    ``src4``/``dst4``: ``_addr32`` of the whole src/dst columns (IPv4 gathers only those).
    """
    proto = flows.proto[idx]
    n = proto.shape[0]
    use_src = use_dst = True
    use_proto = use_ports = False
    use_label = False
    if policy == 0:
        use_proto = use_label = fam == 6
    elif policy == 1:
        use_proto = use_ports = True
    elif policy == 3:
        use_src = bool(fields & FIELD_SRC_IP)
        use_dst = bool(fields & FIELD_DST_IP)
        use_proto = bool(fields & FIELD_IP_PROTO)
        use_label = fam == 6 and bool(fields & FIELD_FLOWLABEL)
    else:
        raise ValueError(f"hash policy {policy} is not modelled (0, 1 and 3 are)")

    # ports, as the little-endian u16 loads of their be16 bytes, sorted (__flow_hash_consistentify)
    if policy == 3:
        want_sport, want_dport = bool(fields & FIELD_SRC_PORT), bool(fields & FIELD_DST_PORT)
    else:
        want_sport = want_dport = use_ports
    if want_sport or want_dport:
        zero16 = np.zeros(n, np.uint16)
        sp = _bswap16(flows.sport[idx]) if want_sport else zero16
        dp = _bswap16(flows.dport[idx]) if want_dport else zero16
        if forwarded:
            ok = _PORT_PROTO_LUT[proto]
            if not ok.all():
                sp, dp = np.where(ok, sp, zero16), np.where(ok, dp, zero16)
        w3 = np.minimum(sp, dp).astype(np.uint64) << np.uint64(32)
        w3 |= np.maximum(sp, dp).astype(np.uint64) << np.uint64(48)
    else:
        w3 = None
    w0: np.ndarray | None = None  # protocol alone: folded into the precomputed state (``small``)
    if use_label:
        w0 = np.zeros(n, np.uint64)
        if use_proto:
            w0 |= proto.astype(np.uint64) << np.uint64(16)
        lab = flows.flowlabel[idx].astype(np.uint64) & np.uint64(0xFFFFF)
        host_order = policy == 3 and forwarded
        w0 |= (lab if host_order else _bswap32(lab)) << np.uint64(32)

    if fam == 4:
        zero32 = np.zeros(n, np.uint32)
        s = src4[idx] if use_src else zero32
        d = dst4[idx] if use_dst else zero32
        words: list[np.ndarray | None] = [w0, None, None, w3,
                                          np.minimum(s, d).astype(np.uint64) << np.uint64(32),
                                          np.maximum(s, d).astype(np.uint64)]
        length = 48
    else:
        src = flows.src[idx] if use_src else np.zeros((n, 16), np.uint8)
        dst = flows.dst[idx] if use_dst else np.zeros((n, 16), np.uint8)
        shi = src[:, :8].copy().view(">u8").reshape(-1)
        slo = src[:, 8:].copy().view(">u8").reshape(-1)
        dhi = dst[:, :8].copy().view(">u8").reshape(-1)
        dlo = dst[:, 8:].copy().view(">u8").reshape(-1)
        swap = (dhi < shi) | ((dhi == shi) & (dlo < slo))
        a = np.where(swap[:, None], dst, src)
        b = np.where(swap[:, None], src, dst)
        words = [w0, None, None, w3,
                 _le32(a[:, 0:4]) << np.uint64(32),
                 _le64(a[:, 4:12]),
                 _le32(a[:, 12:16]) | (_le32(b[:, 0:4]) << np.uint64(32)),
                 _le64(b[:, 4:12]),
                 _le32(b[:, 12:16])]
        length = 72
    k = ((seed & _M32) << 32) | (seed & _M32)
    small = None if use_label else (proto if use_proto else np.zeros(n, np.uint8))
    h = (sip.hash(words, length, k, small) & np.uint64(_M32)).astype(np.uint32)
    h[h == 0] = 1
    return h


def _custom_empty(n: int, forwarded: bool) -> np.ndarray:
    mh = np.zeros(n, np.uint32)
    if forwarded:
        mh = jhash_2words_v(mh, 0, 0)
    return mh >> np.uint32(1)


def linux_multipath_hash(flows: FlowArray, *, policy: int, seed: int, fields: int = 0x37,
                         forwarded: bool = True, rows: np.ndarray | None = None) -> np.ndarray:
    """The kernel's 31-bit multipath hash of every flow (uint32 array), vectorised.

    ``policy`` is the family's own sysctl (net.ipv4 / net.ipv6
    ``fib_multipath_hash_policy``; ``fields`` likewise); mixed-family arrays are
    hashed per family with the same policy.  ``rows``: hash only these flows
    (same as hashing ``flows.take(rows)``, but gathered chunk by chunk in the
    worker threads).  Raises SeedUnknownError on seed 0.
    """
    if seed == 0:
        raise SeedUnknownError("fib_multipath_hash_seed is 0: the kernel uses a random key")
    if policy not in (0, 1, 3):
        raise ValueError(f"hash policy {policy} is not modelled (0, 1 and 3 are)")
    rows = None if rows is None else np.asarray(rows, dtype=np.intp)
    family = flows.family if rows is None else flows.family[rows]
    n = len(family)
    out = np.empty(n, np.uint32)
    if n == 0:
        return out
    if policy == 3 and not fields & FIELDS_OUTER_MASK:
        return _custom_empty(n, forwarded)
    jobs: list[tuple[int, slice | np.ndarray]] = []
    is4 = family == 4
    n4 = int(np.count_nonzero(is4))
    only = 4 if n4 == n else 6 if n4 == 0 and bool((family == 6).all()) else None
    if only is None and n4 + int(np.count_nonzero(family == 6)) != n:
        raise ValueError("family must be 4 or 6")
    for fam in (4, 6):
        if only is not None and fam != only:
            continue
        sel = None if only is not None else np.flatnonzero(is4 if fam == 4 else ~is4)
        size = n if sel is None else sel.size
        for start in range(0, size, _CHUNK):
            jobs.append((fam, slice(start, start + _CHUNK) if sel is None else sel[start:start + _CHUNK]))

    src4, dst4 = _addr32(flows.src), _addr32(flows.dst)

    def work(my_jobs: list[tuple[int, slice | np.ndarray]]) -> None:
        sip = _Sip(min(n, _CHUNK))
        for fam, idx in my_jobs:
            h = _hash_chunk(flows, idx if rows is None else rows[idx], fam, policy, seed, fields, forwarded, sip,
                            src4, dst4)
            if policy == 3 and forwarded:
                h = jhash_2words_v(h, 0, 0)
            out[idx] = h >> np.uint32(1)

    # numpy releases the GIL inside each operation: chunks hash in parallel on every core.
    workers = min(WORKERS, len(jobs))
    if workers <= 1:
        work(jobs)
    else:
        list(_pool().map(work, [jobs[i::workers] for i in range(workers)]))
    return out


def hash_or_unknown(flows: FlowArray, *, policy: int, seed: int, fields: int = 0x37,
                    forwarded: bool = True) -> tuple[np.ndarray, Placement]:
    """``(hashes, EXACT)``, or ``(zeros, UNKNOWN)`` when the seed is 0 or the policy unmodelled.

    EXACT is for the hash; under policy 1 see also ``l4_hash_bypass`` for the
    forwarded flows whose packets may carry a hash of their own.
    """
    if seed == 0 or policy not in (0, 1, 3):
        return np.zeros(len(flows), np.uint32), Placement.UNKNOWN
    return linux_multipath_hash(flows, policy=policy, seed=seed, fields=fields,
                                forwarded=forwarded), Placement.EXACT


def l4_hash_bypass(flows: FlowArray, *, policy: int, rss: bool = False) -> np.ndarray:
    """Flows whose *forwarded* placement may ignore the seeded hash (bool per flow).

    Under policy 1 the kernel returns ``skb->hash >> 1`` when a forwarded packet
    already carries an L4 hash, and a sender's hash survives veth (tested in
    tests/kernel/test_hash_kernel.py): TCP (the socket's random txhash) and
    IPv6 from stacks with automatic flow labels (ip6_make_flowlabel hashes the
    skb) — while IPv4 UDP does not.  ``rss``: packets arrive on a NIC that
    reports an L4 receive hash, so every TCP/UDP flow is affected.  Policies 0
    and 3 never take this shortcut.  Such flows land per connection at random
    (in proportion to the weights): their placement is UNKNOWN.
    """
    if policy != 1:
        return np.zeros(len(flows), bool)
    if rss:
        return _PORT_PROTO_LUT[flows.proto]
    return (flows.proto == 6) | (flows.family == 6)


# --------------------------------------------------------------------------- ASIC-style CRC16


ASIC_ALGORITHMS = ("crc16-ccitt", "crc16-bisync")
_POLY = {"crc16-ccitt": 0x1021, "crc16-bisync": 0x8005}
ASIC_DEFAULT_FIELDS = FIELD_SRC_IP | FIELD_DST_IP | FIELD_IP_PROTO | FIELD_SRC_PORT | FIELD_DST_PORT


def _crc_table(poly: int) -> np.ndarray:
    tab = np.zeros(256, np.uint16)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & 0x8000 else (c << 1)
        tab[i] = c & 0xFFFF
    return tab


_TABLES = {name: _crc_table(p) for name, p in _POLY.items()}


def _asic_message(flow: Flow, fields: int) -> bytes:
    s = ipaddress.ip_address(flow.src).packed
    d = ipaddress.ip_address(flow.dst).packed
    parts = []
    if fields & FIELD_SRC_IP:
        parts.append(s)
    if fields & FIELD_DST_IP:
        parts.append(d)
    if fields & FIELD_IP_PROTO:
        parts.append(bytes([flow.proto]))
    if fields & FIELD_SRC_PORT:
        parts.append(flow.sport.to_bytes(2, "big"))
    if fields & FIELD_DST_PORT:
        parts.append(flow.dport.to_bytes(2, "big"))
    return b"".join(parts)


def asic_hash_one(flow: Flow, *, algorithm: str = "crc16-ccitt", seed: int = 0,
                  fields: int = ASIC_DEFAULT_FIELDS) -> int:
    """Reference of ``asic_hash`` for one flow."""
    return crc16(_asic_message(flow, fields), algorithm=algorithm, seed=seed)


def crc16(data: bytes, *, algorithm: str = "crc16-ccitt", seed: int = 0) -> int:
    """Bitwise CRC16, MSB first, no reflection, no final XOR, register starts at ``seed``.

    crc16-ccitt: polynomial 0x1021 (seed 0 = CRC-16/XMODEM, 0xFFFF = CCITT-FALSE);
    crc16-bisync: polynomial 0x8005 (seed 0 = CRC-16/BUYPASS).
    """
    if algorithm not in _POLY:
        raise ValueError(f"unknown algorithm {algorithm!r}; one of {', '.join(ASIC_ALGORITHMS)}")
    poly = _POLY[algorithm]
    crc = seed & 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def asic_hash(flows: FlowArray, *, algorithm: str = "crc16-ccitt", seed: int = 0,
              fields: int = ASIC_DEFAULT_FIELDS) -> np.ndarray:
    """ASIC-style 16-bit hash (Placement.APPROXIMATE): CRC16 over the selected header fields.

    The message is the big-endian concatenation src IP, dst IP, protocol (1
    byte), sport, dport (each only if selected); the CRC register starts at
    ``seed``.  Vendors' exact field order and bucket mapping are not public, so
    placements from this hash are approximate.
    """
    if algorithm not in _TABLES:
        raise ValueError(f"unknown algorithm {algorithm!r}; one of {', '.join(ASIC_ALGORITHMS)}")
    tab = _TABLES[algorithm]
    n = len(flows)
    crc = np.full(n, seed & 0xFFFF, np.uint16)
    width_v4 = flows.family == 4

    def feed(col: np.ndarray, mask: np.ndarray | None = None) -> None:
        nonlocal crc
        idx = ((crc >> np.uint16(8)) ^ col.astype(np.uint16)) & np.uint16(0xFF)
        new = (crc << np.uint16(8)) ^ tab[idx]
        crc = new if mask is None else np.where(mask, new, crc)

    def feed_addr(a: np.ndarray) -> None:
        for j in range(16):
            feed(a[:, j], None if j < 4 else ~width_v4)

    if fields & FIELD_SRC_IP:
        feed_addr(flows.src)
    if fields & FIELD_DST_IP:
        feed_addr(flows.dst)
    if fields & FIELD_IP_PROTO:
        feed(flows.proto)
    if fields & FIELD_SRC_PORT:
        feed(flows.sport >> np.uint16(8))
        feed(flows.sport & np.uint16(0xFF))
    if fields & FIELD_DST_PORT:
        feed(flows.dport >> np.uint16(8))
        feed(flows.dport & np.uint16(0xFF))
    return crc
