"""Session files, read: ``Recording.open`` scans and checks a file (recovering what damage left), seeks it.

Format: ``record.schema``.  Seeks: ``state_at`` decodes tick bodies and manifests only; a device's records
are built on first access (``LazyDevices``; ``values()``/``items()`` build all that are left in one batch)
from chunks cached by content id, so a later seek builds only the chunks it has not seen.  Building every
device's routes: one query per 500 blocks, one JSON parse per batch, each chunk's templates parsed and
converted once per batch (schema 3), routes made column by column from C (``codec.decode_chunks``), no
cyclic GC meanwhile.  Opening checks every CRC: ticks in batches with C-level loops, and only a tick's
events are parsed.  Timings: bench/bench_record.py.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import sqlite3
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ItemsView, Iterator, Mapping, Sequence, ValuesView

from anycast_tui.model.types import (BgpMultipath, DeviceState, Event, FabricSnapshot, Health, HashSettings,
                                     Interface, NexthopTable, Rib, RibRoute, Route, Device)
from anycast_tui.record.codec import decode, decode_chunk, decode_chunks, gc_paused
from anycast_tui.record.schema import (DDL, DEFAULT_KEYFRAME_EVERY, EVENTS_FIRST, FORMAT, SCHEMA_VERSION, inflate,
                                       intact, unpack)

# Readers of older schemas: version -> function upgrading the in-memory view (none yet).
_UPGRADES: dict[int, Callable[["Recording"], None]] = {}


class RecordingError(Exception):
    """A file that cannot be read as a recording (the message says why, in one line)."""


_JSON = json.JSONDecoder()


def _tick_events(data: bytes) -> list:
    """The encoded events of a tick's payload; since schema 3 they come first and only they are parsed."""
    text = inflate(data)
    if text.startswith(EVENTS_FIRST):
        events, _end = _JSON.raw_decode(text.decode(), len(EVENTS_FIRST))
        return events
    return json.loads(text)["e"]  # schemas 1-2: the events anywhere in the payload (inflated once, above)


