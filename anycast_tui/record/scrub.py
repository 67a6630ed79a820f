"""Consistent pseudonyms for addresses, MACs and host names (``--scrub``).

Addresses are mapped prefix-preservingly (Crypto-PAn style: output bit i is
input bit i XOR a keyed PRF of input bits 0..i-1), so two addresses sharing
their first k bits share exactly k bits after scrubbing, and an address inside
a prefix stays inside that prefix's pseudonym.  One random key per Scrubber:
the same input gets the same pseudonym within one output, different ones in
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


class Scrubber:
    def __init__(self, key: bytes | None = None, names: Mapping[str, str] | Iterable[str] = ()) -> None:
        """``names``: host names to replace (a mapping name -> role label keeps the role in the pseudonym)."""
        self.key = key if key is not None else os.urandom(32)
        self._bits: dict[tuple[int, int, int], int] = {}
        self._addr: dict[str, str] = {}
        self._names: dict[str, str] = {}
        roles = dict(names) if isinstance(names, Mapping) else {n: "host" for n in names}
        for n, role in roles.items():
            self.add_name(n, role)

    def _prf(self, *parts: object) -> bytes:
        return hmac.new(self.key, "|".join(map(str, parts)).encode(), hashlib.sha256).digest()

    def _scramble(self, value: int, width: int) -> int:
        out = 0
        for i in range(width):
            prefix = value >> (width - i)  # the first i bits
            k = (width, i, prefix)
            bit = self._bits.get(k)
            if bit is None:
                bit = self._bits[k] = self._prf("bit", width, i, prefix)[0] & 1
            out = (out << 1) | (((value >> (width - 1 - i)) & 1) ^ bit)
        return out

    def address(self, addr: str) -> str:
        """Pseudonym of one IPv4/IPv6 address (text returned unchanged if it is not one)."""
        hit = self._addr.get(addr)
        if hit is not None:
            return hit
        try:
            a = ipaddress.ip_address(addr)
        except ValueError:
            return addr
        width = a.max_prefixlen
        out = str(ipaddress.ip_address(self._scramble(int(a), width)) if a.version == 4
                  else ipaddress.IPv6Address(self._scramble(int(a), width)))
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
