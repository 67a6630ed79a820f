"""parse._common.json_items: the objects of JSON output one at a time, exactly what ``json.loads`` makes of it.

The oracle is the standard library: for any text, json_items yields the items ``json.loads`` gives (a
single object as a one-item list) or raises ParseError exactly where ``json.loads`` fails or the value is
not an array of objects.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anycast_tui.parse._common as common
import anycast_tui.parse.longtext as longtext
from anycast_tui.parse._common import json_items
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import LongText

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=12)
objects = st.dictionaries(st.text(max_size=6), values, max_size=4)
spaces = st.sampled_from(["", " ", "\n", "\t", "\r\n", "  \n  "])


def _oracle(text: str) -> list | None:
    """What load_json's contract gives: the list of objects, or None where it is an error."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        return None
    return data


def _ours(text: str) -> list | None:
    try:
        return list(json_items(text, "test"))
    except ParseError:
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(objects, max_size=5), spaces, spaces, spaces)
def test_arrays_of_objects_as_json_loads_reads_them(items, a, b, c):
    text = a + "[" + b + ("," + c).join(json.dumps(o) for o in items) + c + "]" + a
    assert _ours(text) == _oracle(text) == items


@settings(max_examples=600, deadline=None)
@given(st.lists(values, max_size=4), st.integers(0, 200), st.sampled_from(["", ",", "]", "[", "}", "{", "x", " ", '"']))
def test_any_damage_is_an_error_exactly_where_json_loads_fails(items, cut, junk):
    text = json.dumps(items)
    text = text[:cut % (len(text) + 1)] + junk + text[cut % (len(text) + 1):]
    assert _ours(text) == _oracle(text)


@pytest.mark.parametrize("text", ["", "  \n", "[]", "[]\n", " [ ] ", '{"a": 1}', '[{"a": 1}]\n', '[{"a":1} , {"b":2}]'])
def test_shapes_ip_prints(text):
    assert _ours(text) == _oracle(text)


@pytest.mark.parametrize("text", ["[][]", "[{}]x", "[{},]", "[,{}]", "[{} {}]", "[1]", '[{"a":1}', "[", "]", "nan"])
def test_errors_say_where(text):
    with pytest.raises(ParseError) as err:
        list(json_items(text, "test"))
    assert err.value.reason.startswith(("invalid JSON", "item 0: expected an object", "expected a JSON array"))


# --------------------------------------------------------------------------- a LongText (a spooled answer)


def _long(text: str, block: int, monkeypatch) -> list | None:
    """What json_items makes of ``text`` spooled to a file and read ``block`` bytes at a time."""
    monkeypatch.setattr(longtext, "BLOCK", block)
    t = LongText.of(text)
    try:
        return list(json_items(t, "test"))
    except ParseError as exc:
        return ("error", exc.line, exc.reason)  # type: ignore[return-value]
    finally:
        t.close()


def _str_error(text: str) -> list | tuple | None:
    try:
        return list(json_items(text, "test"))
    except ParseError as exc:
        return ("error", exc.line, exc.reason)


@settings(max_examples=300, deadline=None)
@given(st.lists(objects, max_size=5), spaces, spaces, spaces, st.integers(1, 9))
def test_a_spooled_array_gives_the_same_objects_whatever_the_block_size(items, a, b, c, block):
    text = a + "[" + b + ("," + c).join(json.dumps(o, ensure_ascii=False) for o in items) + c + "]" + a
    with pytest.MonkeyPatch.context() as mp:
        assert _long(text, block, mp) == items


@settings(max_examples=600, deadline=None)
@given(st.lists(values, max_size=4), st.integers(0, 200), st.sampled_from(["", ",", "]", "[", "}", "{", "x", " ", '"', "\n"]),
       st.integers(1, 9))
def test_a_spooled_answer_fails_where_the_text_fails_on_the_same_line(items, cut, junk, block):
    text = json.dumps(items, indent=1, ensure_ascii=False)
    text = text[:cut % (len(text) + 1)] + junk + text[cut % (len(text) + 1):]
    with pytest.MonkeyPatch.context() as mp:
        assert _long(text, block, mp) == _str_error(text)


@pytest.mark.parametrize("text", ["", "  \n", "[]", " [ ] ", '{"a": 1}', '[{"a":1} , {"b":2}]', "[][]", "[{}]x",
                                  "[{},]", "[{} {}]", "[1]", '[{"a":1}', "[", "]", "nan", "5", '"s"', "y\ny\n"])
def test_spooled_shapes_and_errors_as_the_text(text, monkeypatch):
    assert _long(text, 2, monkeypatch) == _str_error(text)


def test_a_spooled_item_longer_than_any_is_refused_in_bounded_memory(monkeypatch):
    monkeypatch.setattr(common, "MAX_ITEM", 1 << 16)
    t = LongText.of('[{"a": "' + "x" * (1 << 20))  # an unterminated string: 1 MiB, never a whole item
    with pytest.raises(ParseError) as err:
        list(json_items(t, "test"))
    assert "longer than any item" in err.value.reason
