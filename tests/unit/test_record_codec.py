"""Codec: every record type survives encode -> JSON -> decode unchanged, defaults and extras included."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import (Address, Bucket, DeviceState, Event, EventKind, GroupMember, Health, HealthStatus,
                                     Interface, Nexthop, NexthopGroup, NexthopObject, Route)
from anycast_tui.record.codec import (decode, decode_chunk, decode_chunks, decode_event, decode_snapshot, encode,
                                     encode_chunk, encode_event, encode_snapshot)

text = st.text(max_size=8)
opt = st.none() | text
flags = st.lists(text, max_size=3).map(tuple)
extra = st.lists(st.tuples(text, text), max_size=3).map(tuple)
nexthops = st.builds(Nexthop, opt, opt, st.integers(1, 256), flags, st.none() | st.sampled_from([4, 6]), extra)
routes = st.builds(Route, text, st.sampled_from([4, 6]), text, text, opt, opt, st.none() | st.integers(0, 2**32),
                   opt, st.none() | st.integers(1, 10**6), st.lists(nexthops, max_size=4).map(tuple), flags, extra)


_SAME = [Route(f"198.19.0.{k}/32", 4, protocol="bgp", metric=20, nexthops=(Nexthop("198.18.0.1", "eth0"),))
         for k in range(3)]  # routes sharing one template


def _json(x):
    return json.loads(json.dumps(x))


@settings(max_examples=150, deadline=None)
@given(routes)
def test_route_round_trip(route):
    assert decode(Route, _json(encode(route))) == route


@settings(max_examples=50, deadline=None)
@given(st.lists(routes, max_size=6))
def test_chunk_decoder_matches_the_generic_one(rs):
    encs = [_json(encode(r)) for r in rs]
    table: list = []
    rows = []
    for e in encs:
        if len(e) > 9:
            table.append(e[9])
            e = e[:9] + [len(table) - 1] + e[10:]
        rows.append(e)
    assert decode_chunk([table, rows]) == tuple(rs)


def _chunk(rs: list[Route]) -> list:
    table: list = []
    rows = []
    for e in (_json(encode(r)) for r in rs):
        if len(e) > 9:
            if e[9] not in table:
                table.append(e[9])
            e = e[:9] + [table.index(e[9])] + e[10:]
        rows.append(e)
    return [table, rows]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(routes, max_size=5), max_size=5))
def test_chunks_built_together_equal_route_by_route(parts):
    """The columnar builder (object.__new__ + slot setters) gives what Route(...) gives, chunk by chunk,
    whatever the rows leave out (short rows take the defaults) and however next hop lists are shared."""
    got = decode_chunks([_chunk(p) for p in parts])
    assert got == [tuple(p) for p in parts]
    for built, want in zip(got, parts):
        for b, w in zip(built, want):
            assert type(b) is Route and hash(b) == hash(w) and repr(b) == repr(w)
            assert all(getattr(b, f) == getattr(w, f) for f in Route.__slots__)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(routes | st.sampled_from(_SAME), max_size=6), max_size=5), st.booleans())
def test_template_chunks_decode_to_their_routes(parts, mixed):
    """Schema 3's chunks (destinations + sorted templates): every route comes back equal and of type Route,
    in a batch of template chunks alone or mixed with schemas 1-2's row chunks."""
    chunks = [_json(encode_chunk([_json(encode(r)) for r in p])) for p in parts]
    if mixed:
        chunks = [_chunk(p) if k % 2 else c for k, (p, c) in enumerate(zip(parts, chunks))]
    got = decode_chunks(chunks)
    assert got == [tuple(p) for p in parts]
    for built, want in zip(got, parts):
        for b, w in zip(built, want):
            assert type(b) is Route and hash(b) == hash(w) and repr(b) == repr(w)


