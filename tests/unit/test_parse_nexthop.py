"""ip nexthop / ip nexthop bucket parsers (text and JSON) and attach_buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycast_tui.model.types import Bucket, GroupMember, NexthopGroup, NexthopObject
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.nexthop import (
    attach_buckets,
    format_entry,
    parse_ip_nexthop,
    parse_ip_nexthop_bucket,
    parse_ip_nexthop_bucket_json,
    parse_ip_nexthop_json,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"

TEXT = """id 1 via 198.18.1.2 dev v1 scope link
id 2 via 198.18.2.2 dev v2 scope link proto static
id 3 blackhole
id 4 dev v3 scope link trap
id 10 group 1/2,3
id 11 group 1/2 type resilient buckets 8 idle_timer 120 unbalanced_timer 0 unbalanced_time 0
id 12 group 1 fdb
"""

JSON = (
    '[{"id":1,"gateway":"198.18.1.2","dev":"v1","scope":"link","flags":[]},'
    '{"id":2,"gateway":"198.18.2.2","dev":"v2","scope":"link","protocol":"static","flags":[]},'
    '{"id":3,"blackhole":null,"flags":[]},'
    '{"id":4,"dev":"v3","scope":"link","flags":["trap"]},'
    '{"id":10,"group":[{"id":1},{"id":2,"weight":3}],"flags":[]},'
    '{"id":11,"group":[{"id":1},{"id":2}],"type":"resilient","resilient_args":{"buckets":8,"idle_timer":120,'
    '"unbalanced_timer":0,"unbalanced_time":0},"flags":[]},'
    '{"id":12,"group":[{"id":1}],"flags":[],"fdb":null}]'
)


def test_text_objects_and_groups():
    t = parse_ip_nexthop(TEXT)
    assert [o.id for o in t.objects] == [1, 2, 3, 4]
    assert t.objects[0] == NexthopObject(1, "198.18.1.2", "v1", "link", "unspec")
    assert t.objects[1].protocol == "static"
    assert t.objects[2].blackhole and t.objects[2].scope == "global"
    assert t.objects[3].flags == ("trap",) and t.objects[3].gateway is None
    g10, g11, g12 = t.groups
    assert g10.members == (GroupMember(1, 1), GroupMember(2, 3)) and g10.type == "mpath"
    assert (g11.type, g11.buckets, g11.idle_timer, g11.unbalanced_timer, g11.unbalanced_time) == ("resilient", 8, 120, 0, 0)
    assert g12.extra == (("fdb", ""),)


def test_text_equals_json():
    assert parse_ip_nexthop(TEXT) == parse_ip_nexthop_json(JSON)


def test_captured_kernel_output_text_equals_json():
    t = parse_ip_nexthop((FIX / "kernel-nexthop.txt").read_text())
    assert t == parse_ip_nexthop_json((FIX / "kernel-nexthop.json").read_text())
    assert {g.id: g.type for g in t.groups} == {10: "mpath", 11: "resilient"}


def test_unknown_attributes_kept():
    t = parse_ip_nexthop("id 5 via 198.18.1.2 dev v1 scope link encap mpls shiny\n")
    assert t.objects[0].extra == (("encap", "mpls"),) and t.objects[0].flags == ("shiny",)


def test_detail_scope_of_group_is_dropped_other_scope_kept():
    a = parse_ip_nexthop("id 10 group 1/2 scope global proto unspec\n")
    assert a == parse_ip_nexthop("id 10 group 1/2\n")
    assert parse_ip_nexthop("id 10 group 1/2 scope link\n").groups[0].extra == (("scope", "link"),)


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("id 1 via 198.18.1.2 dev v1\nvia 2\n", 2, "unexpected token 'via' in nexthop"),
        ("id x via 198.18.1.2\n", 1, "bad id"),
        ("id 1 group 1/x\n", 1, "bad group member"),
        ("id 1 via nope dev v1\n", 1, "not an address"),
        ("id 1 group 2 via 198.18.1.2\n", 1, "a group with a gateway"),
        ("id 1 dev\n", 1, "'dev' without a value"),
    ],
)
def test_text_errors(text, line, reason):
    with pytest.raises(ParseError) as ei:
        parse_ip_nexthop(text)
    assert (ei.value.line, ei.value.kind) == (line, "ip-nexthop")
    assert reason in ei.value.reason


@pytest.mark.parametrize("text", ['[{"group":[{"id":1}]}]', '[{"id":1,"group":{"id":1}}]', '[{"id":1,"flags":"x"}]',
                                  '[{"id":1,"gateway":"zz"}]', '[{"id":1,"resilient_args":[1]}]'])
def test_json_errors(text):
    with pytest.raises(ParseError) as ei:
        parse_ip_nexthop_json(text)
    assert ei.value.reason.startswith("nexthop 0:")


def test_format_entry_round_trips():
    t = parse_ip_nexthop(TEXT)
    again = parse_ip_nexthop("\n".join(format_entry(e) for e in (*t.objects, *t.groups)))
    assert again == t


# --------------------------------------------------------------------------- buckets


BUCKETS_TEXT = """id 11 index 0 idle_time 28.1 nhid 2
id 11 index 1 idle_time 28.1 nhid 2 trap
id 11 index 2 idle_time 5.59 nhid 1
"""
BUCKETS_JSON = ('[{"id":11,"bucket":{"index":0,"idle_time":28.1,"nhid":2},"flags":[]},'
                '{"id":11,"bucket":{"index":1,"idle_time":28.1,"nhid":2},"flags":["trap"]},'
                '{"id":11,"bucket":{"index":2,"idle_time":5.59,"nhid":1},"flags":[]}]')


def test_buckets_text_equals_json():
    b = parse_ip_nexthop_bucket(BUCKETS_TEXT)
    assert b == parse_ip_nexthop_bucket_json(BUCKETS_JSON)
    assert b[1] == Bucket(11, 1, 2, 28.1, ("trap",))


def test_captured_buckets_agree_except_idle_time():
    t = parse_ip_nexthop_bucket((FIX / "kernel-bucket.txt").read_text())
    j = parse_ip_nexthop_bucket_json((FIX / "kernel-bucket.json").read_text())
    assert [(b.group_id, b.index, b.nhid) for b in t] == [(b.group_id, b.index, b.nhid) for b in j]
    assert len(t) == 8


@pytest.mark.parametrize("text, reason", [("id 11 index 0 idle_time x nhid 1\n", "bad idle_time"),
                                           ("id 11 index 0\n", "bucket without nhid"),
                                           ("index 0 id 1\n", "unexpected token 'index'")])
def test_bucket_text_errors(text, reason):
    with pytest.raises(ParseError) as ei:
        parse_ip_nexthop_bucket(text)
    assert ei.value.line == 1 and reason in ei.value.reason


@pytest.mark.parametrize("text", ['[{"id":1}]', '[{"id":1,"bucket":{"index":0}}]',
                                  '[{"id":1,"bucket":{"index":0,"nhid":1,"idle_time":"x"}}]'])
def test_bucket_json_errors(text):
    with pytest.raises(ParseError):
        parse_ip_nexthop_bucket_json(text)


def test_attach_buckets_fills_the_group_sorted_by_index():
    table = parse_ip_nexthop(TEXT)
    buckets = list(reversed(parse_ip_nexthop_bucket(BUCKETS_TEXT)))
    out = attach_buckets(table, buckets)
    g11 = next(g for g in out.groups if g.id == 11)
    assert [b.index for b in g11.bucket_table] == [0, 1, 2]
    assert all(g.bucket_table == () for g in out.groups if g.id != 11)
    assert out.objects == table.objects


def test_attach_buckets_refuses_unknown_group():
    table = parse_ip_nexthop(TEXT)
    with pytest.raises(ParseError, match="bucket for unknown group 99"):
        attach_buckets(table, [Bucket(99, 0, 1)])


def test_group_type_default_is_mpath():
    assert isinstance(parse_ip_nexthop("id 10 group 1/2\n").groups[0], NexthopGroup)
    assert parse_ip_nexthop("id 10 group 1/2\n").groups[0].type == "mpath"
