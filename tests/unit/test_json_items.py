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

from anycast_tui.parse._common import json_items
from anycast_tui.parse.errors import ParseError

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
