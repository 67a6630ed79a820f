"""Model records <-> compact JSON-able values, lossless.

A dataclass becomes the list of its field values in declaration order, with
trailing default values left out; nested records, tuples, enums and ``extra``
pairs are converted per a fixed spec.  ``decode_X(encode_X(x)) == x`` for every
record type here.  Adding a field at the end of a type keeps old files readable
(``DeviceState.flows``, ``.rib`` and ``.frr_groups`` came so: a state without them encodes as before).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import gc
import json
import zlib
from collections import deque
from itertools import chain, repeat, starmap
from typing import Any, Callable, Iterable, Iterator, Sequence

from anycast_tui.model.types import (
    Address,
    BgpMultipath,
    Bucket,
    ConfiguredGroup,
    Device,
    DeviceState,
    Event,
    EventKind,
    FabricSnapshot,
    Flow,
    GroupMember,
    HashSettings,
    Health,
    HealthStatus,
    Interface,
    Nexthop,
    NexthopGroup,
    NexthopObject,
    NexthopTable,
    Rib,
    RibNexthop,
    RibRoute,
    Role,
    Route,
    RouteKey,
    RouteTable,
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


def _opt_objs(cls: type) -> Conv:
    return (lambda v: None if v is None else [encode(x) for x in v],
            lambda v: None if v is None else tuple(decode(cls, x) for x in v))


_PAIRS: Conv = _EXTRA  # a tuple of pairs, as ``extra`` is


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
    Flow: {},
    RibNexthop: {"flags": _STRS},
    RibRoute: {"nexthops": _objs(RibNexthop)},
    BgpMultipath: {"multipath": _STRS, "extra": _EXTRA},
    Rib: {"routes": _objs(RibRoute), "bgp": _objs(BgpMultipath)},
    DeviceState: {"device": _obj(Device), "routes": _objs(Route), "nexthops": _obj(NexthopTable),
                  "interfaces": _objs(Interface), "hash": _obj(HashSettings), "health": _obj(Health),
                  "flows": _objs(Flow), "rib": _opt_obj(Rib), "frr_groups": _opt_objs(ConfiguredGroup)},
    ConfiguredGroup: {"nexthops": _PAIRS},
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


@contextlib.contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """No cyclic garbage collection while many records are built (a recording's seek, a viewer's catch-up).

    Decoding allocates thousands of long-lived objects (JSON lists, routes, tuples) and nothing cyclic; with
    the collector on, those allocations trigger collections that traverse every object built so far - about
    half of a cold seek's time (bench/bench_record.py) and of a viewer's catch-up (bench/bench_nats.py).
    ``freeze``: every object alive at the end goes to the permanent generation (``gc.freeze``), so no later
    collection walks them (the first one after millions of routes takes ~0.7 s, a full one as long, every
    time); they are still freed when no longer referenced, only cycles among them would never be.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was:
            gc.enable()


def encode_chunk(rows: list[list]) -> dict:
    """A chunk of routes (their ``encode`` rows) as stored since schema 3: ``{"d": [dst, ...], "t": "[template,
    ...]", "i": [template index per route]}``.  A template is a row without its destination; a route table
    has few distinct ones (next hops, protocol, metric, flags...), so the file holds about one string and
    one small int per route.  The templates are one JSON text, sorted: the chunks of a device mostly carry
    the same text, which a reader parses and converts once (``decode_chunks``).  ``"i"`` is left out when
    there is one template."""
    seen: dict[str, int] = {}  # a template's repr -> its position in ``texts``
    texts: list[str] = []
    where: list[int] = []
    for enc in rows:
        key = repr(enc[1:])
        w = seen.get(key)
        if w is None:
            w = seen[key] = len(texts)
            texts.append(json.dumps(enc[1:], separators=(",", ":"), ensure_ascii=False))
        where.append(w)
    return _part([enc[0] for enc in rows], where, texts, 0, len(rows))


def decode_chunk(data: list | dict) -> tuple[Route, ...]:
    """Routes of one stored chunk (either layout: see ``decode_chunks``)."""
    return decode_chunks([data])[0]


