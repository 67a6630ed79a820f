"""Session files, written: the Recorder (format: ``record.schema``).

The timeline listener only keeps the latest snapshot; a flush (once a second on a background thread) writes
one tick (a keyframe every ``keyframe_every`` ticks, else a delta of the devices that changed), the blobs it
needs (content-addressed: a route chunk unchanged since any earlier tick is not written again), events and
notes, in one commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from anycast_tui.model.timeline import Change, Timeline
from anycast_tui.model.types import DeviceState, Event, FabricSnapshot
from anycast_tui.record.codec import encode, split_chunks
from anycast_tui.record.schema import BASE_SCHEMA_VERSION, DDL, DEFAULT_KEYFRAME_EVERY, FORMAT, crc, pack

if TYPE_CHECKING:
    from anycast_tui.collect.inventory import Inventory

CHECKPOINT_S = 60  # the WAL is copied into the file at every keyframe, and at least this often while ticks come
CHUNK_MASK = 63  # a route whose CRC & mask == 0 ends a chunk (mean 64 routes)
CHUNK_MAX = 256

log = logging.getLogger(__name__)

_SECRET_WORDS = ("password", "passphrase", "secret", "token", "private")


def redact(settings: Any) -> Any:
    """``settings`` without values whose key names a secret (``*_env`` names of variables are kept)."""
    if isinstance(settings, Mapping):
        return {str(k): redact(v) for k, v in settings.items()
                if str(k).endswith("_env") or not any(w in str(k).lower() for w in _SECRET_WORDS)}
    if isinstance(settings, (list, tuple)):
        return [redact(v) for v in settings]
    if isinstance(settings, (str, int, float, bool)) or settings is None:
        return settings
    return str(settings)


def inventory_meta(inventory: Inventory) -> dict:
    """What a recording keeps of an Inventory: devices and how they were reached, never a secret value."""
    devices = []
    for d in inventory.devices:
        devices.append({"name": d.name, "role": d.role.value, "platform": d.platform, "host": d.host,
                        "port": d.port, "user": d.user, "password_env": d.password_env,
                        "key_path": str(d.key_path) if d.key_path else None})
    return {"devices": devices, "poll_interval_s": inventory.poll_interval_s,
            "anycast_prefixes": list(inventory.anycast_prefixes),
            "source": str(inventory.source) if inventory.source else None}


def _content_equal(a: DeviceState, b: DeviceState) -> bool:
    return (a.device == b.device and a.hash == b.hash and a.routes == b.routes and a.nexthops == b.nexthops
            and a.interfaces == b.interfaces and a.rib == b.rib)


class Recorder:
    """Writes one session file.  ``attach(timeline)`` records every change of a Timeline.

    The timeline listener only stores the latest snapshot (O(1)); a flush
    (every ``flush_s`` seconds on a background thread, or explicit
    :meth:`flush`) writes one tick and commits.  ``impact``: optional
    function Change -> {event: summary} run at flush time for changes
    carrying events; summaries go to the file next to their events.
    """

    def __init__(self, path: str | os.PathLike, *, keyframe_every: int = DEFAULT_KEYFRAME_EVERY,
                 inventory: Inventory | None = None, settings: Mapping[str, Any] | None = None,
                 flush_s: float | None = 1.0,
                 impact: Callable[[Change], Mapping[Event, Mapping[str, Any]]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if keyframe_every < 1:
            raise ValueError("keyframe_every must be at least 1")
        self.path = Path(path)
        self.keyframe_every = keyframe_every
        self.clock = clock
        self.impact = impact
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # refuses to overwrite
        os.close(fd)
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(DDL)
        now = int(clock() * 1000)
        meta = {"format": FORMAT, "schema_version": str(BASE_SCHEMA_VERSION), "created_ms": str(now),
                "keyframe_every": str(keyframe_every),
                "inventory": json.dumps(inventory_meta(inventory) if inventory is not None else None),
                "settings": json.dumps(redact(dict(settings or {})))}
        from anycast_tui import __version__

        meta["writer"] = f"anycast-tui {__version__}"
        with self._db:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the file alone is a recording from the start
        self._ckpt_seq, self._ckpt_ms = 0, now
        self._db_lock = threading.Lock()
        self._lock = threading.Lock()
        self._latest: FabricSnapshot | None = None
        self._events: list[Event] = []
        self._changes: list[Change] = []
        self._notes: list[tuple[int, str, dict]] = []
        self._written: dict[str, tuple[DeviceState, int]] = {}  # name -> (state, manifest id)
        self._prefixes: tuple[str, ...] | None = None
        self._order: list[str] = []
        self._blob_ids: dict[bytes, int] = {}
        self._event_ids: dict[Event, int] = {}  # event -> position in the file (for impact notes)
        self._n_events = 0
        self._seq = 0
        self._since_key = 0
        self._last_t = None  # type: int | None
        self._first_t = None  # type: int | None
        self._unsubscribe: Callable[[], None] | None = None
        self.closed = False
        self.bytes_written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if flush_s is not None:
            self._thread = threading.Thread(target=self._run, args=(flush_s,), name="recorder", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ input

    def attach(self, timeline: Timeline) -> None:
        """Record every change of ``timeline`` from now on (its current snapshot included)."""
        if timeline.snapshot is not None:
            self.on_change(Change(None, timeline.snapshot, ()))
        self._unsubscribe = timeline.subscribe(self.on_change)

    def on_change(self, change: Change) -> None:
        with self._lock:
            self._latest = change.after
            if change.events:
                self._events.extend(change.events)
                if self.impact is not None and change.before is not None:
                    self._changes.append(change)

    def record_impact(self, event: Event, summary: Mapping[str, Any]) -> None:
        """Attach an impact summary (flows moved, resets, ...) to an event already handed to the recorder."""
        with self._lock:
            self._notes.append((int(self.clock() * 1000), "impact", {"event": event, **summary}))

    def record_incident(self, body: Mapping[str, Any]) -> None:
        """Keep the newest version of an incident (``record.incidentlog.to_json``); readers take the last per id."""
        with self._lock:
            self._notes.append((int(self.clock() * 1000), "incident", dict(body)))

    def record_sampled(self, body: Mapping[str, Any]) -> None:
        """Keep a summary of the sampled traffic (``sampledtraffic.FlowExport.to_json``): the busiest flows
        of the window, what each exporter sent, placement agreement per device."""
        with self._lock:
            self._notes.append((int(self.clock() * 1000), "sampled", dict(body)))

    def record_whatif(self, label: str, result: Mapping[str, Any]) -> None:
        """Keep a what-if run the user made: its label and JSON-able result."""
        with self._lock:
            self._notes.append((int(self.clock() * 1000), "whatif", {"label": label, **result}))

    # ------------------------------------------------------------------ output

    def _run(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            try:
                self.flush()
            except Exception:  # keep recording; the next flush retries
                log.exception("recorder flush failed")

    def flush(self) -> int:
        """Write what changed since the last flush as one tick and commit; returns the bytes written."""
        with self._lock:
            latest, events, changes, notes = self._latest, self._events, self._changes, self._notes
            self._latest, self._events, self._changes, self._notes = None, [], [], []
        if latest is None and not events and not notes:
            return 0
        with self._db_lock:
            if self.closed:
                return 0
            before = self.bytes_written
            self._db.execute("BEGIN")
            try:
                if latest is not None:
                    self._write_tick(latest, events)
                t = self._last_t or int(self.clock() * 1000)
                if self.impact is not None:
                    for ch in changes:
                        try:
                            for ev, summary in self.impact(ch).items():
                                notes.append((t, "impact", {"event": ev, **summary}))
                        except Exception:
                            log.exception("impact summary failed")
                for nt, kind, body in notes:
                    if "event" in body:
                        ev = body.pop("event")
                        body["event_id"] = self._event_ids.get(ev)
                    data = pack(body)
                    self._db.execute("INSERT INTO notes(seq, t_ms, kind, crc, data) VALUES (?, ?, ?, ?, ?)",
                                     (self._seq, nt, kind, crc(data), data))
                    self.bytes_written += len(data)
                self._db.execute("COMMIT")
                self._checkpoint()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self.bytes_written - before

    @property
    def blob_count(self) -> int:
        """How many blobs (device data, route chunks, manifests) the file holds, as committed so far."""
        with self._db_lock:
            return int(self._db.execute("SELECT count(*) FROM blobs").fetchone()[0])

    def _checkpoint(self) -> None:
        """Copy the WAL into the file after a keyframe (and at least every ``CHECKPOINT_S`` while ticks come):
        after a kill -9 the ``.atrec`` alone holds all but the ticks since then (PASSIVE: never waits for a
        reader; one that holds an older view of the file defers the copy of what it still reads)."""
        now = int(self.clock() * 1000)
        if self._seq - self._since_key > self._ckpt_seq or now - self._ckpt_ms >= CHECKPOINT_S * 1000:
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                log.exception("checkpoint failed (the next keyframe retries)")
                return
            self._ckpt_seq, self._ckpt_ms = self._seq, now

    def _blob(self, obj: Any) -> int:
        raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        key = hashlib.sha1(raw).digest()
        bid = self._blob_ids.get(key)
        if bid is None:
            data = b"z" + zlib.compress(raw, 6)
            cur = self._db.execute("INSERT INTO blobs(seq, crc, data) VALUES (?, ?, ?)", (self._seq + 1, crc(data), data))
            bid = self._blob_ids[key] = int(cur.lastrowid or 0)
            self.bytes_written += len(data)
        return bid

    def _manifest(self, s: DeviceState) -> int:
        chunks = [self._blob(c) for c in split_chunks(s.routes, CHUNK_MAX, CHUNK_MASK)]
        items = [encode(s.device), encode(s.hash), self._blob([encode(i) for i in s.interfaces]),
                 self._blob(encode(s.nexthops)), chunks]
        if s.rib is not None:  # since schema 2 (rows of RibRoute encodings, unchanged in 3)
            rib_chunks: list[int] = []
            part: list[list] = []
            for r in s.rib.routes:
                enc = encode(r)
                part.append(enc)
                if len(part) >= CHUNK_MAX or (zlib.crc32(repr(enc).encode()) & CHUNK_MASK) == 0:
                    rib_chunks.append(self._blob(part))
                    part = []
            if part:
                rib_chunks.append(self._blob(part))
            items.append([rib_chunks, self._blob([encode(b) for b in s.rib.bgp])])
        return self._blob(items)

    def _write_tick(self, snap: FabricSnapshot, events: list[Event]) -> None:
        t = snap.taken_at_ms if self._last_t is None else max(snap.taken_at_ms, self._last_t)
        key = self._seq == 0 or self._since_key + 1 >= self.keyframe_every
        body: dict[str, Any] = {}
        if events:  # first: opening a file reads every event, and only them (``reader._tick_events``)
            body["e"] = [encode(ev) for ev in events]
        gone = [n for n in self._written if n not in snap.devices]
        for n in gone:
            del self._written[n]
        if key:
            self._order = list(snap.devices)
            body["o"] = self._order  # device order; entries name devices by their index in it
        else:
            if gone:
                body["x"] = gone
                self._order = [n for n in self._order if n not in set(gone)]
            new = [n for n in snap.devices if n not in self._written]
            if new:
                body["n"] = new
                self._order += new
        pos = {n: i for i, n in enumerate(self._order)}
        devs: list[list] = []
        for name, s in snap.devices.items():
            prev = self._written.get(name)
            if prev is not None and prev[0] is s and not key:
                continue
            if prev is not None and (prev[0] is s or _content_equal(prev[0], s)):
                mid, changed = prev[1], False
            else:
                mid, changed = self._manifest(s), True
            if not key and not changed and prev is not None and prev[0].collected_at_ms == s.collected_at_ms \
                    and prev[0].health == s.health:
                self._written[name] = (s, mid)
                continue
            entry: list = [pos[name], mid if (changed or key) else 0,
                           None if s.collected_at_ms is None else s.collected_at_ms - t]
            if key or prev is None:
                entry.append(encode(s.health))
            elif prev[0].health != s.health:
                # 1: the previous health, last good at this collection (the common case of a fresh poll)
                fresh = s.collected_at_ms is not None and \
                    dataclasses.replace(prev[0].health, last_ok_ms=s.collected_at_ms) == s.health
                entry.append(1 if fresh else encode(s.health))
            devs.append(entry)
            self._written[name] = (s, mid)
        body["d"] = devs
        if key or snap.anycast_prefixes != self._prefixes:
            body["p"] = list(snap.anycast_prefixes)
            self._prefixes = snap.anycast_prefixes
        if events:
            for ev in events:
                self._event_ids[ev] = self._n_events
                self._n_events += 1
        self._seq += 1
        data = pack(body)
        flags = int(key) | (2 if events else 0)
        self._db.execute("INSERT INTO ticks VALUES (?, ?, ?, ?, ?)", (self._seq, t, flags, crc(data), data))
        self.bytes_written += len(data) + 24
        self._since_key = 0 if key else self._since_key + 1
        self._last_t = t
        if self._first_t is None:
            self._first_t = t

    def close(self) -> None:
        """Flush, stop the flush thread, checkpoint the WAL into the file and close it."""
        if self.closed:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._db_lock:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('closed_ms', ?)", (str(int(self.clock() * 1000)),))
                summary = {"first_ms": self._first_t, "last_ms": self._last_t, "ticks": self._seq,
                           "events": self._n_events,
                           "notes": self._db.execute("SELECT coalesce(max(id), 0) FROM notes").fetchone()[0]}
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('summary', ?)", (json.dumps(summary),))
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self.closed = True

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
