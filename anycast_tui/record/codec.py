"""Model records <-> compact JSON-able values, lossless.

A dataclass becomes the list of its field values in declaration order, with
trailing default values left out; nested records, tuples, enums and ``extra``
pairs are converted per a fixed spec.  ``decode_X(encode_X(x)) == x`` for every
record type here.  Adding a field at the end of a type keeps old files readable.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable

from anycast_tui.model.types import (
    Address,
    Bucket,
    Device,
    DeviceState,
    Event,
    EventKind,
    FabricSnapshot,
    GroupMember,
    HashSettings,
    Health,
    HealthStatus,
    Interface,
    Nexthop,
    NexthopGroup,
    NexthopObject,
    NexthopTable,
    Role,
    Route,
)

_MISSING = object()

# field converters: (encode, decode)
Conv = tuple[Callable[[Any], Any], Callable[[Any], Any]]
_PLAIN: Conv = (lambda v: v, lambda v: v)
_STRS: Conv = (list, tuple)
_EXTRA: Conv = (lambda v: [list(p) for p in v], lambda v: tuple(tuple(p) for p in v))


def _enum(cls: type[enum.Enum]) -> Conv:
    return (lambda v: v.value, cls)


def _obj(cls: type) -> Conv:
    return (lambda v: encode(v), lambda v: decode(cls, v))


def _opt_obj(cls: type) -> Conv:
    return (lambda v: None if v is None else encode(v), lambda v: None if v is None else decode(cls, v))


def _objs(cls: type) -> Conv:
    return (lambda v: [encode(x) for x in v], lambda v: tuple(decode(cls, x) for x in v))


_SPECIAL: dict[type, dict[str, Conv]] = {
    Device: {"role": _enum(Role)},
    Address: {"flags": _STRS, "extra": _EXTRA},
    Interface: {"flags": _STRS, "addresses": _objs(Address), "extra": _EXTRA},
    Nexthop: {"flags": _STRS, "extra": _EXTRA},
    Route: {"nexthops": _objs(Nexthop), "flags": _STRS, "extra": _EXTRA},
    GroupMember: {},
    Bucket: {"flags": _STRS, "extra": _EXTRA},
    NexthopObject: {"flags": _STRS, "extra": _EXTRA},
    NexthopGroup: {"members": _objs(GroupMember), "flags": _STRS, "bucket_table": _objs(Bucket), "extra": _EXTRA},
    NexthopTable: {"objects": _objs(NexthopObject), "groups": _objs(NexthopGroup)},
    HashSettings: {},
    Health: {"status": _enum(HealthStatus)},
    DeviceState: {"device": _obj(Device), "routes": _objs(Route), "nexthops": _obj(NexthopTable),
                  "interfaces": _objs(Interface), "hash": _obj(HashSettings), "health": _obj(Health)},
    Event: {"kind": _enum(EventKind), "nexthop": _opt_obj(Nexthop)},
}


def _specs() -> dict[type, tuple[tuple[str, Any, Conv], ...]]:
    out = {}
    for cls, special in _SPECIAL.items():
        fields = []
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            else:
                default = _MISSING
            fields.append((f.name, default, special.get(f.name, _PLAIN)))
        out[cls] = tuple(fields)
    return out


_SPEC = _specs()


def encode(obj: Any) -> list:
    """A record (any type of ``model.types`` handled here) as a JSON-able list."""
    spec = _SPEC[type(obj)]
    values = [getattr(obj, name) for name, _, _ in spec]
    n = len(values)
    while n and spec[n - 1][1] is not _MISSING and values[n - 1] == spec[n - 1][1]:
        n -= 1
    return [spec[i][2][0](values[i]) for i in range(n)]


def decode(cls: type, data: list) -> Any:
    """The record of type ``cls`` that ``encode`` turned into ``data``."""
    spec = _SPEC[cls]
    if len(data) > len(spec):
        raise ValueError(f"{cls.__name__}: {len(data)} values, the type has {len(spec)} fields")
    return cls(*[spec[i][2][1](v) for i, v in enumerate(data)])


def encode_snapshot(snap: FabricSnapshot) -> dict:
    return {"t": snap.taken_at_ms, "devices": {n: encode(s) for n, s in snap.devices.items()},
            "prefixes": list(snap.anycast_prefixes)}


def decode_snapshot(data: dict) -> FabricSnapshot:
    return FabricSnapshot(data["t"], {n: decode(DeviceState, s) for n, s in data["devices"].items()},
                          tuple(data["prefixes"]))


def encode_event(ev: Event) -> list:
    return encode(ev)


def decode_event(data: list) -> Event:
    return decode(Event, data)


def _nexthop(v: list) -> Nexthop:
    n = len(v)
    if n <= 3:
        return Nexthop(*v)
    return Nexthop(v[0], v[1], v[2], tuple(v[3]), *(v[4:5]), *([tuple(tuple(p) for p in v[5])] if n > 5 else []))


def decode_chunk(data: list) -> tuple[Route, ...]:
    """Routes of a stored chunk ``[next hop lists, routes]`` whose field 9 indexes the next hop lists.

    Equal next hop lists of a chunk become one shared tuple (fewer objects, faster seeks).
    """
    table, rows = data
    nhs = [tuple(_nexthop(n) for n in lst) for lst in table]
    out = []
    for r in rows:
        n = len(r)
        if n <= 9:
            out.append(Route(*r))
            continue
        args = r[:9]
        args.append(nhs[r[9]])
        if n > 10:
            args.append(tuple(r[10]))
        if n > 11:
            args.append(tuple(tuple(p) for p in r[11]))
        if n > 12:
            raise ValueError(f"Route: {n} values, the type has 12 fields")
        out.append(Route(*args))
    return tuple(out)