class EncodedRoutes:
    """One route chunk of ``encode_chunk``'s layout kept as received and built into routes on use
    (``model.types.RouteTable``).  Checked whole here: its parts have the right types and lengths, its
    indexes are in range, and every template is decoded now into a prototype route (a route of no destination),
    so building any of it later cannot fail: a route is its template's prototype with its destination, built
    field by field as ``decode_chunks`` builds (equal values, shared next hop lists)."""

    __slots__ = ("_d", "_text", "_i", "_protos")

    def __init__(self, chunk: dict) -> None:
        d, text, i = chunk.get("d"), chunk.get("t"), chunk.get("i")
        if type(d) is not list or type(text) is not str:
            raise ValueError("Route chunk: 'd' is not a list or 't' not a text")
        if d and set(map(type, d)) != {str}:
            raise ValueError("Route chunk: a destination is not a text")
        templates = json.loads(text)
        if type(templates) is not list:
            raise ValueError("Route chunk: the templates are not a list")
        if i is None:
            if d and len(templates) != 1:
                raise ValueError(f"Route chunk: {len(templates)} templates and no index")
        elif type(i) is not list or len(i) != len(d):
            raise ValueError("Route chunk: the template indexes are not one per route")
        elif i and (set(map(type, i)) != {int} or not 0 <= min(i) <= max(i) < len(templates)):
            raise ValueError("Route chunk: template index out of range")
        if templates and set(map(type, templates)) != {list}:
            raise ValueError("Route chunk: a template is not a list")
        self._protos: tuple[Route, ...] = tuple(_from_templates([""] * len(templates), templates,
                                                                range(len(templates)))) if templates else ()
        self._d: list[str] = d
        self._text: str = text
        self._i: list[int] | None = i

    def __len__(self) -> int:
        return len(self._d)

    def keys(self, positions: Sequence[int] | None = None) -> Iterator[RouteKey]:
        d, i, protos = self._d, self._i, self._protos
        if not d:
            return iter(())
        if i is None:
            table, metric = protos[0].table, protos[0].metric
            return ((table, dst, metric) for dst in (d if positions is None else map(d.__getitem__, positions)))
        tk = [(r.table, r.metric) for r in protos]
        pairs = zip(d, i) if positions is None else ((d[p], i[p]) for p in positions)
        return ((tk[w][0], dst, tk[w][1]) for dst, w in pairs)

    def positions(self, dsts: Iterable[str]) -> list[int]:
        """Positions of the routes to any of ``dsts``, in order (C-level searches: the few anycast prefixes in
        a table of thousands)."""
        d, out = self._d, []
        for x in set(dsts):
            at = -1
            with contextlib.suppress(ValueError):
                while True:
                    at = d.index(x, at + 1)
                    out.append(at)
        out.sort()
        return out

    def build(self, positions: Sequence[int] | None = None) -> tuple[Route, ...]:
        d, i, protos = self._d, self._i, self._protos
        dsts = d if positions is None else [d[p] for p in positions]
        n = len(dsts)
        if not n:
            return ()
        if len(protos) == 1:
            columns = [dsts] + [repeat(getattr(protos[0], name), n) for name in _ROUTE_NAMES]
        elif positions is not None and n < len(protos):  # a few routes (a lookup's): their prototypes only
            chosen = [protos[i[p]] for p in positions]  # type: ignore[index, union-attr]
            columns = [dsts] + [[getattr(r, name) for r in chosen] for name in _ROUTE_NAMES]
        else:
            where = i if positions is None else [i[p] for p in positions]  # type: ignore[index]
            columns = [dsts] + [map([getattr(r, name) for r in protos].__getitem__, where) for name in _ROUTE_NAMES]
        return tuple(_build(n, columns))

    def nexthops(self) -> Iterator[Nexthop]:
        return (nh for r in self._protos for nh in r.nexthops)

    def same(self, other: Any) -> bool:
        return isinstance(other, EncodedRoutes) and self._text == other._text and self._i == other._i \
            and self._d == other._d

    def chunk(self) -> dict:
        """The chunk as ``encode_chunk`` made it."""
        out: dict = {"d": self._d, "t": self._text}
        if self._i is not None:
            out["i"] = self._i
        return out

    def split(self, max_rows: int, mask: int) -> list[dict]:
        """``split_chunks`` of these routes, made from the encoding: a route's row is its destination then its
        template, so the row's ``repr`` (where a chunk ends) and each chunk (``encode_chunk``'s layout) come
        from the destinations and the few templates, no route built or encoded (a bus viewer's recorder
        stores a 2,000-device fabric's 4 M routes when it joins)."""
        d, i = self._d, self._i
        templates = json.loads(self._text)
        tails = [repr(t)[1:] for t in templates]  # repr([dst, *t]) == "[" + repr(dst) + ", " + repr(t)[1:]
        texts = [json.dumps(t, separators=(",", ":"), ensure_ascii=False) for t in templates]
        where: Sequence[int] = i if i is not None else [0] * len(d)
        out: list[dict] = []
        start, crc32 = 0, zlib.crc32
        for p, (dst, w) in enumerate(zip(d, where)):
            if p + 1 - start >= max_rows or (crc32(f"[{dst!r}, {tails[w]}".encode()) & mask) == 0:
                out.append(_part(d, where, texts, start, p + 1))
                start = p + 1
        if start < len(d):
            out.append(_part(d, where, texts, start, len(d)))
        return out


