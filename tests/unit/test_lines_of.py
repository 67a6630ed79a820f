"""parse._common.lines_of: the lines ``str.splitlines`` gives, a block at a time, and the long-line error."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anycast_tui.parse._common as common
import anycast_tui.parse.longtext as longtext
from anycast_tui.parse._common import MAX_LINE, lines_of
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import LongText


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="ab\n\r\x0b\x0c\x1c\u2028\x85", max_size=80), st.integers(1, 9))
def test_the_lines_splitlines_gives_whatever_the_block_size(text, block):
    saved, common._BLOCK = common._BLOCK, block  # small blocks: every line and \r\n across a block's end
    try:
        assert list(lines_of(text, "k")) == text.splitlines()
    finally:
        common._BLOCK = saved


def test_a_line_over_the_limit_is_named_by_its_number():
    text = "ok\n" * 3 + "x" * (MAX_LINE + 1) + "\nafter\n"
    with pytest.raises(ParseError) as err:
        list(lines_of(text, "k"))
    assert err.value.line == 4 and "longer than any k line" in err.value.reason


def test_lines_come_before_the_text_is_split_whole():
    text = "y\n" * (4 << 20)  # 8 MB of one-character lines: a flooding device
    tracemalloc.start()
    try:
        first = next(lines_of(text, "k"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one 1 MiB block split (~6 MB here); a list of all 4 million lines would be 32 MB of pointers first
    assert first == "y" and peak < 12 << 20, peak


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="ab\n\r\x0b\x0c\x1c\u2028\x85é", max_size=80), st.integers(1, 9))
def test_a_spooled_answer_gives_the_same_lines_whatever_the_block_size(text, block):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(longtext, "BLOCK", block)  # bytes: a UTF-8 character split across blocks too
        assert list(lines_of(LongText.of(text), "k")) == text.splitlines()


@pytest.mark.parametrize("text", ["ok\n" * 3 + "x" * (MAX_LINE + 1) + "\nafter\n",  # one long line
                                  "ok\n" * 3 + "x" * (MAX_LINE + 1),  # at the end, no newline
                                  "ok\n" * 3 + "\r".join(["x" * 1000] * 2000) + "\n"])  # \r lines: each is short
def test_a_spooled_long_line_is_named_as_in_the_text(text):
    def lines(t):
        try:
            return list(lines_of(t, "k"))
        except ParseError as exc:
            return exc.line, exc.reason
    assert lines(LongText.of(text)) == lines(text)
