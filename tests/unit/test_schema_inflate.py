"""A payload's inflation is bounded (``record.schema.inflate``): what it returns is what zlib returns, a payload
inflating past the limit is refused before it takes more memory than the limit, and a truncated stream is an
error on either of its two paths.  The oracle is zlib itself and deflate's format (RFC 1951)."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.fleet import wire
from anycast_tui.record import schema
from anycast_tui.record.schema import PayloadTooLarge, inflate, pack, unpack


def _z(raw: bytes, level: int = 6) -> bytes:
    return b"z" + zlib.compress(raw, level)


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("n", [1 << 10, 1 << 16, 1 << 20, 1 << 24])
def test_deflate_never_expands_past_1032_to_1(n, level):
    """The one-call path's premise: a deflate stream inflates to at most 1032x its size (a 258-byte match coded
    in 2 bits; RFC 1951), here on its best case, one byte repeated."""
    for filler in (b"\0", b"a"):
        body = zlib.compress(filler * n, level)
        assert n <= 1032 * len(body)


texts = st.one_of(st.binary(max_size=4096),
                  st.tuples(st.binary(min_size=1, max_size=16), st.integers(1, 20_000)).map(lambda t: t[0] * t[1]))


@settings(max_examples=300, deadline=None)
@given(raw=texts, level=st.sampled_from([1, 6, 9]), limit=st.integers(0, 400_000))
def test_inflate_is_zlibs_answer_or_refuses_past_the_limit(raw, level, limit):
    data = _z(raw, level)
    if len(raw) <= limit:
        assert inflate(data, limit) == zlib.decompress(data[1:]) == raw
    else:
        with pytest.raises(PayloadTooLarge, match="payload inflates past .* MiB, refused"):
            inflate(data, limit)


@settings(max_examples=200, deadline=None)
@given(raw=texts, cut=st.floats(0, 0.999))
def test_a_truncated_stream_is_an_error_on_either_path(raw, cut):
    body = zlib.compress(raw, 6)
    data = b"z" + body[:int(len(body) * cut)]
    with pytest.raises(zlib.error):
        zlib.decompress(data[1:])
    # a limit far above the stream's bound takes the one call; the raw size, when under it, the bounded path
    for limit in (1 << 30, len(raw)):
        with pytest.raises(zlib.error):
            inflate(data, limit)


def test_plain_and_unknown_tags():
    assert unpack(pack({"v": 1})) == {"v": 1} and inflate(b"j[1]", 0) == b"[1]"  # plain JSON: its own size
    with pytest.raises(ValueError, match="unknown payload tag"):
        inflate(b"x123")


def test_a_zlib_bomb_on_the_wire_is_a_wire_error_naming_the_limit(monkeypatch, zlib_bomb):
    bomb = zlib_bomb(64 << 20)  # 64 MiB from ~64 kB
    assert len(bomb) < 100_000
    monkeypatch.setattr(schema, "MAX_INFLATED", 4 << 20)  # the default is 1 GiB; the same code at a test's size
    with pytest.raises(wire.WireError, match=r"^payload inflates past 4 MiB, refused \(a zlib bomb\?\)$"):
        wire.loads(bomb)
    monkeypatch.setattr(schema, "MAX_INFLATED", 65 << 20)
    assert len(wire.loads(bomb)["x"]) == 64 << 20
