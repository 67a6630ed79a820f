"""Scrubbing: consistent pseudonyms, prefix structure kept, nothing original left in text."""

from __future__ import annotations

import ipaddress
import random

from anycast_tui.record.scrub import Scrubber


def _common_bits(a: str, b: str) -> int:
    x, y = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))
    width = ipaddress.ip_address(a).max_prefixlen
    return width - (x ^ y).bit_length()


def test_same_input_same_pseudonym_and_keys_differ():
    s, t = Scrubber(), Scrubber()
    assert s.address("192.0.2.53") == s.address("192.0.2.53") != "192.0.2.53"
    assert s.address("192.0.2.53") != t.address("192.0.2.53")
    assert Scrubber(b"k").address("198.18.0.1") == Scrubber(b"k").address("198.18.0.1")
    assert s.name("leaf01") == s.name("leaf01") != s.name("leaf02")


def test_common_prefix_length_is_kept():
    s = Scrubber(b"key")
    rnd = random.Random(1)
    addrs = [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(50)]
    addrs += ["198.18.0.1", "198.18.0.2", "198.18.1.1", "192.0.2.53", "192.0.2.54"]
    addrs6 = ["2001:db8::1", "2001:db8::2", "2001:db8:53::53", "fe80::1"]
    for group in (addrs, addrs6):
        for a in group:
            for b in group:
                assert _common_bits(s.address(a), s.address(b)) == _common_bits(a, b)


def test_address_inside_a_prefix_stays_inside_its_pseudonym():
    s = Scrubber()
    net = ipaddress.ip_network(s.prefix("192.0.2.0/24"))
    assert net.prefixlen == 24 and str(net) != "192.0.2.0/24"
    for host in ("192.0.2.1", "192.0.2.53", "192.0.2.254"):
        assert ipaddress.ip_address(s.address(host)) in net
    assert ipaddress.ip_address(s.address("192.0.3.1")) not in net
    net6 = ipaddress.ip_network(s.prefix("2001:db8:53::/48"))
    assert ipaddress.ip_address(s.address("2001:db8:53::53")) in net6
    assert s.prefix("192.0.2.53/32") == s.address("192.0.2.53") + "/32"


def test_text_keeps_nothing_original():
    s = Scrubber(names={"leaf01": "leaf", "spine02": "spine"})
    text = ("leaf01 192.0.2.53/32: next hop via 198.18.1.2 dev swp1 removed; spine02 mac 44:38:39:00:00:01 "
            "via 2001:db8:1::6 at 2026-09-21T14:13:34.000Z, leaf010 stays")
    out = s.text(text)
    for original in ("leaf01 ", "spine02", "192.0.2.53", "198.18.1.2", "44:38:39:00:00:01", "2001:db8:1::6"):
        assert original not in out
    assert "2026-09-21T14:13:34.000Z" in out and "swp1" in out and "leaf010" in out
    assert s.text(text) == out
    assert s.name("leaf01").startswith("leaf-")