def _part(d: list[str], where: Sequence[int], texts: list[str], a: int, b: int) -> dict:
    """The chunk of rows ``a:b`` (destinations ``d``, each row's template ``where``, the templates as JSON
    ``texts``): the one place ``encode_chunk``'s layout is made (distinct templates sorted by their text)."""
    sel = where[a:b]
    used = {w: texts[w] for w in set(sel)}
    order = sorted(set(used.values()))
    out: dict = {"d": d[a:b], "t": "[" + ",".join(order) + "]"}
    if len(order) > 1:
        pos = {t: k for k, t in enumerate(order)}
        index = {w: pos[t] for w, t in used.items()}
        out["i"] = list(map(index.__getitem__, sel))
    return out


def split_chunks(routes: tuple[Route, ...] | RouteTable, max_rows: int, mask: int) -> list[dict]:
    """A route table as a recording stores it: chunks (``encode_chunk``) cut where content says (a route whose
    row's CRC-32 has the ``mask`` bits clear ends its chunk, or ``max_rows``), so a changed route changes its
    chunk only and the others are stored once.  A table received encoded is cut from its encoding, alike."""
    if isinstance(routes, RouteTable) and isinstance(routes.encoded, EncodedRoutes):
        return routes.encoded.split(max_rows, mask)
    out: list[dict] = []
    rows: list[list] = []
    for r in routes:
        enc = encode(r)
        rows.append(enc)
        if len(rows) >= max_rows or (zlib.crc32(repr(enc).encode()) & mask) == 0:
            out.append(encode_chunk(rows))
            rows = []
    if rows:
        out.append(encode_chunk(rows))
    return out


def routes_of_chunk(data: list | dict) -> tuple[Route, ...] | RouteTable:
    """The routes of one chunk: a ``RouteTable`` built on use for ``encode_chunk``'s layout (checked now),
    the routes themselves for schemas 1-2's rows."""
    if type(data) is dict:
        return RouteTable(EncodedRoutes(data))
    return decode_chunk(data)


def chunk_of_routes(routes: tuple[Route, ...] | RouteTable) -> dict:
    """``encode_chunk`` of ``routes``; a table received encoded is handed back as it came (not built)."""
    if isinstance(routes, RouteTable) and isinstance(routes.encoded, EncodedRoutes):
        return routes.encoded.chunk()
    return encode_chunk([encode(r) for r in routes])


