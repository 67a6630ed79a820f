"""``ip nexthop show`` / ``ip nexthop bucket show`` (text and JSON) -> nexthop records.

Canonical form (same from text and JSON): omitted defaults are filled (object
scope ``global``, protocol ``unspec``, group type ``mpath``); a group's
``scope global`` (printed by ``-d`` only) is dropped, any other group scope is
kept in ``extra``; ``fdb`` is ``NexthopObject.fdb`` or a group's ``("fdb", "")``
extra.  Resilient timers are whole seconds.

Numbers the kernel cannot hold are a ParseError naming the value: ids 1..2^32-1,
group weights 1..65536 (16 bits since Linux 6.12), ``buckets`` 1..65535,
``idle_timer``/``unbalanced_timer`` 0..42949672 s (a u32 of clock ticks),
``unbalanced_time`` and a bucket's ``idle_time`` finite and not negative.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from anycast_tui.model.types import Bucket, GroupMember, NexthopGroup, NexthopObject, NexthopTable
from anycast_tui.parse._common import (BUCKET_INDEX, BUCKETS, ELAPSED_S, GROUP_MEMBERS, GROUP_WEIGHT, NH_ID, TIMER_S,
                                       BadValue, address, bounded, extra_value, json_items, lines_of, pair, seconds,
                                       shown, words)
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import Text

KIND_TEXT = "ip-nexthop"
KIND_JSON = "ip-nexthop-json"
KIND_BUCKET_TEXT = "ip-nexthop-bucket"
KIND_BUCKET_JSON = "ip-nexthop-bucket-json"

NH_FLAGS = frozenset({"dead", "onlink", "pervasive", "offload", "trap", "linkdown", "unresolved", "offload_failed"})
_RES_ARGS = ("buckets", "idle_timer", "unbalanced_timer", "unbalanced_time")

Entry = NexthopObject | NexthopGroup


def _res_arg(key: str, value: Any) -> int:
    """A resilient group argument within the kernel's range: buckets 1..65535, timers in whole seconds."""
    if key == "buckets":
        return bounded(value, key, BUCKETS)
    return int(seconds(value, key, ELAPSED_S if key == "unbalanced_time" else TIMER_S))


def _member(nid: Any, weight: Any) -> GroupMember:
    return GroupMember(bounded(nid, "group member", NH_ID), bounded(weight, "group weight", GROUP_WEIGHT))


def _group_size(n: int) -> None:
    if n > GROUP_MEMBERS:
        raise BadValue(f"group of {n:,} members: more than the kernel's {GROUP_MEMBERS:,}")


def _members(spec: str) -> tuple[GroupMember, ...]:
    _group_size(spec.count("/") + 1)  # before splitting: a 10 MB group is refused, not made into objects
    out = []
    for part in spec.split("/"):
        nid, _, w = part.partition(",")
        out.append(_member(nid, w or 1))
    return tuple(out)


def _build(fields: dict[str, Any], flags: list[str], extra: list[tuple[str, str]]) -> Entry:
    """One entry from collected fields (shared by the text and JSON paths)."""
    nid = fields["id"]
    if "group" in fields:
        scope = fields.get("scope", "global")
        if scope != "global":
            extra = [("scope", scope), *extra]
        if fields.get("blackhole") or "gateway" in fields or "dev" in fields:
            raise BadValue(f"nexthop {nid}: a group with a gateway, dev or blackhole")
        return NexthopGroup(
            id=nid,
            members=fields["group"],
            type=fields.get("type", "mpath"),
            buckets=fields.get("buckets"),
            idle_timer=fields.get("idle_timer"),
            unbalanced_timer=fields.get("unbalanced_timer"),
            unbalanced_time=fields.get("unbalanced_time"),
            protocol=fields.get("protocol", "unspec"),
            flags=tuple(flags),
            extra=tuple(extra + ([("fdb", "")] if fields.get("fdb") else [])),
        )
    return NexthopObject(
        id=nid,
        gateway=fields.get("gateway"),
        dev=fields.get("dev"),
        scope=fields.get("scope", "global"),
        protocol=fields.get("protocol", "unspec"),
        blackhole=bool(fields.get("blackhole")),
        fdb=bool(fields.get("fdb")),
        flags=tuple(flags),
        extra=tuple(extra),
    )


# --------------------------------------------------------------------------- text


