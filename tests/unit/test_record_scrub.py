"""Scrubbing: consistent pseudonyms, prefix structure kept, nothing original left in text."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st

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


def test_common_prefix_length_is_kept_within_an_8():
    s = Scrubber(b"key")
    rnd = random.Random(1)
    for top in (10, 192, 198):
        addrs = [str(ipaddress.IPv4Address((top << 24) | rnd.getrandbits(24))) for _ in range(30)]
        addrs += [f"{top}.18.0.1", f"{top}.18.0.2", f"{top}.18.1.1", f"{top}.0.2.53", f"{top}.0.2.54"]
        for a in addrs:
            for b in addrs:
                assert _common_bits(s.address(a), s.address(b)) == _common_bits(a, b)
    addrs6 = ["2001:db8::1", "2001:db8::2", "2001:db8:53::53", "2001:db8:1::6", "2001:dff::1"]
    for group in (addrs6, ["fe80::1", "fe80::2", "fe80::4638:39ff:fe00:603", "fe80:0:0:1::1"]):
        for a in group:
            for b in group:
                assert _common_bits(s.address(a), s.address(b)) == _common_bits(a, b)


# --------------------------------------------------------------------------- invariants (hypothesis)

V4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
V6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
# addresses where fabrics live, so that prefixes and neighbours are often drawn from the same /8
NEAR4 = st.sampled_from([10, 172, 192, 198, 203]).flatmap(
    lambda top: st.integers(0, 2**24 - 1).map(lambda low: ipaddress.IPv4Address((top << 24) | low)))
NEAR6 = st.sampled_from([0x2001_0DB8, 0xFD00_0001, 0xFE80_0000, 0x2A00_0000]).flatmap(
    lambda top: st.integers(0, 2**96 - 1).map(lambda low: ipaddress.IPv6Address((top << 96) | low)))
ADDRS = st.one_of(V4, V6, NEAR4, NEAR6)
KEPT = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32",
                                          "::/128", "::1/128", "ff00::/8")]
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "240.0.0.0/4", "169.254.0.0/16", "fd00::/8", "fe80::/10",
                                             "::ffff:10.0.0.0/104", "::ffff:240.0.0.0/100",
                                             "::ffff:169.254.0.0/112")]
KEY = b"hypothesis"


def _kept(a) -> bool:
    return any(a.version == n.version and a in n for n in KEPT) or \
        (a.version == 6 and a.ipv4_mapped is not None and _kept(a.ipv4_mapped))


@settings(max_examples=300, deadline=None)
@given(ADDRS)
def test_pseudonyms_are_private_never_the_original_and_stable(a):
    s = Scrubber(KEY)
    out = ipaddress.ip_address(s.address(str(a)))
    assert out.version == a.version
    assert s.address(str(a)) == str(out) == Scrubber(KEY).address(str(a))  # same input, same pseudonym
    if _kept(a):
        assert out == a
    else:
        assert out != a
        assert any(out.version == n.version and out in n for n in PRIVATE), out
        if a.is_link_local:
            assert out.is_link_local


@settings(max_examples=300, deadline=None)
@given(st.one_of(NEAR4, NEAR6, V4, V6), st.data())
def test_an_address_inside_a_prefix_stays_inside_its_pseudonym(a, data):
    """For prefixes of /8 or longer (the block a pseudonym keeps), and prefixes that hold no kept or
    link-local block inside them (those keep their own place)."""
    plen = data.draw(st.integers(8, a.max_prefixlen))
    net = ipaddress.ip_network(f"{a}/{plen}", strict=False)
    assume(not any(n.version == net.version and n.subnet_of(net) and n != net for n in KEPT + PRIVATE[1:4:2]))
    host = type(a)(int(net.network_address) | data.draw(st.integers(0, net.num_addresses - 1)))
    s = Scrubber(KEY)
    snet = ipaddress.ip_network(s.prefix(str(net)))
    assert snet.prefixlen == plen
    assert ipaddress.ip_address(s.address(str(host))) in snet
    if not _kept(a) and not any(net.subnet_of(n) for n in KEPT if n.version == net.version) \
            and plen > 8 + (56 if a.is_link_local and a.version == 6 else 8 if a.is_link_local else 0):
        assert snet != net  # longer than the block it lands in: never the original


@settings(max_examples=200, deadline=None)
@given(st.one_of(NEAR4, NEAR6), st.data())
def test_two_addresses_of_one_8_keep_their_common_prefix(a, data):
    width = a.max_prefixlen
    bits = data.draw(st.integers(8, width))
    b = type(a)((int(a) >> (width - bits) << (width - bits)) | data.draw(st.integers(0, 2 ** (width - bits) - 1)))
    s = Scrubber(KEY)
    sa, sb = s.address(str(a)), s.address(str(b))
    if not _kept(a) and not _kept(b) and a.is_link_local == b.is_link_local:
        assert _common_bits(sa, sb) == _common_bits(str(a), str(b))
        assert (sa == sb) == (a == b)


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


def test_each_8_gets_its_own_private_8_so_no_two_inputs_share_a_pseudonym():
    """Up to 16 input /8s: one to one with full structure (the first /8 seen lands in 10.0.0.0/8)."""
    s = Scrubber(b"k")
    rnd = random.Random(7)
    tops = [192, 10, 172, 198, 203, 100, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    assert s.address("192.0.2.1").startswith("10.")  # the first /8 seen
    addrs = {str(ipaddress.IPv4Address((t << 24) | rnd.getrandbits(24))) for t in tops for _ in range(300)}
    out = {a: s.address(a) for a in addrs}
    assert len(set(out.values())) == len(addrs) and s.collisions == 0
    assert {int(ipaddress.ip_address(o)) >> 24 for o in out.values()} == {10, *range(240, 255)}
    # networks of different /8s stay different networks
    assert len({s.prefix(f"{t}.0.0.0/8") for t in tops}) == len(tops)
    assert len({s.prefix(f"{t}.18.0.0/16") for t in tops}) == len(tops)


def test_beyond_16_eights_inputs_are_moved_not_merged():
    s = Scrubber(b"k")
    rnd = random.Random(3)
    addrs = {str(ipaddress.IPv4Address((t << 24) | rnd.getrandbits(8))) for t in range(1, 120) for _ in range(40)}
    out = [s.address(a) for a in sorted(addrs)]
    assert len(set(out)) == len(addrs)  # one to one, whatever the squeeze
    assert all(ipaddress.ip_address(o) in PRIVATE[0] or ipaddress.ip_address(o) in PRIVATE[1] for o in out)
    assert all(s.address(a) == o for a, o in zip(sorted(addrs), out))  # stable after the moves


def _past_the_pool() -> Scrubber:
    """A scrubber (key ``k``) given the 16 input /8s the IPv4 pool has /8s for: a 17th input /8 shares one."""
    s = Scrubber(b"k")
    for top in range(1, 17):
        s.address(f"{top}.0.0.1")
    return s


def _meeting_inputs() -> tuple[str, str]:
    """An input of 17.0.0.0/8 and one of the /8 it shares a pool /8 with whose pseudonyms (each scrubbed where
    nothing took its pseudonym first) are the same address: found among 6,000 of each (key k: one pair is)."""
    probe = _past_the_pool()
    pool8 = probe.address("17.0.0.1").split(".")[0]
    top = next(t for t in range(1, 17) if probe.address(f"{t}.0.0.1").split(".")[0] == pool8)
    ours, theirs = _past_the_pool(), _past_the_pool()
    spread = [i * 2654435761 % (1 << 24) for i in range(6_000)]
    first = {ours.address(str(ipaddress.IPv4Address(top << 24 | low))): top << 24 | low for low in spread}
    for low in spread:
        mine = str(ipaddress.IPv4Address(17 << 24 | low))
        if (other := first.get(theirs.address(mine))) is not None:
            return str(ipaddress.IPv4Address(other)), mine
    raise AssertionError("no two inputs meet")


def test_an_input_meeting_a_taken_pseudonym_is_moved_and_counted():
    taker, late = _meeting_inputs()
    natural = _past_the_pool().address(late)
    s = _past_the_pool()
    assert s.address(taker) == natural  # another input is given it first
    moved = s.address(late)
    assert moved != natural and moved != late and s.collisions == 1
    assert ipaddress.ip_address(moved) in ipaddress.ip_network(natural.split(".")[0] + ".0.0.0/8")
    assert s.address(late) == moved
