"""Consistent pseudonyms for addresses, MACs and host names (``--scrub``).

Where pseudonyms land (never in routable space, so a shared report can't point at anybody's network):

* IPv4 -> 10.0.0.0/8 (RFC 1918), then 240.0.0.0/8 .. 254.0.0.0/8 (RFC 1112 "reserved", never routed):
  each /8 of the input gets its own /8 of that pool, the first one seen gets 10.0.0.0/8.  A fabric with up to
  16 /8s (the usual case is one to four) is thus mapped one to one with all 24 bits of structure under each
  /8; 198.18.0.0/15 (RFC 2544) would keep only 17, and the lab numbers its own fabric from it.
* IPv6 -> fd00::/8 (RFC 4193 unique local), 120 bits of structure (2001:db8::/32 would keep 96).
* Kept as they are, because they are the same on every host and identify nothing (and the views must
  still recognise them): 0.0.0.0/8 (with the default route 0.0.0.0/0), 127.0.0.0/8, 224.0.0.0/4,
  255.255.255.255, ::, ::1, ff00::/8 (so ::/0 too).
* Link-local stays link-local: 169.254.0.0/16 maps inside itself; fe80::/10 keeps its first 64 bits and
  scrubs the interface identifier (which often carries a MAC).  ::ffff:a.b.c.d carries its IPv4 pseudonym.

Mapping (Crypto-PAn style, prefix-preserving): output bit i is input bit i XOR a keyed PRF of input bits
0..i-1, then the first 8 bits are replaced by the /8 of the target pool given to the input's /8 (IPv6: fd).
So two addresses in the same /8 share exactly as many leading bits after scrubbing as before, and an
address inside a prefix of /8 or longer stays inside that prefix's pseudonym.
One to one: a pseudonym is never given to two inputs.  Only beyond 16 IPv4 /8s (or, for IPv6, with chance
2^-120) can two inputs meet on one pseudonym; the later one is then moved to a free keyed pseudonym in the
same /8 (its own prefix relations are lost, the meaning is not) and ``Scrubber.collisions`` counts it.
Never the original: an input whose /8 is given its own /8 (or a link-local one) has its first scrubbed bit
flipped, so every address and every prefix longer than the part kept changes; only prefixes of the block
itself (10.0.0.0/8, fe80::/64, ...) and the kept addresses above stay.
One random key per Scrubber: the same input gets the same pseudonym within one output, different ones in
another.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from typing import Iterable, Mapping

_MAC = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}(?![\w:])")
_V4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w.])")
_V6 = re.compile(r"(?<![\w:.])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?:/\d{1,3})?(?![\w:])")


_V4_POOL = (10,) + tuple(range(240, 255))  # first octets of the /8s IPv4 pseudonyms live in
_V6_TARGET = ipaddress.IPv6Network("fd00::/8")
_V4_KEEP = tuple(map(ipaddress.IPv4Network, ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32")))
_V6_KEEP = tuple(map(ipaddress.IPv6Network, ("::/128", "::1/128", "ff00::/8")))
# link-local: (block, bits kept as they are); fe80::/10 keeps its /64 (Linux uses fe80::/64 alone) and scrubs the
# interface identifier, which often carries the MAC
_V4_WITHIN = ((ipaddress.IPv4Network("169.254.0.0/16"), 16),)
_V6_WITHIN = ((ipaddress.IPv6Network("fe80::/10"), 64),)
_V6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class Scrubber:
    def __init__(self, key: bytes | None = None, names: Mapping[str, str] | Iterable[str] = ()) -> None:
        """``names``: host names to replace (a mapping name -> role label keeps the role in the pseudonym)."""
        self.key = key if key is not None else os.urandom(32)
        self._bits: dict[tuple[int, int, int], int] = {}
        self._addr: dict[str, str] = {}
        self._owner: dict[str, str] = {}  # pseudonym -> the address it was made for
        self.collisions = 0  # inputs moved off a pseudonym another input already had (see above)
        self._slots4: dict[int, int] = {}  # input /8 -> pool /8
        self._names: dict[str, str] = {}
        roles = dict(names) if isinstance(names, Mapping) else {n: "host" for n in names}
        for n, role in roles.items():
            self.add_name(n, role)

    def _prf(self, *parts: object) -> bytes:
        return hmac.new(self.key, "|".join(map(str, parts)).encode(), hashlib.sha256).digest()

    def _scramble(self, value: int, width: int, keep: int = 0, flip: int | None = None) -> int:
        """Bits ``keep``.. of ``value`` prefix-preservingly scrambled (bits before ``keep`` unchanged);
        bit ``flip`` is inverted rather than keyed (so the result differs from ``value`` there)."""
        out = value >> (width - keep) if keep else 0
        for i in range(keep, width):
            if i == flip:
                bit = 1
            else:
                prefix = value >> (width - i)  # the first i bits
                k = (width, i, prefix)
                bit = self._bits.get(k)  # type: ignore[assignment]
                if bit is None:
                    bit = self._bits[k] = self._prf("bit", width, i, prefix)[0] & 1
            out = (out << 1) | (((value >> (width - 1 - i)) & 1) ^ bit)
        return out

    def _place(self, a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
        v, width = int(a), a.max_prefixlen
        keep, within, target = (_V4_KEEP, _V4_WITHIN, None) if a.version == 4 else \
            (_V6_KEEP, _V6_WITHIN, _V6_TARGET)
        if any(a in net for net in keep):
            return v
        if a.version == 6 and a.ipv4_mapped is not None:
            return int(_V6_MAPPED.network_address) | self._place(a.ipv4_mapped)
        for net, bits in within:
            if a in net:
                return self._scramble(v, width, bits, bits)
        if a.version == 4:
            top = v >> 24
            slot = self._slot4(top)
            return (slot << 24) | (self._scramble(v, 32, 0, 8 if slot == top else None) & 0xFFFFFF)
        assert target is not None
        tlen = target.prefixlen
        low = self._scramble(v, width, 0, tlen if a in target else None) & ((1 << (width - tlen)) - 1)
        return int(target.network_address) | low

    def _slot4(self, top: int) -> int:
        """The pool /8 of input /8 ``top``: a free one while any is left, then a keyed shared one."""
        slot = self._slots4.get(top)
        if slot is None:
            used = set(self._slots4.values())
            free = [p for p in _V4_POOL if p not in used]
            slot = free[0] if free else _V4_POOL[self._prf("slot", top)[0] % len(_V4_POOL)]
            self._slots4[top] = slot
        return slot

    def _move(self, a: ipaddress.IPv4Address | ipaddress.IPv6Address, placed: int, attempt: int) -> int:
        """A keyed other pseudonym in the /8 of ``placed`` (for an input that met another's pseudonym)."""
        low_bits = a.max_prefixlen - 8
        low = int.from_bytes(self._prf("move", a, attempt), "big") & ((1 << low_bits) - 1)
        return (placed >> low_bits << low_bits) | low

    def address(self, addr: str) -> str:
        """Pseudonym of one IPv4/IPv6 address (text returned unchanged if it is not one)."""
        hit = self._addr.get(addr)
        if hit is not None:
            return hit
        try:
            a = ipaddress.ip_address(addr)
        except ValueError:
            return addr
        if a.version == 6 and a.scope_id:
            return addr  # a zone is never an input here (the text patterns stop before "%")
        placed = self._place(a)
        out, attempt = str(type(a)(placed)), 0
        while self._owner.get(out, str(a)) != str(a):  # taken by another input: stay one to one
            attempt += 1
            moved = self._move(a, placed, attempt)
            if moved != int(a):
                out = str(type(a)(moved))
        self.collisions += attempt > 0
        self._owner[out] = str(a)
        self._addr[addr] = out
        return out

    def prefix(self, text: str) -> str:
        """Pseudonym of ``ADDR/LEN``: the scrubbed address cut to LEN bits (host bits kept when the input had them)."""
        addr, _, plen = text.partition("/")
        scrubbed = self.address(addr)
        if not plen:
            return scrubbed
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            return text
        if iface.ip == iface.network.network_address:  # a network: keep it one
            net = ipaddress.ip_network(f"{scrubbed}/{plen}", strict=False)
            return str(net)
        return f"{scrubbed}/{plen}"

    def add_name(self, name: str, role: str = "host") -> str:
        if name not in self._names:
            self._names[name] = f"{role}-{self._prf('name', name).hex()[:6]}"
        return self._names[name]

    def name(self, name: str) -> str:
        return self._names.get(name) or self.add_name(name)

    def mac(self, mac: str) -> str:
        h = self._prf("mac", mac.lower())
        return ":".join(f"{b:02x}" for b in (bytes([h[0] & 0xFE | 0x02]) + h[1:6]))  # locally administered

    def text(self, s: str) -> str:
        """``s`` with every MAC, IPv4/IPv6 address or prefix and known host name replaced."""
        s = _MAC.sub(lambda m: self.mac(m.group(0)), s)
        s = _V4.sub(lambda m: self._maybe(m.group(0)), s)
        s = _V6.sub(lambda m: self._maybe(m.group(0)), s)
        if self._names:
            names = sorted(self._names, key=len, reverse=True)
            pattern = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
            s = pattern.sub(lambda m: self._names[m.group(1)], s)
        return s

    def _maybe(self, token: str) -> str:
        try:
            ipaddress.ip_interface(token)
        except ValueError:
            return token
        return self.prefix(token)