def _text_entry(toks: list[str]) -> Entry:
    fields: dict[str, Any] = {}
    flags: list[str] = []
    extra: list[tuple[str, str]] = []
    i = 0
    n = len(toks)

    def val(key: str) -> str:
        nonlocal i
        if i >= n:
            raise BadValue(f"'{key}' without a value")
        v = toks[i]
        i += 1
        return v

    if not toks or toks[0] != "id":
        raise BadValue(f"unexpected token {shown(toks[0])} in nexthop" if toks else "empty nexthop")
    while i < n:
        key = toks[i]
        i += 1
        if key == "id":
            fields["id"] = bounded(val(key), "id", NH_ID)
        elif key == "via":
            v = val(key)
            if v in ("inet", "inet6"):
                v = val(key)
            fields["gateway"] = address(v)[0]
        elif key == "dev":
            fields["dev"] = val(key)
        elif key == "scope":
            fields["scope"] = val(key)
        elif key == "proto":
            fields["protocol"] = val(key)
        elif key == "blackhole":
            fields["blackhole"] = True
        elif key == "fdb":
            fields["fdb"] = True
        elif key == "group":
            fields["group"] = _members(val(key))
        elif key == "type":
            fields["type"] = val(key)
        elif key in _RES_ARGS:
            fields[key] = _res_arg(key, val(key))
        elif key in NH_FLAGS:
            flags.append(key)
        elif i < n and toks[i] not in NH_FLAGS:
            extra.append(pair(key, val(key)))
        else:
            flags.append(key)
    if "id" not in fields:
        raise BadValue("nexthop without an id")
    return _build(fields, flags, extra)


def parse_ip_nexthop(text: Text) -> NexthopTable:
    """Parse ``ip nexthop show`` text (indentation is ignored)."""
    objects: list[NexthopObject] = []
    groups: list[NexthopGroup] = []
    for lineno, raw in enumerate(lines_of(text, KIND_TEXT), 1):
        toks = words(raw)
        if not toks:
            continue
        try:
            e = _text_entry(toks)
        except BadValue as exc:
            raise ParseError(lineno, str(exc), KIND_TEXT, raw) from None
        (groups if isinstance(e, NexthopGroup) else objects).append(e)  # type: ignore[arg-type]
    return NexthopTable(tuple(objects), tuple(groups))


# --------------------------------------------------------------------------- JSON

_JSON_KNOWN = frozenset({"id", "gateway", "dev", "scope", "protocol", "blackhole", "fdb", "group", "type",
                         "resilient_args", "flags"})


def entry_from_json(obj: Any, idx: int) -> Entry:
    """One ``ip -j nexthop`` object (also the ``nh_info`` of ``ip -d -j route``)."""
    if not isinstance(obj, dict):
        raise ParseError(0, f"nexthop {idx}: expected an object", KIND_JSON)
    try:
        fields: dict[str, Any] = {}
        if "id" not in obj:
            raise BadValue("missing id")
        fields["id"] = bounded(obj["id"], "id", NH_ID)
        for key in ("dev", "scope", "protocol", "type"):
            if key in obj:
                v = obj[key]
                if not isinstance(v, str):
                    raise BadValue(f"bad {key} {shown(v)}")
                fields[key] = v
        if "gateway" in obj:
            gw = obj["gateway"]
            if not isinstance(gw, str):
                raise BadValue(f"bad gateway {shown(gw)}")
            fields["gateway"] = address(gw)[0]
        if "blackhole" in obj:
            fields["blackhole"] = True
        if "fdb" in obj:
            fields["fdb"] = True
        if "group" in obj:
            grp = obj["group"]
            if not isinstance(grp, list) or not all(isinstance(m, dict) for m in grp):
                raise BadValue(f"bad group {shown(grp)}")
            _group_size(len(grp))
            fields["group"] = tuple(_member(m.get("id"), m.get("weight", 1)) for m in grp)
        ra = obj.get("resilient_args")
        if ra is not None:
            if not isinstance(ra, dict):
                raise BadValue(f"bad resilient_args {shown(ra)}")
            for key in _RES_ARGS:
                if key in ra:
                    fields[key] = _res_arg(key, ra[key])
        flags = obj.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise BadValue(f"bad flags {shown(flags)}")
        extra: list[tuple[str, str]] = []
        if isinstance(ra, dict):
            extra += [(k, extra_value(v)) for k, v in ra.items() if k not in _RES_ARGS]
        extra += [(k, extra_value(v)) for k, v in obj.items() if k not in _JSON_KNOWN]
        return _build(fields, list(flags), extra)
    except BadValue as exc:
        raise ParseError(0, f"nexthop {idx}: {exc}", KIND_JSON) from None


def parse_ip_nexthop_json(text: Text) -> NexthopTable:
    """Parse ``ip -j nexthop show``."""
    objects: list[NexthopObject] = []
    groups: list[NexthopGroup] = []
    for i, obj in enumerate(json_items(text, KIND_JSON)):
        e = entry_from_json(obj, i)
        (groups if isinstance(e, NexthopGroup) else objects).append(e)  # type: ignore[arg-type]
    return NexthopTable(tuple(objects), tuple(groups))


# --------------------------------------------------------------------------- buckets


def _bucket(gid: Any, index: Any, nhid: Any, idle: Any, flags: list[str], extra: list[tuple[str, str]]) -> Bucket:
    return Bucket(bounded(gid, "id", NH_ID), bounded(index, "index", BUCKET_INDEX), bounded(nhid, "nhid", NH_ID),
                  seconds(idle, "idle_time", ELAPSED_S), tuple(flags), tuple(extra))


