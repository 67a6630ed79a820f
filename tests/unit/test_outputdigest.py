"""collect.outputdigest: long outputs kept as a digest compare equal exactly when their text is equal."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.collect.outputdigest import RAW_MAX, Digest, digest, kept
from anycast_tui.parse.longtext import LongText


def test_digest_is_blake2b_256_of_the_utf8_text():
    text = "é" * (3 << 20) + "x"  # several chunks, a multi-byte character across chunk ends
    assert digest(text) == Digest(len(text.encode()), hashlib.blake2b(text.encode(), digest_size=32).digest())


def test_a_spooled_output_has_the_digest_of_the_same_text():
    text = "é" * (3 << 20) + "x"
    spooled = LongText.of(text)  # as the collector writes it, a read at a time
    assert digest(spooled) == digest(text) and kept({"r": spooled}) == kept({"r": text})


def test_short_outputs_are_kept_as_text_long_ones_as_a_digest_unless_asked():
    long = "a" * (RAW_MAX + 1)
    out = kept({"short": "abc", "long": long, "rib": long}, raw={"rib"})
    assert out["short"] == "abc" and out["rib"] is long
    assert out["long"] == digest(long) and not isinstance(out["long"], str)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 50), st.integers(0, RAW_MAX + 10), st.sampled_from("ab\n"))
def test_long_outputs_equal_exactly_when_their_text_is(pos, extra, ch):
    base = "x" * (RAW_MAX + 1 + extra)
    other = base[:pos] + ch + base[pos + 1:]
    assert (kept({"r": base}) == kept({"r": other})) == (base == other)
