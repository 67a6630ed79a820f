"""Consistent pseudonyms for addresses, MACs and host names (``--scrub``).

Where pseudonyms land (never in routable space, so a shared report can't point at anybody's network):

* IPv4 -> 10.0.0.0/8 (RFC 1918).  Chosen over 198.18.0.0/15 (RFC 2544 benchmarking) because it keeps 24
  bits of structure instead of 17 and every reader knows it is private; the lab itself numbers its fabric
  from 198.18.0.0/15, so pseudonyms there would be easy to mistake for lab addresses.
* IPv6 -> fd00::/8 (RFC 4193 unique local), 120 bits of structure (2001:db8::/32 would keep 96).
* Kept as they are, because they are the same on every host and identify nothing (and the views must
  still recognise them): 0.0.0.0/8 (with the default route 0.0.0.0/0), 127.0.0.0/8, 224.0.0.0/4,
  255.255.255.255, ::, ::1, ff00::/8 (so ::/0 too).
* Link-local stays link-local: 169.254.0.0/16 maps inside itself; fe80::/10 keeps its first 64 bits and
  scrubs the interface identifier (which often carries a MAC).  ::ffff:a.b.c.d carries its IPv4 pseudonym.

Mapping (Crypto-PAn style, prefix-preserving): output bit i is input bit i XOR a keyed PRF of input bits
0..i-1, then the first 8 bits (IPv4, IPv6) are replaced by the target block's.  So two addresses in the same
/8 share exactly as many leading bits after scrubbing as before, and an address inside a prefix of /8 or
longer stays inside that prefix's pseudonym.  Addresses from different /8s are mapped independently
into the one /8 (32 bits into 24 cannot all stay apart: two such addresses share a pseudonym with chance
2^-24, counted in ``Scrubber.collisions``).  Never the original: an input already inside the target block
(or link-local) has its first scrubbed bit flipped, so every address and every prefix longer than the
part kept changes; only prefixes of the block itself (10.0.0.0/8, fe80::/64, ...) and the kept addresses
above stay.
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


_V4_TARGET = ipaddress.IPv4Network("10.0.0.0/8")
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
        self.collisions = 0  # pseudonyms made for two different addresses (different /8s; see above)
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
        keep, within, target = (_V4_KEEP, _V4_WITHIN, _V4_TARGET) if a.version == 4 else \
            (_V6_KEEP, _V6_WITHIN, _V6_TARGET)
        if any(a in net for net in keep):
            return v
        if a.version == 6 and a.ipv4_mapped is not None:
            return int(_V6_MAPPED.network_address) | self._place(a.ipv4_mapped)
        for net, bits in within:
            if a in net:
                return self._scramble(v, width, bits, bits)
        tlen = target.prefixlen
        low = self._scramble(v, width, 0, tlen if a in target else None) & ((1 << (width - tlen)) - 1)
        return int(target.network_address) | low

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
        out = str(type(a)(self._place(a)))
        other = self._owner.setdefault(out, str(a))
        if other != str(a):
            self.collisions += 1
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