def parse_ip_nexthop_bucket(text: Text) -> list[Bucket]:
    """Parse ``ip nexthop bucket show`` text."""
    out: list[Bucket] = []
    for lineno, raw in enumerate(lines_of(text, KIND_BUCKET_TEXT), 1):
        toks = words(raw)
        if not toks:
            continue
        try:
            if toks[0] != "id":
                raise BadValue(f"unexpected token {shown(toks[0])} in nexthop bucket")
            vals: dict[str, str] = {}
            flags: list[str] = []
            extra: list[tuple[str, str]] = []
            i = 0
            while i < len(toks):
                key = toks[i]
                if key in ("id", "index", "idle_time", "nhid"):
                    if i + 1 >= len(toks):
                        raise BadValue(f"'{key}' without a value")
                    vals[key] = toks[i + 1]
                    i += 2
                elif i + 1 < len(toks) and toks[i + 1] not in NH_FLAGS and key not in NH_FLAGS:
                    extra.append(pair(key, toks[i + 1]))
                    i += 2
                else:
                    flags.append(key)
                    i += 1
            missing = [k for k in ("id", "index", "nhid") if k not in vals]
            if missing:
                raise BadValue(f"bucket without {', '.join(missing)}")
            out.append(_bucket(vals["id"], vals["index"], vals["nhid"], vals.get("idle_time", "0"), flags, extra))
        except BadValue as exc:
            raise ParseError(lineno, str(exc), KIND_BUCKET_TEXT, raw) from None
    return out


def parse_ip_nexthop_bucket_json(text: Text) -> list[Bucket]:
    """Parse ``ip -j nexthop bucket show`` (or ``bucket get``)."""
    out: list[Bucket] = []
    for i, obj in enumerate(json_items(text, KIND_BUCKET_JSON)):
        try:
            b = obj.get("bucket")
            if not isinstance(b, dict):
                raise BadValue("missing bucket object")
            flags = obj.get("flags", [])
            if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
                raise BadValue(f"bad flags {shown(flags)}")
            extra = [(k, extra_value(v)) for k, v in b.items() if k not in ("index", "idle_time", "nhid")]
            extra += [(k, extra_value(v)) for k, v in obj.items() if k not in ("id", "bucket", "flags")]
            for k in ("index", "nhid"):
                if k not in b:
                    raise BadValue(f"bucket without {k}")
            idle = b.get("idle_time", 0.0)
            if isinstance(idle, bool) or not isinstance(idle, (int, float)):
                raise BadValue(f"bad idle_time {shown(idle)}")
            out.append(_bucket(obj.get("id"), b["index"], b["nhid"], idle, list(flags), extra))
        except BadValue as exc:
            raise ParseError(0, f"bucket {i}: {exc}", KIND_BUCKET_JSON) from None
    return out


def attach_buckets(table: NexthopTable, buckets: Iterable[Bucket]) -> NexthopTable:
    """Fill each group's ``bucket_table`` (sorted by index); a bucket of an unknown group is a ParseError."""
    by_group: dict[int, list[Bucket]] = {}
    for b in buckets:
        by_group.setdefault(b.group_id, []).append(b)
    known = {g.id for g in table.groups}
    for gid in by_group:
        if gid not in known:
            raise ParseError(0, f"bucket for unknown group {gid}", KIND_BUCKET_JSON)
    groups = tuple(
        dataclasses.replace(g, bucket_table=tuple(sorted(by_group[g.id], key=lambda b: b.index)))
        if g.id in by_group else g
        for g in table.groups
    )
    return NexthopTable(table.objects, groups)


# --------------------------------------------------------------------------- display


def format_entry(e: Entry) -> str:
    """One entry as ``ip -d nexthop show`` prints it (defaults included), without a trailing blank."""
    parts = [f"id {e.id}"]
    if isinstance(e, NexthopGroup):
        parts.append("group " + "/".join(f"{m.id}" + (f",{m.weight}" if m.weight != 1 else "") for m in e.members))
        if e.type != "mpath":
            parts.append(f"type {e.type}")
        for key in _RES_ARGS:
            v = getattr(e, key)
            if v is not None:
                parts.append(f"{key} {v}")
        ex = list(e.extra)
        scope = next((v for k, v in ex if k == "scope"), "global")
        parts.append(f"scope {scope}")
        ex = [(k, v) for k, v in ex if k not in ("scope", "fdb")]
        fdb = any(k == "fdb" for k, _ in e.extra)
    else:
        if e.gateway is not None:
            parts.append(f"via {e.gateway}")
        if e.dev is not None:
            parts.append(f"dev {e.dev}")
        parts.append(f"scope {e.scope or 'global'}")
        if e.blackhole:
            parts.append("blackhole")
        ex = list(e.extra)
        fdb = e.fdb
    parts.append(f"proto {e.protocol or 'unspec'}")
    parts += list(e.flags)
    parts += [f"{k} {v}" for k, v in ex]
    if fdb:
        parts.append("fdb")
    return " ".join(parts)
