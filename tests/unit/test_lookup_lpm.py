"""model.placement.lookup against longest-prefix match done by ``ipaddress``, IPv4 and IPv6, for a few
destinations (each walks the table in integers) and for many (vectorised), on random tables."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.placement import FEW_ROWS, compiled_for, place
from anycast_tui.model.types import Device, DeviceState, Flow, Nexthop, Route
from anycast_tui.record.codec import chunk_of_routes, routes_of_chunk


def _net(version: int, bits: int, plen: int) -> str:
    width = 32 if version == 4 else 128
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return str(cls((bits & ((1 << width) - 1) & ~((1 << (width - plen)) - 1), plen)))


def _near(draw, version: int, base: int) -> int:
    width = 32 if version == 4 else 128
    return (base ^ draw(st.integers(0, 255)) << draw(st.integers(0, width - 8))) & ((1 << width) - 1)


@st.composite
def tables(draw):
    version = draw(st.sampled_from([4, 6]))
    width = 32 if version == 4 else 128
    base = draw(st.integers(0, (1 << width) - 1))  # routes and destinations near each other: prefixes nest
    nets = {_net(version, _near(draw, version, base), draw(st.integers(0, width)))
            for _ in range(draw(st.integers(1, 40)))}
    count = draw(st.sampled_from([1, 3, FEW_ROWS, FEW_ROWS + 1, 60]))
    addr = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    dsts = [str(addr(_near(draw, version, base))) for _ in range(count)]
    return version, sorted(nets), dsts


def _oracle(nets: list[str], dst: str) -> str | None:
    d = ipaddress.ip_address(dst)
    hits = [ipaddress.ip_network(n) for n in nets if d in ipaddress.ip_network(n)]
    return str(max(hits, key=lambda n: n.prefixlen)) if hits else None


@settings(max_examples=300, deadline=None)
@given(tables())
def test_lookup_is_longest_prefix_match(table):
    version, nets, dsts = table
    gw = "198.18.0.1" if version == 4 else "2001:db8::1"
    routes = tuple(Route(n, version, nexthops=(Nexthop(gw, "eth0"),)) for n in nets)
    src = "203.0.113.1" if version == 4 else "2001:db8:ffff::1"
    flows = FlowArray.from_flows([Flow(6, src, 1000 + i, d, 80) for i, d in enumerate(dsts)])
    p = place(DeviceState(Device("r1"), routes=routes), flows)
    got = [p.choices[c].route for c in p.choice]
    assert got == [_oracle(nets, d) for d in dsts]


@st.composite
def tables_with_metrics(draw):
    """A table whose prefixes may appear twice (two metrics, or the same one) and whose routes may have every next
    hop dead, and destinations near them."""
    version, nets, dsts = draw(tables())
    routes = []
    for i, n in enumerate(nets):
        for k in range(draw(st.integers(1, 2))):
            routes.append((n, draw(st.sampled_from([None, 10, 20])), draw(st.booleans()), len(routes)))
    return version, draw(st.permutations(routes)), dsts


def _oracle_route(version: int, routes: list, dst: str) -> int | None:
    """The kernel's choice by its rules: among the usable routes holding ``dst``, the longest prefix, then the
    lowest metric, then the first in table order; the route's number (None: no route)."""
    d = ipaddress.ip_address(dst)
    hits = [(ipaddress.ip_network(n).prefixlen, -(m or 0), -pos, num)
            for pos, (n, m, dead, num) in enumerate(routes) if not dead and d in ipaddress.ip_network(n)]
    return max(hits)[3] if hits else None


@settings(max_examples=300, deadline=None)
@given(tables_with_metrics())
def test_lookup_skips_unusable_routes_and_prefers_the_lowest_metric_resolved_on_use_or_up_front(table):
    """The same answers whether every route is resolved up front (``place`` of a state: ``compile_device``) or
    on use (``compiled_for``, what live sessions share), for a few destinations and for many, and on a table as
    the bus brings it (``RouteTable``: routes built on use)."""
    version, routes, dsts = table
    gw = (lambda num: f"198.18.{num // 250}.{1 + num % 250}") if version == 4 else (lambda num: f"2001:db8::{num + 1:x}")
    table_ = tuple(Route(n, version, metric=m, nexthops=(Nexthop(gw(num), "eth0", flags=("dead",) if dead else ()),))
                   for n, m, dead, num in routes)
    src = "203.0.113.1" if version == 4 else "2001:db8:ffff::1"
    flows = FlowArray.from_flows([Flow(6, src, 1000 + i, d, 80) for i, d in enumerate(dsts)])
    state = DeviceState(Device("r1"), routes=table_)
    want = [gw(num) if (num := _oracle_route(version, routes, d)) is not None else None for d in dsts]
    received = replace(state, routes=routes_of_chunk(json.loads(json.dumps(chunk_of_routes(table_)))))
    for p in (place(state, flows), place(compiled_for(state), flows), place(compiled_for(received), flows)):
        assert [p.choices[c].gateway for c in p.choice] == want
