"""The fleet's wire format and shard assignment, without a bus."""

from __future__ import annotations

import dataclasses
import os

import pytest

from anycast_tui.fleet import wire
from anycast_tui.fleet.conn import NatsConfigError, NatsOptions, parse_servers
from anycast_tui.fleet.shard import mine, owner, parse_shard
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.types import HealthStatus
from anycast_tui.record.schema import pack
from anycast_tui.session import SimSession


def _states():
    s = SimSession(SimFabric())
    s.poll()
    return s, dict(s.timeline.snapshot.devices)


@pytest.mark.parametrize("name", ["leaf01", "leaf01.dc1", "a*b", "x>y", "sp ace", "tab\tx", "_collector", "é",
                                  "a=2E", ""])
def test_token_is_one_safe_subject_token(name):
    t = wire.token(name)
    assert t and not any(c in t for c in ".*> \t\r\n") and t.isascii()
    assert not t.startswith("_")
    assert len(wire.state_subject("site.a", name).split(".")) == 4


def test_token_is_injective_on_tricky_names():
    names = ["a.b", "a=2Eb", "a_b", "a-b", "_a", "=5Fa", "a b", "a=20b"]
    assert len({wire.token(n) for n in names}) == len(names)


def test_full_and_delta_round_trip_to_the_same_state():
    s, before = _states()
    for name, st in before.items():
        msg = wire.read_state(wire.loads(wire.dumps(wire.state_body("a", "a", st, wire.FIELDS, full=True,
                                                                     prev_seq=None))))
        got = msg.apply(None)
        assert got == st, name
    s.sim.fail_device("leaf03")
    s.poll()
    after = s.timeline.snapshot.devices
    spine = after["spine01"]
    fields = wire.changed_fields(before["spine01"], spine)
    assert fields and "device" not in fields and len(fields) < len(wire.FIELDS)
    body = wire.state_body("a", "a", spine, fields, full=False, prev_seq=7)
    msg = wire.read_state(wire.loads(wire.dumps(body)))
    assert msg.prev_seq == 7 and msg.apply(before["spine01"]) == spine
    full = len(wire.dumps(wire.state_body("a", "a", spine, wire.FIELDS, full=True, prev_seq=None)))
    assert len(wire.dumps(body)) < full
    stale = after["leaf03"]
    assert stale.health.status is HealthStatus.STALE and not wire.changed_fields(before["leaf03"], stale)
    hm = wire.read_health(wire.loads(wire.dumps(wire.health_body("a", "a", stale))))
    assert hm.apply(before["leaf03"]) == stale


def test_a_keyframe_from_kept_encodings_is_the_newest_state():
    """The publisher keeps each device's encoded fields and encodes only the changed ones: a full message made
    from the encodings of the state before leaf03 failed plus the changed fields decodes to the state after."""
    s, before = _states()
    kept = {n: wire.encode_fields(st, wire.FIELDS) for n, st in before.items()}
    s.sim.fail_device("leaf03")
    s.poll()
    for name, st in s.timeline.snapshot.devices.items():
        fields = wire.changed_fields(before[name], st)
        enc = kept[name] | wire.encode_fields(st, fields)
        body = wire.state_body("a", "a", st, fields, full=True, prev_seq=None, encoded=enc)
        assert wire.read_state(wire.loads(wire.dumps(body))).apply(None) == dataclasses.replace(st, rib_watch=None), name


@pytest.mark.parametrize("data", [b"", b"j", b"jnull", b"j[1]", b"z\x00\x01", b"j{\"v\": \"1\"}", b"j{\"v\": 0}",
                                  b"\xff" * 50, pack({"v": 1, "k": "d", "x": {"nope": 1}, "dev": "a", "site": "s",
                                                      "c": "s", "h": []})])
def test_garbage_is_a_wire_error(data):
    with pytest.raises(wire.WireError):
        body = wire.loads(data)
        wire.read_state(body)


@pytest.mark.parametrize("body", [
    {"v": 1},  # plain JSON (too short to compress)
    {"v": 1, "x": "a" * 3_000_000},  # inflates ~1,000x: past the output buffer unpack sets aside first
    {"v": 1, "x": [os.urandom(8).hex() for _ in range(20_000)]},  # barely compresses
    {"v": 1, "x": [[i, f"10.{i // 256}.{i % 256}.0/24", 3] for i in range(5_000)]},  # a route table's ~12x
])
def test_bodies_of_any_compressibility_round_trip(body):
    assert wire.loads(pack(body)) == body


def test_newer_schema_is_refused_with_one_line():
    with pytest.raises(wire.NewerSchema) as e:
        wire.loads(pack({"v": wire.SCHEMA + 1}))
    assert "upgrade" in str(e.value) and "\n" not in str(e.value)


def test_truncated_bodies_never_decode_to_something_else():
    _, states = _states()
    data = wire.dumps(wire.state_body("a", "a", states["spine01"], wire.FIELDS, full=True, prev_seq=None))
    for cut in range(0, len(data), max(1, len(data) // 97)):
        with pytest.raises(wire.WireError):
            wire.read_state(wire.loads(data[:cut]))


def test_subject_kinds():
    assert wire.kind_of(wire.state_subject("a", "x.y")) == "state"
    assert wire.kind_of(wire.health_subject("a", "x")) == "health"
    assert wire.kind_of(wire.heartbeat_subject("a")) == "heartbeat"
    for bad in ("anycast.a.x.bogus", "anycast.a._collector.state", "anycast.a.x.heartbeat", "other.a.x.state",
                "anycast.a.b.c.state"):
        with pytest.raises(wire.WireError):
            wire.kind_of(bad)


def test_shard_rendezvous_moves_only_the_new_collectors_share():
    names = [f"leaf{i:04d}" for i in range(2000)]
    for n in (1, 2, 3, 4):
        parts = [set(mine(names, i, n)) for i in range(n)]
        assert set().union(*parts) == set(names) and sum(map(len, parts)) == len(names)
        assert min(map(len, parts)) > len(names) / n * 0.8
    moved = [x for x in names if owner(x, 4) != owner(x, 5)]
    assert all(owner(x, 5) == 4 for x in moved)  # only to the new collector
    assert 0.15 < len(moved) / len(names) < 0.25
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_nats_options_refuse_credentials_in_urls_and_never_show_secrets(monkeypatch):
    with pytest.raises(NatsConfigError) as e:
        parse_servers("nats://user:hunter2@127.0.0.1:4222")
    assert "hunter2" not in str(e.value)
    assert parse_servers("nats://127.0.0.1:4222,tls://h:4443") == ("nats://127.0.0.1:4222", "tls://h:4443")
    monkeypatch.setenv("ATUI_TEST_USER", "viewer")
    monkeypatch.setenv("ATUI_TEST_PASS", "s3cret")
    opts = NatsOptions(("nats://127.0.0.1:4222",), user_env="ATUI_TEST_USER", password_env="ATUI_TEST_PASS")
    kw = opts.connect_kwargs()
    assert kw["user"] == "viewer" and kw["password"] == "s3cret"
    assert "s3cret" not in repr(opts) and "s3cret" not in opts.shown()
    with pytest.raises(NatsConfigError):
        dataclasses.replace(opts, password_env="ATUI_TEST_UNSET").connect_kwargs()
    with pytest.raises(NatsConfigError):
        NatsOptions(("nats://h:1",), creds=os.devnull + ".missing").connect_kwargs()