def _salvage(p: Path, frames: Sequence[tuple[int, bytes]] = (), size: int = 0) -> sqlite3.Connection | None:
    """An in-memory copy of a damaged file, its page count set to what is left (None if not SQLite).

    ``frames`` (page number, page of ``size`` bytes) are written over it in order: the whole frames of a
    ``-wal`` sidecar that was cut short, which SQLite itself would drop back to its last complete commit.
    """
    try:
        data = bytearray(p.read_bytes())
    except OSError:
        return None
    for pgno, page in frames:
        end = pgno * size
        if len(data) < end:
            data += bytes(end - len(data))
        data[end - size:end] = page
    if not data.startswith(b"SQLite format 3\0") or len(data) < 100:
        return None
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    if size < 512 or size & (size - 1):
        return None
    data += bytes(-len(data) % size)
    data[28:32] = (len(data) // size).to_bytes(4, "big")
    data[18:20] = b"\x01\x01"  # rollback-journal mode: the copy has no WAL
    db = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        db.deserialize(bytes(data))
    except sqlite3.DatabaseError:
        return None
    return db


_WAL_MAGIC = (0x377F0682, 0x377F0683)


def _wal_cut(wal: Path) -> tuple[int, list[tuple[int, bytes]], int] | None:
    """A ``-wal`` sidecar cut short inside a frame: (page size, its whole frames of the current generation as
    (page number, page), bytes of the cut frame left); None when it is whole or absent (SQLite reads it itself).

    A WAL is a header (32 bytes: magic, version, page size, checkpoint count, two salts, checksum) and frames of
    a 24-byte header (page number, database size at a commit, the salts, checksum) and a page; frames of an
    older generation (before the last checkpoint restarted it) carry other salts.
    """
    try:
        raw = wal.read_bytes()
    except OSError:
        return None
    if len(raw) < 32 or int.from_bytes(raw[:4], "big") not in _WAL_MAGIC:
        return None
    size = int.from_bytes(raw[8:12], "big")
    size = 65536 if size == 1 else size
    if size < 512 or size > 65536 or size & (size - 1):
        return None
    salt, step, off = raw[16:24], size + 24, 32
    frames = []
    while off + step <= len(raw) and raw[off + 8:off + 16] == salt:
        pgno = int.from_bytes(raw[off:off + 4], "big")
        if pgno:
            frames.append((pgno, raw[off + 24:off + step]))
        off += step
    rest = len(raw) - off
    if rest == 0 or rest >= step or (rest >= 16 and raw[off + 8:off + 16] != salt):
        return None  # whole, or the cut fell in an older generation's frames (nothing current lost)
    return size, frames, rest


def _bytes(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _why(exc: BaseException) -> str:
    """An exception's message fit for one line of a terminal (damaged text can carry any byte)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(exc) or type(exc).__name__)
    return text if len(text) <= 100 else text[:99] + "…"


def _next_readable(db: sqlite3.Connection, sql: str, after: int) -> int | None:
    """The rowid of the first row after ``after`` that ``sql`` (``WHERE rowid >= ?``) reads, None if none.

    Further and further rowids are tried (SQLite's b-tree seeks past a damaged leaf to the next one), then
    the stretch between the last failure and the first success is halved down to where the damage ends.
    """
    def probe(x: int) -> tuple[bool, int | None]:
        try:
            row = db.execute(sql, (x,)).fetchone()
        except Exception:  # noqa: BLE001 - any failure of a damaged page (SQLite errors, text not UTF-8, ...)
            return False, None
        return True, (row[0] if row else None)

    bad, step = after, 1
    while True:
        x = after + step
        if x >= 2 ** 63 - 1:
            return None
        ok, found = probe(x)
        if ok:
            break
        bad, step = x, step * 2
    while x - bad > 1:
        mid = (bad + x) // 2
        ok, at = probe(mid)
        if ok:
            x, found = mid, at
        else:
            bad = mid
    return found


def _read_rows(db: sqlite3.Connection, cols: str, table: str, gaps: list[tuple[int, int | None, str]],
               batch: int = 8192) -> Iterator[list[tuple]]:
    """The rows of ``table`` (``cols`` starting with its rowid) in rowid order, a batch at a time, stepping over
    damage: after a batch that fails, rows are read one query each (``LIMIT 1``: a cursor steps one row ahead,
    so the row before a damaged page would be lost with it) up to the damage, and reading resumes at the next
    row SQLite can reach (``_next_readable``), so a damaged page loses only its own rows.  Every stretch
    stepped over goes to ``gaps`` as (last rowid read before it or 0, first rowid read after it or None, why)."""
    sql = f"SELECT {cols} FROM {table} WHERE rowid >= ? ORDER BY rowid"
    one = sql + " LIMIT 1"
    lo = 1
    while True:
        last = lo - 1
        try:
            cur = db.execute(sql, (lo,))
            while rows := cur.fetchmany(batch):
                last = max(last, rows[-1][0])
                yield rows
            return
        except Exception as exc:  # noqa: BLE001 - see _next_readable
            why = _why(exc)
        lo = last + 1
        while True:  # one row a query, up to the damage
            try:
                row = db.execute(one, (lo,)).fetchone()
            except Exception as exc:  # noqa: BLE001 - see _next_readable
                why = _why(exc)
                break
            if row is None:  # the end as a seek sees it; the scan that failed saw damage there
                gaps.append((lo - 1, None, why))
                return
            yield [row]
            lo = max(lo, row[0]) + 1
        nxt = _next_readable(db, one, lo - 1)
        if nxt is not None and nxt < lo + 1:  # the probe reads the row this query could not: step over it
            nxt = _next_readable(db, one, lo)
        gaps.append((lo - 1, nxt, why))
        if nxt is None:
            return
        lo = nxt


def _stretches(seqs: Sequence[int], why: Callable[[int], str], limit: int = 8) -> list[str]:
    """``ticks 23-26 lost: why`` for each run of consecutive ``seqs`` with the same reason (at most ``limit``)."""
    out: list[tuple[int, int, str]] = []
    for s in seqs:
        w = why(s)
        if out and out[-1][1] == s - 1 and out[-1][2] == w:
            out[-1] = (out[-1][0], s, w)
        else:
            out.append((s, s, w))
    text = [f"tick {a} lost: {w}" if a == b else f"ticks {a}-{b} lost: {w}" for a, b, w in out[:limit]]
    if len(out) > limit:
        text.append(f"{sum(b - a + 1 for a, b, _w in out[limit:])} more ticks lost in {len(out) - limit} stretches")
    return text


_UNCHAINED = "changes to a lost tick (state resumes at the next keyframe)"


_MERGE = (("blobs", "id, seq, crc, data", (int, int, int, bytes)),
          ("ticks", "seq, t_ms, key, crc, data", (int, int, int, int, bytes)),
          ("notes", "id, seq, t_ms, kind, crc, data", (int, int, int, str, int, bytes)))


def _merge(sources: Sequence[sqlite3.Connection | None]) -> sqlite3.Connection | None:
    """One in-memory recording of every intact row of ``sources`` (the first source's row wins a rowid, a
    later one's ``meta`` value a key); None when none is readable.  Records are only ever added to a
    recording, so any version of a page holds genuine rows."""
    dbs = [db for db in sources if db is not None]
    if not dbs:
        return None
    out = sqlite3.connect(":memory:", check_same_thread=False)
    out.executescript(DDL)
    for db in dbs:
        gaps: list[tuple[int, int | None, str]] = []
        for rows in _read_rows(db, "rowid, key, value", "meta", gaps):
            out.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(k, v) for _r, k, v in rows if isinstance(k, str) and isinstance(v, str)])
        for table, cols, types in _MERGE:
            marks = ",".join("?" * len(types))
            for rows in _read_rows(db, cols, table, gaps):
                out.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})",
                                [r for r in rows if all(type(v) is t for v, t in zip(r, types))
                                 and zlib.crc32(r[-1]) == r[-2]])
        db.close()
    return out


def _meta(db: sqlite3.Connection) -> tuple[dict[str, str], str]:
    """The ``meta`` records a read can reach, and why some could not be read ('' when all could)."""
    gaps: list[tuple[int, int | None, str]] = []
    meta: dict[str, str] = {}
    for rows in _read_rows(db, "rowid, key, value", "meta", gaps):
        meta.update((k, v) for _r, k, v in rows if isinstance(k, str) and isinstance(v, str))
    return meta, (gaps[0][2] if gaps else "")



@dataclass(frozen=True, slots=True)
class Damage:
    """What reading a file lost: ``seq``/``t_ms`` the last tick before the first loss (0/None: none),
    ``reason`` that first loss, ``lost`` every loss in one phrase each (ticks by stretch and why, notes,
    the -wal sidecar); ``ticks_kept`` of ``ticks_total`` ticks recovered."""

    seq: int
    t_ms: int | None
    reason: str
    lost: tuple[str, ...] = ()
    ticks_kept: int = 0
    ticks_total: int = 0

    def __str__(self) -> str:
        head = (f"{self.ticks_kept} of {self.ticks_total} ticks recovered" if self.ticks_kept < self.ticks_total
                else f"all {self.ticks_total} ticks recovered")
        return "damaged: " + "; ".join((head, *(self.lost or (self.reason,))))


@dataclass(frozen=True, slots=True)
class Tick:
    seq: int
    t_ms: int
    keyframe: bool


@dataclass
class _DevRef:
    mid: int
    collected_at_ms: int | None
    health: Health


class LazyDevices(Mapping[str, DeviceState]):
    """The devices of a recorded tick, each decoded on first access (a read-only mapping, thread-safe);
    ``values()`` and ``items()`` build all that are left at once."""

    __slots__ = ("_rec", "_order", "_refs", "_done")

    def __init__(self, rec: "Recording", order: Sequence[str], refs: dict[str, _DevRef]) -> None:
        self._rec, self._order, self._refs = rec, tuple(order), refs
        self._done: dict[str, DeviceState] = {}

    def __getitem__(self, name: str) -> DeviceState:
        s = self._done.get(name)
        if s is None:
            s = self._done[name] = self._rec._device(self._refs[name])
        return s

    def __contains__(self, name: object) -> bool:
        return name in self._refs

    @property
    def built(self) -> tuple[str, ...]:
        """The devices built so far, in the order they were built (none until one is read)."""
        return tuple(self._done)

    def _build_all(self) -> None:
        pending = [n for n in self._order if n not in self._done]
        if pending:
            for n, s in zip(pending, self._rec._devices([self._refs[n] for n in pending])):
                self._done.setdefault(n, s)

    def values(self) -> ValuesView[DeviceState]:
        """Every device, built in one batch (one query, one pass of the route builder)."""
        self._build_all()
        return ValuesView(self)

    def items(self) -> ItemsView[str, DeviceState]:
        self._build_all()
        return ItemsView(self)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"LazyDevices({list(self._order)!r})"


@dataclass
class Recording:
    """A session file opened for reading: ``window``, ``events``, ``state_at(t)``, ``ticks()``, ``damage``."""

    path: Path
    meta: dict[str, str]
    schema_version: int
    damage: Damage | None = None
    events: list[Event] = field(default_factory=list)
    event_seqs: list[int] = field(default_factory=list)
    notes: list[tuple[int, str, dict]] = field(default_factory=list)  # (t_ms, kind, body)
    _db: sqlite3.Connection | None = None
    _seqs: list[int] = field(default_factory=list)
    _times: list[int] = field(default_factory=list)
    _keys: list[int] = field(default_factory=list)  # indexes of keyframes in _seqs
    # the ticks a state is built from: _seqs and the ticks among them hidden for needing a damaged data block
    _cseqs: list[int] = field(default_factory=list)
    _ctimes: list[int] = field(default_factory=list)
    _ckeys: list[int] = field(default_factory=list)  # indexes of keyframes in _cseqs
    _blobs: dict[int | tuple[str, int], Any] = field(default_factory=dict)  # raw by id; built by (kind, id)
    _cursor: tuple[int, dict[str, _DevRef], list[str], tuple[str, ...]] | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    BLOB_CACHE = 50_000

    @classmethod
    def open(cls, path: str | os.PathLike, *, check: bool = True,
             wal_pages_read: Callable[[], None] | None = None) -> "Recording":
        """Open ``path``; ``check`` verifies every record's CRC now (else as records are read).

        Damage never ends the reading: every intact tick is recovered (tables are read by rowid ranges, so a
        damaged page loses only its own rows; a delta whose tick before it is lost waits for the next
        keyframe; with ``check``, a tick needing a data block that is not intact is left out), and
        ``damage`` says every loss.  A ``-wal`` sidecar cut short is read up to its last whole page, unless
        it grew meanwhile: then a recorder is writing it (caught inside a page), and SQLite reads it as it is
        then.  ``wal_pages_read``, if given, is called right after those whole pages are read and before the
        ``-wal``'s size is looked at again: where a recorder's writes turn a cut ``-wal`` into a growing one
        (tests reproduce that race through it)."""
        p = Path(path)
        if not p.is_file():
            raise RecordingError(f"{p}: no such file")
        losses: list[str] = []
        wal = p.with_name(p.name + "-wal")
        wal_bytes = _bytes(wal)  # before SQLite opens the file (it makes an empty one)
        cut = _wal_cut(wal)
        merged = None
        if cut is not None:
            size, frames, rest = cut
            # the file as it is (what the last checkpoint copied into it) and with the whole pages of the -wal
            # written over it (older versions of pages the checkpoint already copied among them): every intact
            # row of either
            merged = _merge([_salvage(p), _salvage(p, frames, size)])
            if wal_pages_read is not None:
                wal_pages_read()
            if _bytes(wal) != wal_bytes:  # it grew meanwhile: a recorder writing it, caught inside a page
                cut = None
                if merged is not None:
                    merged.close()
        db: sqlite3.Connection | None = None
        meta: dict[str, str] = {}
        why = ""
        if cut is None:
            try:
                db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, check_same_thread=False)
                meta, why = _meta(db)
            except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes SQLite say
                why = _why(exc)
        if cut is not None or meta.get("format") != FORMAT:
            salvaged = merged if cut else _salvage(p)  # a truncated file: its header still counts the lost pages
            if salvaged is not None:
                smeta, swhy = _meta(salvaged)
                if smeta.get("format") == FORMAT or not meta:
                    if db is not None:
                        db.close()
                    db, meta, why = salvaged, smeta, swhy
                else:
                    salvaged.close()
            if cut is not None:
                losses.append(f"the -wal sidecar is cut short ({rest} bytes of a page left): what it held after "
                              "its last whole page is lost")
        if not meta or db is None:
            if db is not None:
                db.close()
            raise RecordingError(f"{p}: not a readable recording ({why or 'no records'})")
        if meta.get("format") != FORMAT:
            db.close()
            raise RecordingError(f"{p}: not an anycast-tui recording")
        if why:
            losses.append(f"file information partly unreadable ({why})")
        if "closed_ms" not in meta and not wal_bytes:
            losses.append(f"not closed and without its -wal sidecar: what was written after the last keyframe "
                          f"(at most {meta.get('keyframe_every', DEFAULT_KEYFRAME_EVERY)} ticks) is lost")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            db.close()
            raise RecordingError(f"{p}: no schema version") from None
        if version > SCHEMA_VERSION:
            db.close()
            raise RecordingError(f"{p}: schema version {version} is newer than this anycast-tui reads "
                                 f"(up to {SCHEMA_VERSION}); upgrade anycast-tui to replay it")
        rec = cls(p, meta, version, _db=db)
        for v in range(version, SCHEMA_VERSION):
            if v in _UPGRADES:
                _UPGRADES[v](rec)
        with gc_paused():  # a day's ticks and events: long-lived, nothing cyclic (see codec.gc_paused)
            rec._scan(check, losses)
        return rec

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ scanning

    _SCAN = "seq, t_ms, key, crc, data"
    SCAN_BATCH = 8192

    def _summary(self, key: str) -> int | None:
        """A count the recorder wrote into ``meta`` when it closed the file (None: not closed, or unreadable)."""
        try:
            v = json.loads(self.meta.get("summary", "{}")).get(key)
        except (ValueError, AttributeError):
            return None
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    def _scan(self, check: bool, losses: list[str]) -> None:
        """Read every tick (batches checked with C-level loops; a batch with any doubt tick by tick), the notes,
        with ``check`` every data block; then say what was lost in ``damage``."""
        assert self._db is not None
        gaps: list[tuple[int, int | None, str]] = []
        refused: dict[int, str] = {}  # tick -> why it was read but not taken
        nxt, chained = 1, False  # the next tick expected; whether the tick before it is in the chain
        for rows in _read_rows(self._db, self._SCAN, "ticks", gaps, self.SCAN_BATCH):
            if rows[0][0] == nxt and self._take(rows, chained):
                nxt, chained = rows[-1][0] + 1, True
            else:
                for row in rows:
                    nxt, chained = self._take_row(row, nxt, chained, refused)
        breaks: list[int] = []  # ticks before the last one read whose payload (and events) is unknown
        if len(self._cseqs) < nxt - 1:
            read = set(self._cseqs).union(s for s, w in refused.items() if w == _UNCHAINED)
            breaks = [s for s in range(1, nxt) if s not in read]
        note_seq = self._read_notes(breaks, losses)
        blob_losses: list[str] = []
        blob_seq, hidden = (self._check_blobs(bool(gaps or refused or losses or breaks), blob_losses) if check
                            else (0, {}))
        total = max(nxt - 1, self._summary("ticks") or 0, blob_seq, note_seq)
        if hidden:
            vis = [i for i, s in enumerate(self._cseqs) if s not in hidden]
            keys = set(self._ckeys)
            self._seqs = [self._cseqs[i] for i in vis]
            self._times = [self._ctimes[i] for i in vis]
            self._keys = [j for j, i in enumerate(vis) if i in keys]
        else:
            self._seqs, self._times, self._keys = self._cseqs, self._ctimes, self._ckeys
        if total == len(self._seqs) and not losses and not blob_losses:
            return
        have = set(self._seqs)
        lost = [s for s in range(1, total + 1) if s not in have]

        def why(s: int) -> str:
            if s in hidden:
                return hidden[s]
            if s in refused:
                return refused[s]
            for a, b, w in gaps:
                if a < s and (b is None or s < b):
                    return f"page damaged ({w})"
            return "missing (its page is damaged)" if s < nxt else "not in the file (lost at its end)"

        phrases = _stretches(lost, why) + blob_losses + losses
        j = bisect.bisect_left(self._seqs, lost[0]) - 1 if lost else len(self._seqs) - 1
        self.damage = Damage(self._seqs[j] if j >= 0 else 0, self._times[j] if j >= 0 else None, phrases[0],
                             tuple(phrases), len(self._seqs), total)

    def _take(self, rows: list[tuple], chained: bool) -> bool:
        """Append a batch of tick rows if every one is intact, in sequence and in time order, and the batch
        continues the chain (else take none and say False)."""
        seqs, times, keys, crcs, datas = zip(*rows)
        n0 = seqs[0]
        if seqs != tuple(range(n0, n0 + len(rows))) or not {int} == set(map(type, times)) \
                == set(map(type, keys)) == set(map(type, crcs)) or set(map(type, datas)) != {bytes} \
                or list(map(zlib.crc32, datas)) != list(crcs) or not (chained or keys[0] & 1) \
                or list(times) != sorted(times) or (self._ctimes and times[0] < self._ctimes[-1]):
            return False
        events: list[tuple[int, list[Event]]] = []
        for i in [i for i, k in enumerate(keys) if k & 2]:
            try:
                events.append((seqs[i], [decode(Event, e) for e in _tick_events(datas[i])]))
            except (ValueError, TypeError, KeyError, zlib.error):
                return False
        for seq, evs in events:
            self.events.extend(evs)
            self.event_seqs.extend([seq] * len(evs))
        c0 = len(self._cseqs)
        self._ckeys.extend([c0 + i for i, k in enumerate(keys) if k & 1])
        self._cseqs.extend(seqs)
        self._ctimes.extend(times)
        return True

    def _take_row(self, row: tuple, nxt: int, chained: bool, refused: dict[int, str]) -> tuple[int, bool]:
        """One tick row: taken into the chain, or refused with the reason; returns the new (nxt, chained)."""
        seq, t, key, c, data = row
        if not isinstance(seq, int) or seq < nxt:
            return nxt, chained  # a stray row of a damaged page
        if not isinstance(t, int) or not isinstance(key, int) or not intact(data, c):
            refused.setdefault(seq, "fails its checksum")
            return nxt, chained
        if self._ctimes and t < self._ctimes[-1]:
            refused.setdefault(seq, "its time is out of order")
            return nxt, chained
        chained = chained and seq == nxt
        if key & 2:
            try:
                evs = [decode(Event, e) for e in _tick_events(data)]
            except (ValueError, TypeError, KeyError, zlib.error) as exc:
                refused[seq] = f"unreadable ({_why(exc)})"
                return seq + 1, False
            self.events.extend(evs)
            self.event_seqs.extend([seq] * len(evs))
        refused.pop(seq, None)
        if key & 1 or chained:
            if key & 1:
                self._ckeys.append(len(self._cseqs))
            self._cseqs.append(seq)
            self._ctimes.append(t)
            return seq + 1, True
        refused[seq] = _UNCHAINED
        return seq + 1, False

    def _read_notes(self, breaks: list[int], losses: list[str]) -> int:
        """Every intact note (a damaged one loses only itself); an impact note's event position becomes the
        event's index in ``events``.  Returns the last tick a note names."""
        assert self._db is not None
        n_ev = len(self.events)
        lost_ev = None if (total_ev := self._summary("events")) is None else total_ev - n_ev
        exact = n_ev if not breaks or lost_ev == 0 else bisect.bisect_left(self.event_seqs, breaks[0])
        after = bisect.bisect_right(self.event_seqs, breaks[-1]) if breaks else n_ev

        def index_of(pos: int) -> int | None:
            if 0 <= pos < exact:
                return pos
            if lost_ev is not None and lost_ev > 0 and after <= pos - lost_ev < n_ev:
                return pos - lost_ev  # one stretch of lost events before it, and the file says how many
            return None

        gaps: list[tuple[int, int | None, str]] = []
        last_id = n = max_seq = impacts = unmatched = 0
        for rows in _read_rows(self._db, "id, seq, t_ms, kind, crc, data", "notes", gaps):
            for nid, seq, t, kind, c, data in rows:
                if not isinstance(nid, int) or nid <= last_id or not isinstance(seq, int) \
                        or not isinstance(t, int) or not isinstance(kind, str) or not intact(data, c):
                    continue
                try:
                    body = unpack(data)
                except (ValueError, zlib.error):
                    continue
                if not isinstance(body, dict):
                    continue
                last_id, n, max_seq = nid, n + 1, max(max_seq, seq)
                if kind == "impact" and isinstance(body.get("event_id"), int):
                    impacts += 1
                    body["event_id"] = index_of(body["event_id"])
                    unmatched += body["event_id"] is None
                self.notes.append((t, kind, body))
        total = max(last_id, self._summary("notes") or 0)
        tail = bool(gaps) and gaps[-1][1] is None and self._summary("notes") is None
        if n < total or tail:
            losses.append(f"notes: {total - n} of {total} unreadable" + (", and any after them" if tail else ""))
        if unmatched:
            losses.append(f"impact notes: {unmatched} of {impacts} name an event that was lost or cannot be placed")
        return max_seq

    def _check_blobs(self, damaged: bool, losses: list[str]) -> tuple[int, dict[int, str]]:
        """Every data block's CRC; when anything is damaged, the ticks that need a block that is not intact
        (returned with why; the walk starts at the keyframe before the first tick that can need one, since
        blocks are written in tick order).  Returns (the last tick a block names, those ticks)."""
        assert self._db is not None
        gaps: list[tuple[int, int | None, str]] = []
        bad: list[tuple[int, int]] = []  # (first, last) ids of blocks missing or damaged
        last_id = last_seq = max_seq = odd = 0
        from_seq: int | None = None
        for rows in _read_rows(self._db, "id, seq, crc, data", "blobs", gaps, self.SCAN_BATCH):
            for bid, seq, c, data in rows:
                if not isinstance(bid, int) or bid <= last_id or not isinstance(seq, int) or not intact(data, c):
                    odd += 1  # a damaged row, or a stray one from a damaged page: blocks may be missing unseen
                    continue
                if bid != last_id + 1:
                    bad.append((last_id + 1, bid - 1))
                    from_seq = last_seq if from_seq is None else from_seq
                last_id, last_seq, max_seq = bid, seq, max(max_seq, seq)
        if not (damaged or bad or gaps or odd):
            return max_seq, {}
        tail = bool(gaps) and gaps[-1][1] is None
        from_seq = last_seq if from_seq is None else from_seq  # blocks after the last one read are missing too
        starts = [a for a, _b in bad]

        def is_bad(b: Any) -> bool:
            if not isinstance(b, int) or b < 1 or b > last_id:
                return True
            i = bisect.bisect_right(starts, b) - 1
            return i >= 0 and b <= bad[i][1]

        first_bad: dict[int, Any] = {}

        def needs(mid: int) -> Any:
            """The first block manifest ``mid`` needs that is not intact (itself included), or None."""
            if mid not in first_bad:
                found = mid if is_bad(mid) else None
                if found is None:
                    try:
                        _dev, _hs, ifs, nh, chunks, *more = self._blob(mid)
                        ids = [ifs, nh, *chunks] + ([*more[0][0], more[0][1]] if more else [])
                    except (RecordingError, ValueError, TypeError, IndexError):
                        ids = [mid]
                        found = mid
                    found = found if found is not None else next((b for b in ids if is_bad(b)), None)
                first_bad[mid] = found
            return first_bad[mid]

        hidden: dict[int, str] = {}
        cs, keys = self._cseqs, set(self._ckeys)
        k = bisect.bisect_right(self._ckeys, bisect.bisect_left(cs, from_seq)) - 1
        start = self._ckeys[k] if k >= 0 else 0
        refs: dict[str, _DevRef] = {}
        order: list[str] = []
        prefixes: tuple[str, ...] = ()
        broken = ""
        for ci in range(start, len(cs)):
            if ci in keys:
                broken = ""
            if broken:
                hidden[cs[ci]] = broken
                continue
            try:
                prefixes, order = self._advance(ci, refs, order, prefixes)
                b = next((b for b in (needs(refs[n].mid) for n in order) if b is not None), None)
            except (RecordingError, ValueError, TypeError, KeyError, IndexError) as exc:
                hidden[cs[ci]] = broken = f"unreadable ({_why(exc)})"
                continue
            if b is not None:
                hidden[cs[ci]] = f"a data block needed is {'damaged' if b <= last_id or tail else 'missing'}"
        blocks = [f"{a}-{b}" if a < b else f"{a}" for a, b in bad]
        if tail:
            blocks.append(f"after {last_id}")
        if blocks:
            losses.append(f"data blocks {', '.join(blocks)} unreadable")
        return max_seq, hidden

    # ------------------------------------------------------------------ reading

    @property
    def window(self) -> tuple[int, int] | None:
        """(first, last) tick time in ms, None for a file without ticks."""
        return (self._times[0], self._times[-1]) if self._times else None

    def ticks(self) -> list[Tick]:
        keys = set(self._keys)
        return [Tick(s, t, i in keys) for i, (s, t) in enumerate(zip(self._seqs, self._times))]

    @property
    def tick_times(self) -> Sequence[int]:
        return self._times

    def impacts(self) -> dict[int, dict]:
        """Event index (in ``events``) -> impact summary recorded for it."""
        out = {}
        for _t, kind, body in self.notes:
            i = body.get("event_id")
            if kind == "impact" and isinstance(i, int) and 0 <= i < len(self.events):
                out[i] = {k: v for k, v in body.items() if k != "event_id"}
        return out

    def incident_notes(self) -> list[dict]:
        """Every incident note in file order (``record.incidentlog.latest`` keeps the newest per incident)."""
        return [body for _t, kind, body in self.notes if kind == "incident"]

    def whatifs(self) -> list[tuple[int, dict]]:
        return [(t, body) for t, kind, body in self.notes if kind == "whatif"]

    def sampled(self) -> list[tuple[int, dict]]:
        """The sampled-traffic summaries in file order (the newest is the session's last word)."""
        return [(t, body) for t, kind, body in self.notes if kind == "sampled" and isinstance(body, dict)]

    def inventory(self) -> dict | None:
        return json.loads(self.meta.get("inventory", "null"))

    def settings(self) -> dict:
        return json.loads(self.meta.get("settings", "{}"))

    def _row(self, sql: str, key: int) -> tuple:
        assert self._db is not None
        try:
            row = self._db.execute(sql, (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise RecordingError(f"unreadable record ({exc})") from None
        if row is None:
            raise RecordingError("a record is missing")
        if not intact(row[1], row[0]):
            raise RecordingError("a record fails its checksum")
        return row

    def _tick_body(self, i: int) -> dict:
        """The payload of the ``i``-th tick of the chain (``_cseqs``)."""
        _c, data = self._row("SELECT crc, data FROM ticks WHERE seq = ?", self._cseqs[i])
        try:
            return unpack(data)
        except (ValueError, zlib.error) as exc:
            raise RecordingError(f"tick {self._cseqs[i]} unreadable ({exc})") from None

    def _blob(self, bid: int) -> Any:
        hit = self._blobs.get(bid)
        if hit is not None:
            return hit
        _c, data = self._row("SELECT crc, data FROM blobs WHERE id = ?", bid)
        try:
            obj = unpack(data)
        except (ValueError, zlib.error) as exc:
            raise RecordingError(f"data block {bid} unreadable ({exc})") from None
        if len(self._blobs) >= self.BLOB_CACHE:
            self._blobs.clear()
        self._blobs[bid] = obj
        return obj

    def _prefetch(self, ids: list[int]) -> None:
        """Read the blocks ``ids`` into the cache with one query (checked like single reads)."""
        assert self._db is not None
        want = [b for b in ids if b not in self._blobs]
        for k in range(0, len(want), 500):
            part = want[k:k + 500]
            try:
                rows = self._db.execute(f"SELECT id, crc, data FROM blobs WHERE id IN ({','.join('?' * len(part))})",
                                        part).fetchall()
            except sqlite3.DatabaseError as exc:
                raise RecordingError(f"unreadable record ({exc})") from None
            if len(self._blobs) + len(rows) >= self.BLOB_CACHE:
                self._blobs.clear()
            texts = []
            for bid, c, data in rows:
                if not intact(data, c):
                    raise RecordingError("a record fails its checksum")
                try:
                    texts.append(inflate(data))
                except (ValueError, zlib.error) as exc:
                    raise RecordingError(f"data block {bid} unreadable ({exc})") from None
            try:  # one parse for the lot (a cold seek reads ~3,000 blocks); block by block if it fails
                objs = json.loads(b"[" + b",".join(texts) + b"]")
            except ValueError:
                objs = None
            if objs is None or len(objs) != len(rows):
                for bid, _c, data in rows:
                    try:
                        self._blobs[bid] = unpack(data)
                    except (ValueError, zlib.error) as exc:
                        raise RecordingError(f"data block {bid} unreadable ({exc})") from None
            else:
                for (bid, _c, _d), obj in zip(rows, objs):
                    self._blobs[bid] = obj

    def _decoded(self, key: tuple[str, int], make: Callable[[], Any]) -> Any:
        hit = self._blobs.get(key)
        if hit is None:
            hit = make()
            self._blobs[key] = hit
        return hit

    def _content(self, mid: int) -> tuple[Device, HashSettings, tuple[Interface, ...], NexthopTable,
                                          tuple[Route, ...], Rib | None]:
        def make() -> tuple:
            dev, hs, ifs, nh, chunks, *more = self._blob(mid)
            if len(more) > 1:
                raise ValueError(f"{5 + len(more)} items")
            built = self._build_chunks(chunks)
            routes: list[Route] = []
            for c in chunks:
                part = built.get(c)
                routes.extend(part if part is not None else
                              self._decoded(("r", c), lambda c=c: decode_chunk(self._blob(c))))
            return (decode(Device, dev), decode(HashSettings, hs),
                    self._decoded(("i", ifs), lambda: tuple(decode(Interface, i) for i in self._blob(ifs))),
                    self._decoded(("n", nh), lambda: decode(NexthopTable, self._blob(nh))), tuple(routes),
                    self._rib(more[0]) if more else None)
        try:
            return self._decoded(("m", mid), make)
        except RecordingError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise RecordingError(f"data block of manifest {mid} malformed ({exc})") from None

    def _build_chunks(self, chunks: Sequence[int]) -> dict[int, tuple[Route, ...]]:
        """Route chunks ``chunks`` not built yet: fetched with one query, built together, cached built."""
        missing = list(dict.fromkeys(c for c in chunks if ("r", c) not in self._blobs))
        if not missing:
            return {}
        self._prefetch(missing)
        built = dict(zip(missing, decode_chunks([self._blob(c) for c in missing])))
        for c, part in built.items():
            self._blobs[("r", c)] = part
            self._blobs.pop(c, None)  # the parsed JSON is not needed once built
        return built

    def _rib(self, item: list) -> Rib:
        chunks, bgp = item
        self._prefetch([c for c in chunks if ("rib", c) not in self._blobs])
        routes: list[RibRoute] = []
        for c in chunks:
            routes.extend(self._decoded(("rib", c), lambda c=c: tuple(decode(RibRoute, r) for r in self._blob(c))))
        return Rib(tuple(routes), self._decoded(("bgp", bgp), lambda: tuple(decode(BgpMultipath, b)
                                                                            for b in self._blob(bgp))))

    def _advance(self, i: int, refs: dict[str, _DevRef], order: list[str], prefixes: tuple[str, ...]
                 ) -> tuple[tuple[str, ...], list[str]]:
        body = self._tick_body(i)
        t = self._ctimes[i]
        if "o" in body:
            order = list(body["o"])
            refs.clear()
        if "x" in body:
            gone = set(body["x"])
            order = [n for n in order if n not in gone]
            for n in gone:
                refs.pop(n, None)
        if "n" in body:
            order = order + list(body["n"])
        for entry in body["d"]:
            name = order[entry[0]]
            ref = refs.get(name)
            mid = entry[1] or (ref.mid if ref else 0)
            coll = None if entry[2] is None else t + entry[2]
            health = ref.health if ref else Health()
            if len(entry) > 3:
                health = dataclasses.replace(health, last_ok_ms=coll) if entry[3] == 1 else decode(Health, entry[3])
            refs[name] = _DevRef(mid, coll, health)
        if "p" in body:
            prefixes = tuple(body["p"])
        return prefixes, order

    def _state(self, i: int) -> FabricSnapshot:
        with self._lock:
            if i < 0:
                i += len(self._seqs)
            # the chain from the keyframe at or before the tick: every tick of it is there, hidden ones too
            ci = i if self._seqs is self._cseqs else bisect.bisect_left(self._cseqs, self._seqs[i])
            k = self._ckeys[bisect.bisect_right(self._ckeys, ci) - 1]
            cur = self._cursor
            if cur is not None and k <= cur[0] <= ci:
                start, refs, order, prefixes = cur[0] + 1, dict(cur[1]), list(cur[2]), cur[3]
            else:
                start, refs, order, prefixes = k, {}, [], ()
            for j in range(start, ci + 1):
                prefixes, order = self._advance(j, refs, order, prefixes)
            self._cursor = (ci, refs, order, prefixes)
            return FabricSnapshot(self._ctimes[ci], LazyDevices(self, order, {n: refs[n] for n in order}), prefixes)

    def _device(self, ref: _DevRef) -> DeviceState:
        with self._lock, gc_paused():
            dev, hs, ifs, nh, routes, rib = self._content(ref.mid)
        return DeviceState(dev, routes, nh, ifs, hs, ref.collected_at_ms, ref.health, rib=rib)

    def _devices(self, refs: Sequence[_DevRef]) -> list[DeviceState]:
        """``_device`` of each of ``refs``, the blocks of all of them fetched and their routes built together."""
        with self._lock, gc_paused():
            mids = list(dict.fromkeys(r.mid for r in refs if ("m", r.mid) not in self._blobs))
            if len(mids) > 1:
                self._prefetch(mids)
                try:
                    self._build_chunks([c for m in mids for c in self._blob(m)[4]])
                except (ValueError, TypeError, KeyError, IndexError):
                    pass  # a malformed block: building device by device below says which one
            return [self._device(r) for r in refs]

    def index_at(self, t_ms: int) -> int:
        """Index of the last tick at or before ``t_ms`` (the first tick for earlier times)."""
        if not self._times:
            raise RecordingError(f"{self.path}: no ticks recorded")
        return max(bisect.bisect_right(self._times, t_ms) - 1, 0)

    def state_at(self, t_ms: int) -> FabricSnapshot:
        """The fabric as recorded at the last tick at or before ``t_ms``."""
        return self._state(self.index_at(t_ms))

    def state_of_tick(self, i: int) -> FabricSnapshot:
        return self._state(i)

    def manifests_of_tick(self, i: int) -> dict[str, int]:
        """Device -> id of the data block (its manifest, ``record.schema``) its state at tick ``i`` is built from,
        nothing decoded but the ticks' bodies."""
        devices = self._state(i).devices
        assert isinstance(devices, LazyDevices)
        return {n: devices._refs[n].mid for n in devices}

    def events_between(self, t0: int, t1: int) -> list[Event]:
        """Events with ``t0 < time_ms <= t1``."""
        return [e for e in self.events if t0 < e.time_ms <= t1]

    def events_until_tick(self, i: int) -> int:
        """Number of events recorded at or before tick index ``i`` (events are in tick order)."""
        return bisect.bisect_right(self.event_seqs, self._seqs[i]) if self._seqs else 0

    def snapshots(self, t0: int | None = None, t1: int | None = None) -> Iterator[FabricSnapshot]:
        """Every tick's snapshot in [t0, t1], in order."""
        if not self._times:
            return
        lo = 0 if t0 is None else bisect.bisect_left(self._times, t0)
        hi = len(self._times) if t1 is None else bisect.bisect_right(self._times, t1)
        for i in range(lo, hi):
            yield self._state(i)