def decode_chunks(chunks: list) -> list[tuple[Route, ...]]:
    """``decode_chunk`` of each of ``chunks``, built together (a cold seek decodes ~3,000 chunks).

    Two layouts: schema 3's templates (``encode_chunk``, a dict) and schemas 1-2's rows (``[next hop lists,
    routes]``, a route's field 9 indexing the next hop lists).  Routes are built column by column with
    C-level loops (``map`` over the slot setters of objects made by ``object.__new__``), not by calling
    ``Route(...)`` per route: the generated frozen ``__init__`` was most of a cold seek's cost.  Each route
    equals ``Route(*fields)`` of its row (tests/unit/test_record_codec.py); equal next hop lists, flags and
    extras become one shared tuple.
    """
    if all(type(c) is dict for c in chunks):
        return _decode_templated(chunks)
    if not any(type(c) is dict for c in chunks):
        return _decode_rows(chunks)
    out: list[tuple[Route, ...] | None] = [None] * len(chunks)
    for want in (True, False):
        at = [k for k, c in enumerate(chunks) if (type(c) is dict) is want]
        for k, built in zip(at, (_decode_templated if want else _decode_rows)([chunks[k] for k in at])):
            out[k] = built
    return out  # type: ignore[return-value]


def _build(n: int, columns: list) -> list[Route]:
    """``n`` routes whose field i takes its values from the iterable ``columns[i]``.

    ``starmap`` over ``zip`` rather than ``map`` over two iterables: zip hands the same argument tuple
    back while nobody keeps it, and starmap passes it on as is, so no tuple is made per call (the slot
    setter takes a tuple): ~1.8x faster a column."""
    objs = list(starmap(_new, repeat((Route,), n)))
    for setter, values in zip(_ROUTE_SET, columns):
        deque(starmap(setter, zip(objs, values)), 0)
    return objs


def _split(objs: list[Route], sizes: list[int]) -> list[tuple[Route, ...]]:
    out, at = [], 0
    for size in sizes:
        out.append(tuple(objs[at:at + size]))
        at += size
    return out


def _decode_templated(chunks: list[dict]) -> list[tuple[Route, ...]]:
    dsts: list = []
    sizes: list[int] = []
    tables: dict[str, list[int]] = {}  # templates text -> positions of its templates in ``templates``
    index: dict[str, int] = {}  # one template (JSON text) -> its position in ``templates``
    templates: list[list] = []
    where: list[int] = []  # per route: its template's position
    for c in chunks:
        d, text, i = c["d"], c["t"], c.get("i")
        n = len(d)
        local = tables.get(text)
        if local is None:
            local = tables[text] = []
            for t in json.loads(text):
                if type(t) is not list:
                    raise ValueError("Route chunk: a template is not a list")
                key = repr(t)
                g = index.get(key)
                if g is None:
                    g = index[key] = len(templates)
                    templates.append(t)
                local.append(g)
        if i is None:
            if n and len(local) != 1:
                raise ValueError(f"Route chunk: {len(local)} templates and no index")
            where += repeat(local[0], n) if n else ()
        else:
            if len(i) != n:
                raise ValueError(f"Route chunk: {n} routes, {len(i)} template indexes")
            if i and not 0 <= min(i) <= max(i) < len(local):
                raise ValueError("Route chunk: template index out of range")
            where += map(local.__getitem__, i)
        dsts += d
        sizes.append(n)
    if not dsts:
        return [() for _ in chunks]
    return _split(_from_templates(dsts, templates, where), sizes)