def test_template_chunk_layout():
    a = Route("198.18.0.0/24", 4, protocol="bgp", metric=20, nexthops=(Nexthop("198.18.1.1", "eth0"),))
    b = Route("198.18.1.0/24", 4, protocol="bgp", metric=20, nexthops=(Nexthop("198.18.1.1", "eth0"),))
    c = Route("2001:db8::/64", 6, protocol="bgp", metric=20)
    one = encode_chunk([encode(a), encode(b)])
    assert one["d"] == ["198.18.0.0/24", "198.18.1.0/24"] and "i" not in one  # one template, no index
    two = encode_chunk([encode(c), encode(a), encode(c)])
    assert json.loads(two["t"]) == sorted(json.loads(two["t"]), key=lambda t: json.dumps(t, separators=(",", ":")))
    assert decode_chunks([two, one]) == [(c, a, c), (a, b)]
    shared = decode_chunks([one, _json(one)])  # equal next hop lists become one tuple
    assert shared[0][0].nexthops is shared[1][1].nexthops


def test_malformed_template_chunks_are_refused():
    import pytest

    good = encode_chunk([encode(Route("10.0.0.0/8", 4)), encode(Route("10.1.0.0/16", 6))])
    for bad in ({**good, "i": [0]}, {**good, "i": [0, 5]}, {"d": good["d"], "t": good["t"]},
                {**good, "t": '[["x"], 4]'}, {"d": ["10.0.0.0/8"], "t": "[[]]"},
                {"d": ["10.0.0.0/8"], "t": "[[" + ",".join(["4"] * 12) + "]]"}):
        with pytest.raises((ValueError, TypeError, KeyError, IndexError)):
            decode_chunks([bad])


def test_chunk_rows_with_too_many_or_too_few_values_are_refused():
    import pytest

    with pytest.raises(ValueError):
        decode_chunk([[], [["10.0.0.0/8", 4, "unicast", "main", None, None, None, None, None, -1, [], [], "x"]]])
    with pytest.raises(ValueError):
        decode_chunk([[], [["10.0.0.0/8"]]])


def test_every_type_round_trips():
    items = [
        Address(6, "2001:db8::1", 64, "global", None, ("tentative",), (("valid_lft", "forever"),)),
        Interface("swp1", 3, ("UP", "LOWER_UP"), "UP", 9216, "ether", "44:38:39:00:00:01", "br0", "p1",
                  (Address(4, "198.18.0.1", 31),), (("qdisc", "noqueue"),)),
        NexthopObject(10, "198.18.0.2", "swp1", "link", "zebra", False, False, ("onlink",), (("x", "y"),)),
        NexthopGroup(200, (GroupMember(1, 2), GroupMember(2)), "resilient", 32, 120, 0, 3, "zebra", ("f",),
                     (Bucket(200, 0, 1, 1.25, ("busy",), (("a", "b"),)),), (("k", "v"),)),
        Health(HealthStatus.STALE, 5, "timeout", 3, True),
        Event(1, "leaf01", EventKind.NEXTHOP_REMOVED, "192.0.2.53/32", "detail", "main", "192.0.2.53/32",
              Nexthop("198.18.0.2", "swp1", 3, ("dead",), 6, (("q", "r"),)), "4", "3"),
        Event(1, "leaf01", EventKind.LINK_DOWN, "swp1", "d"),
    ]
    for x in items:
        assert decode(type(x), _json(encode(x))) == x
    assert encode(Nexthop()) == []  # defaults are left out
    ev = items[5]
    assert decode_event(_json(encode_event(ev))) == ev


def test_simulated_snapshot_round_trips():
    sim = SimFabric(SimConfig(resilient=True))
    snap = sim.snapshot(1_790_000_000_000)
    assert any(g.bucket_table for s in snap.devices.values() for g in s.nexthops.groups)
    assert decode_snapshot(_json(encode_snapshot(snap))) == snap
    st_ = snap.devices["spine01"]
    assert decode(DeviceState, _json(encode(st_))) == st_
