"""The views' address owners: an address canonicalised exactly as ``ipaddress`` writes it (loopback, link-local
and non-addresses left out), with and without its IPv4 shortcut; the owner found is the device the simulated
fabric gave the address to."""

from __future__ import annotations

import dataclasses
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.ui import view

T0 = 1_764_000_000.0


def _by_ipaddress(text: str) -> str | None:
    """The definition: ipaddress's own answer."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return None if ip.is_loopback or ip.is_link_local else str(ip)


_octet = st.one_of(st.integers(0, 255).map(str), st.integers(256, 999).map(str),
                   st.integers(0, 99).map(lambda i: f"0{i}"), st.sampled_from(["", "-1", "+1", " 1", "1 ", "٣", "²",
                                                                               "0x1", "1_0"]))
_v4ish = st.lists(_octet, min_size=3, max_size=5).map(".".join)
_v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
_special = st.sampled_from(["127.0.0.1", "127.255.255.255", "126.255.255.255", "128.0.0.0", "169.254.0.1",
                            "169.254.255.255", "169.253.255.255", "169.255.0.0", "0.0.0.0", "255.255.255.255",
                            "::1", "fe80::1", "fe80::1%swp1", "::ffff:127.0.0.1", "::ffff:1.2.3.4", "2001:db8::1",
                            "2001:DB8:0:0:0:0:0:1", "1.2.3.4/32", "1.2.3", "1.2.3.4.5", "::", "::ffff:7f00:1",
                            "::ffff:a9fe:1", "::ffff:0:1", "1:0:2:3:4:5:6:7", "1:0:0:2:0:0:3:4", "1::2:3:4:5:6:7",
                            "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "2001:db8::1 ", "2001:db8::\x00"])
_v6 = st.integers(0, 2**128 - 1).map(lambda i: ipaddress.IPv6Address(i).exploded)
_group = st.one_of(st.integers(0, 0xFFFF).map(lambda g: f"{g:x}"), st.integers(0, 0xFFFF).map(lambda g: f"{g:04X}"),
                   st.sampled_from(["0", "00", "0000", "", "fe80", "FE80", "febf", "fec0", "fe8", "ffff", "10000",
                                    "g", "1.2.3.4", "0::"]))
_v6_forms = st.lists(_group, min_size=2, max_size=9).map(":".join)  # compressed, not, valid or not (":" runs)
_v6_sparse = st.tuples(st.integers(0, 7), st.integers(0, 8), st.integers(0, 2**128 - 1)).map(
    lambda t: str(ipaddress.IPv6Address(t[2] & ~(((1 << (16 * t[1])) - 1) << (16 * t[0])) & (2**128 - 1))))


@settings(max_examples=5000, deadline=None)
@given(text=st.one_of(_v4ish, _v4, _special, _v6, _v6_forms, _v6_sparse, st.text(max_size=16),
                      st.text(alphabet="0123456789abcdefABCDEF:.%", max_size=40)))
def test_canonical_owner_is_ipaddress_s_answer(text):
    view._CANONICAL.clear()
    assert view._canonical_owner(text) == _by_ipaddress(text)
    assert view._canonical_owner(text) == _by_ipaddress(text)  # and from its cache


def test_owners_are_the_devices_the_simulator_addressed():
    """Each address's owner is the device holding it; one every server holds (the anycast address), the first
    of them in the snapshot; loopback and link-local ones are nobody's."""
    sim = SimFabric(SimConfig(spines=3, leaves=5, servers_per_leaf=2), clock=lambda: T0)
    snap = sim.snapshot(int(T0 * 1000))
    owners = view.address_owners(snap)
    holders: dict[str, list[str]] = {}
    for name, st_ in snap.devices.items():
        for itf in st_.interfaces:
            for a in itf.addresses:
                holders.setdefault(a.local, []).append(name)
    shared = {a for a, h in holders.items() if len(h) > 1}
    assert shared == {"127.0.0.1", "::1"} | {str(ipaddress.ip_network(p).network_address) for p in snap.anycast_prefixes}
    for addr, names in holders.items():
        if _by_ipaddress(addr) is None:
            assert addr not in owners
        else:
            assert owners[_by_ipaddress(addr)] == names[0], addr
    assert len(owners) >= 2 * (3 * 5 + 5 * 2)


def _direct(snap, prefixes):  # noqa: ANN001, ANN202
    """Every group view worked out afresh, nothing memoised: the definition."""
    owners = view._address_owners(snap)
    states = sorted(snap.devices.values(), key=lambda s: (view.ROLE_ORDER.index(s.device.role), s.device.name))
    return [view.group_view(s, p, owners) for p in prefixes for s in states if s.collected_at_ms is not None]


def test_group_views_are_the_same_objects_for_the_same_snapshot_and_equal_a_fresh_computation():
    sim = SimFabric(SimConfig(spines=2, leaves=3), clock=lambda: T0)
    snap = sim.snapshot(int(T0 * 1000))
    prefixes = tuple(snap.anycast_prefixes)
    first = view.group_views(snap, prefixes)
    assert view.group_views(snap, list(prefixes)) is first
    assert first == _direct(snap, prefixes) and len(first) == len(snap.devices) * len(prefixes)


def test_group_views_of_later_snapshots_are_worked_out_afresh_where_devices_or_owners_changed():
    from anycast_tui.model.types import FabricSnapshot
    from anycast_tui.session import SimSession

    sim = SimFabric(SimConfig(spines=3, leaves=4), clock=lambda: T0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    prefixes = tuple(session.timeline.anycast_prefixes)
    first = session.timeline.snapshot
    assert view.group_views(first, prefixes) == _direct(first, prefixes)
    sim.fail_device("leaf02")  # the spines' groups lose a member; leaf02 goes stale
    session.poll()
    second = session.timeline.snapshot
    assert view.group_views(second, prefixes) == _direct(second, prefixes) != _direct(first, prefixes)
    # the same device states but leaf01's, its addresses gone: the spines' next hops to it lose its name
    devs = dict(second.devices)
    devs["leaf01"] = dataclasses.replace(devs["leaf01"], interfaces=tuple(
        dataclasses.replace(i, addresses=()) for i in devs["leaf01"].interfaces))
    third = FabricSnapshot(second.taken_at_ms + 1, devs, second.anycast_prefixes)
    got = view.group_views(third, prefixes)
    assert got == _direct(third, prefixes) != view.group_views(second, prefixes)
    assert not any(h.neighbour == "leaf01" for g in got for h in g.hops)
    assert any(h.neighbour == "leaf01" for g in view.group_views(second, prefixes) for h in g.hops)
