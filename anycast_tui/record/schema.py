"""The session file's format, shared by its writer (``record.writer``) and reader (``record.reader``).

One SQLite database in WAL mode (file mode 0600), schema version in
``meta``.  Why SQLite rather than an append-only framed file: seeking needs an
index (SQLite gives it by rowid, the framed file needs a scan or a side
index); readers open a file while the recorder still writes it (WAL); a
commit is atomic, so a kill -9 loses only the uncommitted batch (we commit
once a second), and the WAL is checkpointed into the file at every keyframe,
so the file alone lacks at most one keyframe interval; content-addressed
blobs need random reads by id.  What the framed file does well, recovering
frames after a damaged one, SQLite does too when a table is read by rowid
ranges (a seek past a damaged leaf finds the next one: a damaged page loses
only its rows), and a per-record CRC tells intact records from damaged ones.
Sizes and timings: bench/bench_record.py.

Layout:

* ``ticks(seq, t_ms, key, crc, data)`` - one row per flush (at most one a
  second while anything changes; nothing at all when nothing does).  A
  keyframe (``key`` = 1, every N ticks) lists every device; a delta only the
  devices whose state changed.  Per device: the id of its *manifest* (0 when
  the content is unchanged), its collection time as an offset from the tick,
  its health when that changed.
* ``blobs(id, seq, crc, data)`` - zlib-compressed JSON, content-addressed
  (stored once per file): manifests (device, hash settings, interface blob,
  nexthop blob, route chunk blobs[, FRR RIB: [RIB entry chunk blobs, BGP blob]])
  and route chunks cut where a route's CRC says so (content-defined, so a
  route added or withdrawn changes one chunk).  Schema 3 stores a route chunk
  as its destinations, the JSON text of its distinct templates (a route's
  encoding without its destination, sorted) and one template index per route
  (``codec.encode_chunk``); schemas 1-2 stored rows.
* events travel in their tick's payload (``key`` bit 2 set), so a tick and
  its events are kept or lost together; since schema 3 they come first in it;
* ``notes(id, seq, t_ms, kind, crc, data)`` - impact summaries (kind
  ``impact``, the event's position inside) and what-if runs (``whatif``).

A state in a file is exact at each tick (``state_at(t)`` is the snapshot the
live timeline had at the last tick at or before ``t``); changes within one
flush interval are coalesced, events never are.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

# 2: a manifest may carry the device's FRR RIB (6th item); 3: route chunks hold templates (codec.encode_chunk)
SCHEMA_VERSION = 3
BASE_SCHEMA_VERSION = 3  # what a file says until it stores something of a later version
SUFFIX = ".atrec"
FORMAT = "anycast-tui recording"
DEFAULT_KEYFRAME_EVERY = 60
EVENTS_FIRST = b'{"e":'  # a tick payload with events starts so (schema 3): a reader parses only them
_ZLIB_MIN = 96  # shorter payloads are stored as plain JSON
_INFLATE_MAX = 1 << 26  # the largest output buffer unpack sets aside at first (a payload may still grow past it)
# a payload inflating past this is refused (PayloadTooLarge): twice the largest device output a collector takes by
# default (max_output_mib 512: ~1.7M routes of `ip -j route show`); our encoding of a table is ~1/15 of that text
MAX_INFLATED = 1 << 30
_DEFLATE_MAX_RATIO = 1032  # deflate's largest expansion (a 258-byte match in 2 bits): a bound, not an estimate

DDL = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE blobs(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, crc INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE ticks(seq INTEGER PRIMARY KEY, t_ms INTEGER NOT NULL, key INTEGER NOT NULL, crc INTEGER NOT NULL,
                   data BLOB NOT NULL);
CREATE TABLE notes(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, t_ms INTEGER NOT NULL, kind TEXT NOT NULL,
                   crc INTEGER NOT NULL, data BLOB NOT NULL);
"""


def pack(obj: Any) -> bytes:
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return b"z" + zlib.compress(raw, 6) if len(raw) >= _ZLIB_MIN else b"j" + raw


class PayloadTooLarge(ValueError):
    """A payload that inflates past the limit: refused, not inflated further (a zlib bomb, or a table larger
    than any a collector keeps)."""


def inflate(data: bytes, limit: int | None = None) -> bytes:
    """The JSON text of a payload; ValueError for an unknown tag, zlib.error for a broken stream,
    PayloadTooLarge when it inflates past ``limit`` bytes (default ``MAX_INFLATED``; memory stays within it)."""
    if limit is None:
        limit = MAX_INFLATED
    tag, body = data[:1], data[1:]
    if tag == b"j":
        return body
    if tag != b"z":
        raise ValueError("unknown payload tag")
    if len(body) * _DEFLATE_MAX_RATIO <= limit:  # cannot pass the limit: one call, one output buffer
        # an output buffer for the whole payload at once (ours compress ~12x): zlib lets the GIL go around each
        # piece it inflates, and getting it back from a busy worker thread costs the event loop a switch interval
        return zlib.decompress(body, zlib.MAX_WBITS, min(max(zlib.DEF_BUF_SIZE, 16 * len(body)), _INFLATE_MAX))
    d = zlib.decompressobj()
    text = d.decompress(body, limit + 1)
    if len(text) > limit:
        raise PayloadTooLarge(f"payload inflates past {limit / 2**20:g} MiB, refused (a zlib bomb?)")
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")
    return text


def unpack(data: bytes, limit: int | None = None) -> Any:
    """The object a payload holds (``inflate``'s errors, or ValueError for invalid JSON)."""
    return json.loads(inflate(data, limit))


def crc(data: bytes) -> int:
    return zlib.crc32(data)


def intact(data: Any, c: Any) -> bool:
    """Whether a stored record's ``data`` matches its CRC ``c`` (false for anything of the wrong type)."""
    return isinstance(data, bytes) and isinstance(c, int) and zlib.crc32(data) == c