def _from_templates(dsts: list, templates: list[list], where: Sequence[int]) -> list[Route]:
    """Routes to ``dsts``, route k built from the template ``templates[where[k]]`` (a list each; ValueError for a
    template of the wrong width)."""
    n = len(dsts)
    width = max(map(len, templates)) + 1
    least = min(map(len, templates)) + 1
    if width > len(_ROUTE_SPEC) or least < _ROUTE_REQUIRED:
        raise ValueError(f"Route: rows of {least}..{width} values, the type has {len(_ROUTE_SPEC)} fields")
    shared: dict = {}  # equal tuples (next hop lists, flags, extras) shared by every route of the batch
    nexthops: dict[str, tuple[Nexthop, ...]] = {}
    columns: list[Any] = [dsts]
    for f in range(1, len(_ROUTE_SPEC)):
        _name, default, conv = _ROUTE_SPEC[f]
        if f >= width:
            columns.append(repeat(default, n))
            continue
        raw = [t[f - 1] if len(t) >= f else _ROUTE_PAD[f] for t in templates]
        if f == _ROUTE_NH:
            vals = [_nexthop_list(nexthops, v) for v in raw]
        elif conv is _PLAIN:
            vals = raw
        elif conv is _STRS:
            vals = [shared.setdefault(x, x) for x in map(tuple, raw)]
        elif conv is _EXTRA:
            vals = [shared.setdefault(x, x) for x in (tuple(map(tuple, v)) for v in raw)]
        else:
            vals = list(map(conv[1], raw))
        first = vals[0]
        same = all(v is first or (type(v) is type(first) and v == first) for v in vals)
        columns.append(repeat(first, n) if same else map(vals.__getitem__, where))
    return _build(n, columns)


def _nexthop_list(memo: dict[str, tuple[Nexthop, ...]], encoded: list) -> tuple[Nexthop, ...]:
    """The decoded next hop list ``encoded``, one shared tuple per distinct list in ``memo``."""
    key = repr(encoded)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = tuple(_nexthop(x) for x in encoded)
    return hit


def _decode_rows(chunks: list[list]) -> list[tuple[Route, ...]]:
    rows: list[list] = []
    nh_cols: list[Any] = []
    sizes: list[int] = []
    lists: dict[str, tuple[Nexthop, ...]] = {}  # the same next hop lists recur in every chunk of a device
    for table, part in chunks:
        nhs = [_nexthop_list(lists, lst) for lst in table]
        nhs.append(())  # index -1: a row that leaves its next hops out
        nh_cols.append((nhs.__getitem__, len(part)))
        sizes.append(len(part))
        rows += part
    n = len(rows)
    if not n:
        return [() for _ in chunks]
    width = max(map(len, rows))
    least = min(map(len, rows))
    if width > len(_ROUTE_SPEC) or least < _ROUTE_REQUIRED:
        raise ValueError(f"Route: rows of {least}..{width} values, the type has {len(_ROUTE_SPEC)} fields")
    tails = [_ROUTE_PAD_ROWS[k:width] for k in range(width + 1)]
    cols = list(zip(*[r + tails[len(r)] if len(r) < width else r for r in rows]))
    columns: list[Any] = []
    for i, (name, default, conv) in enumerate(_ROUTE_SPEC):
        if i >= width:
            values: Any = repeat(default, n)
        elif i == _ROUTE_NH:
            col, at, parts = cols[i], 0, []
            for get, size in nh_cols:
                parts.append(map(get, col[at:at + size]))
                at += size
            values = chain.from_iterable(parts)
        elif conv is _PLAIN:
            values = cols[i]
        elif conv is _STRS:
            values = map(tuple, cols[i])
        elif conv is _EXTRA:
            same: dict = {}  # equal extras share one tuple: fewer objects for the collector to walk
            values = [same.setdefault(x, x) for x in (tuple(map(tuple, v)) if v else () for v in cols[i])]
        else:
            values = map(conv[1], cols[i])
        columns.append(values)
    return _split(_build(n, columns), sizes)


_ROUTE_SPEC = _SPEC[Route]
_ROUTE_NH = [name for name, _, _ in _ROUTE_SPEC].index("nexthops")
_ROUTE_REQUIRED = sum(1 for _, d, _ in _ROUTE_SPEC if d is _MISSING)
_ROUTE_PAD = [None if d is _MISSING else conv[0](d) for _, d, conv in _ROUTE_SPEC]  # encoded defaults
_ROUTE_PAD_ROWS = list(_ROUTE_PAD)
_ROUTE_PAD_ROWS[_ROUTE_NH] = -1  # rows index their chunk's next hop lists
_ROUTE_SET = [getattr(Route, name).__set__ for name, _, _ in _ROUTE_SPEC]  # slot setters, called from C
_ROUTE_NAMES = [name for name, _, _ in _ROUTE_SPEC[1:]]  # every field after the destination
_new = object.__new__
