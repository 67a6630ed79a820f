"""The incident book's link peers: the device at the other end of a device's port, found by a shared subnet,
against the simulated fabric's own cabling; the integer subnet test against ``ipaddress`` itself."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.incidents import _Context, _in_net

T0 = 1_764_000_000.0


def _context(snap):  # noqa: ANN001, ANN202
    return _Context(snap, snap, snap.anycast_prefixes, {}, {}, {}, {})


def test_every_port_s_peer_is_the_device_cabled_to_it():
    sim = SimFabric(SimConfig(spines=3, leaves=5, servers_per_leaf=2), clock=lambda: T0)
    snap = sim.snapshot(int(T0 * 1000))
    ctx = _context(snap)
    checked = 0
    for name in sim.devices:
        for port in sim.ports(name):
            want = sim.peer(name, port)
            if want is None:
                continue
            assert ctx.link_peer(name, port) == want, (name, port)
            checked += 1
    assert checked >= 2 * (3 * 5 + 5 * 2)  # both ends of every spine-leaf and leaf-server link


_v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
_v6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
_v6_long = st.integers(0, 2**128 - 1).map(lambda i: ipaddress.IPv6Address(i).exploded)
_text = st.one_of(_v4, _v6, _v6_long, st.text(max_size=12), st.sampled_from(["fe80::1%swp1", "10.0.0.1/31",
                                                                              "01.2.3.4", "::ffff:1.2.3.4"]))


@settings(max_examples=2000, deadline=None)
@given(_text, st.one_of(_v4.flatmap(lambda a: st.tuples(st.just(a), st.integers(0, 32))),
                        _v6.flatmap(lambda a: st.tuples(st.just(a), st.integers(0, 128)))))
def test_in_net_is_ipaddress_membership(text, net_spec):
    net = ipaddress.ip_network(f"{net_spec[0]}/{net_spec[1]}", strict=False)
    try:
        want = ipaddress.ip_address(text) in net
    except ValueError:
        want = False
    assert _in_net(text, net.version, int(net.network_address), int(net.netmask)) == want
