"""model.types.RouteTable over record.codec.EncodedRoutes: a route table as the bus brings it, built on use.

Whatever is read from it (the whole table, one route, some routes, the keys, equality, hash, a pickle) equals
what the routes themselves give, and a malformed chunk is refused when it arrives, not when a lookup later
reaches the bad part."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.fleet import wire
from anycast_tui.model.types import (Device, DeviceState, Nexthop, Route, RouteTable, route_keys,
                                     select_routes)
from anycast_tui.record.codec import (EncodedRoutes, chunk_of_routes, decode_chunk, encode, encode_chunk,
                                      routes_of_chunk, split_chunks)

text = st.text(max_size=8)
opt = st.none() | text
flags = st.lists(text, max_size=3).map(tuple)
extra = st.lists(st.tuples(text, text), max_size=3).map(tuple)
nexthops = st.builds(Nexthop, opt, opt, st.integers(1, 256), flags, st.none() | st.sampled_from([4, 6]), extra)
routes = st.builds(Route, st.sampled_from(["192.0.2.53/32", "198.18.0.0/24", "2001:db8::/64", "0.0.0.0/0"]) | text,
                   st.sampled_from([4, 6]), st.sampled_from(["unicast", "local"]), st.sampled_from(["main", "local", "7"]),
                   opt, opt, st.none() | st.integers(0, 2**32), opt, st.none() | st.integers(1, 10**6),
                   st.lists(nexthops, max_size=3).map(tuple), flags, extra)


def _received(rs: list[Route]) -> RouteTable:
    """The table as a viewer gets it: encoded by the publisher, through JSON, decoded by the wire."""
    got = routes_of_chunk(json.loads(json.dumps(encode_chunk([encode(r) for r in rs]))))
    assert isinstance(got, RouteTable)
    return got


@settings(max_examples=200, deadline=None)
@given(st.lists(routes, max_size=12), st.data())
def test_a_received_table_reads_as_its_routes(rs, data):
    want = tuple(rs)
    keys = [r.key for r in rs]
    t = _received(rs)
    assert len(t) == len(want) and bool(t) == bool(want)
    assert list(route_keys(t)) == keys and not t.built  # keys without building
    positions = data.draw(st.lists(st.integers(0, len(rs) - 1), max_size=5)) if rs else []
    assert t.pick(positions) == tuple(want[p] for p in positions) and not t.built
    for i in range(-len(rs), len(rs)):
        assert t[i] == want[i] and type(t[i]) is Route and repr(t[i]) == repr(want[i])
    with pytest.raises(IndexError):
        t[len(rs)]
    prefix = rs[0].dst if rs else "192.0.2.53/32"
    assert select_routes(t, (prefix,)) == select_routes(want, (prefix,)) == tuple(r for r in rs if r.dst == prefix)
    assert t.positions({prefix, "0.0.0.0/0"}) == [p for p, r in enumerate(rs) if r.dst in (prefix, "0.0.0.0/0")]
    main = tuple(r for r in rs if r.dst in (prefix, "2001:db8::/64") and r.table == "main")
    assert select_routes(t, {prefix, "2001:db8::/64"}, lambda k: k[0] == "main") == main
    assert select_routes(t, keep=lambda k: k[2] is None) == tuple(r for r in rs if r.metric is None)
    assert list(t.keys(positions)) == [keys[p] for p in positions]
    assert not t.built
    # equality and hash as the tuple's, both ways, built or not
    other = _received(rs)
    assert t == other and other == t and not t.built and not other.built  # compared encoded
    assert t == want and want == t
    assert hash(t) == hash(want) and t.built
    assert t[1:3] == want[1:3] and list(t) == list(want) and tuple(t) == want
    assert t == other and other == want and list(route_keys(t)) == keys
    assert pickle.loads(pickle.dumps(t)) == want
    if rs:
        shorter = _received(rs[:-1])
        assert shorter != t and t != shorter and shorter != want
        changed = _received(rs[:-1] + [Route("203.0.113.0/24", 4, metric=7)])
        assert (changed == t) == (rs[-1] == Route("203.0.113.0/24", 4, metric=7))


@given(st.lists(routes, max_size=8))
def test_a_received_table_is_sent_on_as_it_came(rs):
    """A recorder or a relay re-encoding what it received hands the chunk on unbuilt, and it is the one the
    publisher made from the routes."""
    chunk = encode_chunk([encode(r) for r in rs])
    t = _received(rs)
    assert chunk_of_routes(t) == chunk and not t.built
    t.routes()
    assert chunk_of_routes(t) == chunk == chunk_of_routes(tuple(rs))


def test_a_chunk_with_templates_no_route_uses_is_read_whole():
    """Another writer (or a hostile one) may send templates beyond those its routes use."""
    a, b = Route("10.0.0.0/8", 4, metric=5), Route("2001:db8::/32", 6)
    t = RouteTable(EncodedRoutes({"d": ["10.0.0.0/8"], "t": json.dumps([encode(a)[1:], encode(b)[1:]]), "i": [0]}))
    assert t.pick([0]) == (a,) and t.routes() == (a,) and list(route_keys(t)) == [a.key]


def test_a_malformed_chunk_is_refused_on_arrival():
    good = encode_chunk([encode(Route("10.0.0.0/8", 4)), encode(Route("10.1.0.0/16", 6, metric=5))])
    template = '[4, "unicast", "main", null, null, null, null, null, '
    bad = [{**good, "i": [0]}, {**good, "i": [0, 5]}, {**good, "i": [0, -1]}, {**good, "i": [0, True]},
           {"d": good["d"], "t": good["t"]}, {**good, "t": '[["x"], 4]'}, {**good, "t": "[[4"},
           {**good, "d": ["10.0.0.0/8", 7]}, {**good, "d": "10.0.0.0/8"},
           {"d": ["10.0.0.0/8"], "t": "[[]]"},  # too few values
           {"d": ["10.0.0.0/8"], "t": "[[" + ",".join(["4"] * 12) + "]]"},  # too many
           {"d": ["10.0.0.0/8"], "t": "[" + template + "[5]]]"}]  # a next hop that is not a record
    for chunk in bad:
        with pytest.raises((ValueError, TypeError, KeyError, IndexError)):
            EncodedRoutes(chunk)
    # through the wire: one WireError for the message, nothing later
    state = DeviceState(Device("leaf01"), routes=(Route("10.0.0.0/8", 4),))
    body = json.loads(json.dumps(wire.state_body("s", "c", state, wire.FIELDS, full=True, prev_seq=None)))
    assert isinstance(wire.read_state(body).fields["routes"], RouteTable)
    for chunk in bad:
        with pytest.raises(wire.WireError):
            wire.read_state({**body, "x": {**body["x"], "routes": chunk}})


@settings(max_examples=150, deadline=None)
@given(st.lists(routes, max_size=40), st.sampled_from([(256, 63), (4, 1), (3, 0), (1, 7)]))
def test_a_received_table_is_recorded_in_the_same_chunks_as_its_routes(rs, cut):
    """A recorder on the bus cuts a table it received encoded where it would cut the routes themselves, into
    the same chunks (so they are stored once, whichever way the table came), without building it."""
    t = _received(rs)
    got = split_chunks(t, *cut)
    assert got == split_chunks(tuple(rs), *cut) and not t.built
    assert [r for c in got for r in decode_chunk(json.loads(json.dumps(c)))] == rs


def _received_snapshot(snap):
    import dataclasses

    return dataclasses.replace(snap, devices={n: dataclasses.replace(st, routes=_received(list(st.routes)))
                                              for n, st in snap.devices.items()})


def test_a_what_if_device_failure_reads_only_its_neighbours_tables():
    """``whatif.fail_device`` on a fabric as the bus brings it: the same fabric as with the routes themselves;
    only the devices with a next hop via the failed one are edited (built), the others are the same objects."""
    from anycast_tui.lab.sim import SimFabric
    from anycast_tui.model import whatif

    snap = SimFabric().snapshot(1)
    received = _received_snapshot(snap)
    want, got = whatif.fail_device(snap, "leaf01"), whatif.fail_device(received, "leaf01")
    assert set(want.devices) == set(got.devices) == set(snap.devices) - {"leaf01"}
    untouched = {n for n, st in got.devices.items() if st is received.devices[n]}
    assert not any(received.devices[n].routes.built for n in untouched)
    for name, state in got.devices.items():
        assert tuple(state.routes) == tuple(want.devices[name].routes), name
        assert state.nexthops == want.devices[name].nexthops, name
    edited = set(got.devices) - untouched
    assert edited == {n for n, st in want.devices.items() if st is not snap.devices[n]}
    assert edited == {"spine01", "spine02", "server01"}  # leaf01's links in the demo fabric
