"""The viewer's side: a collector of ``DeviceState``s read from the bus instead of SSH.

``NatsSource`` looks like a LiveSession to the rest of the program (``timeline``, ``interval_s``,
``start``/``stop``, ``health``): it turns the collectors' messages (``wire``) back into each device's state
and calls ``Timeline.update(state)``, so the event diff, the trackers, the recorder, incidents and the UI run
unchanged on the same records a direct SSH poll produces.  It opens no connection to any device.

Joining: the stream's last sequence L is read first, then every KV entry (each device's latest full state,
with the sequence of the newest message it reflects) goes into the timeline at once (one ``apply``), then an
ordered consumer delivers the stream from L+1; a message at or before what a device's KV entry reflects is
skipped, so nothing is applied twice.  A delta whose base is not the device's state the viewer holds (it
joined or reconnected in between) has its chain fetched from the stream by sequence (direct get), back to a
full message.

Faults: a collector not heard from (heartbeat or any other message) for ``silence_factor`` of its heartbeat
intervals makes its devices STALE and ``unobserved`` ("collector site-b silent since 14:02:07"): stale data, no
failure event and no incident (``model.events``), one ``data-not-collected`` finding (``model.rules``); its next
messages make them fresh again.  Collectors are told apart by process (every body names its ``host:pid``,
``wire.origin``): two publishing one device are said once and the first one's states kept (``_accept``).  While the
connection to NATS is down every device is STALE ("NATS 127.0.0.1:4222 disconnected since ..."); nats-py
reconnects and the ordered consumer resumes after the last sequence it delivered.  A message that does not
decode is counted (``counters``) and skipped with one log line (at most ``LOG_LINES`` of them, then one line
per 1,000); a newer schema is refused with one line saying to upgrade.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from typing import Any, Callable

from anycast_tui.fleet import wire
from anycast_tui.fleet.conn import NatsOptions, quiet_client_logs
from anycast_tui.model.rib import watch as rib_watch
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import DeviceState, Event, EventKind, FabricSnapshot, Health, HealthStatus
from anycast_tui.record.codec import gc_paused
from anycast_tui.safetext import safe

log = logging.getLogger("anycast_tui.fleet")

DEFAULT_PREFIXES = ("192.0.2.53/32",)
LOG_LINES = 20
MAX_CHAIN = 256  # state messages walked back to repair a gap
PARTS_BYTES = 64 * 2**20  # pieces of split messages waiting for their last piece, at most (oldest dropped)


@dataclasses.dataclass
class _Collector:
    site: str
    name: str
    every_s: float
    last_mono: float  # when its newest heartbeat arrived (monotonic)
    last_ms: int  # its newest heartbeat's own time
    instance: str = ""  # host:pid, when it says
    silent: bool = False


@dataclasses.dataclass
class _From:
    """Where a device's messages are taken from: one collector process, and its newest message's time."""

    who: str  # the collector process: its key, and "@instance" when it says
    label: str  # "site-b shard 1 of 4 (host:pid)"
    last_t: int


def _clock_text(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def _process_key(site: str, collector: str, instance: str) -> str:
    """One collector process: its collector key, and its instance when it says (one config started twice)."""
    key = wire.collector_key(site, collector)
    return f"{key}@{instance}" if instance else key


def collector_label(site: str, name: str) -> str:
    """``site-b``, or ``site-b shard 1 of 4`` for a sharded collector."""
    if name == site:
        return site
    i, _, n = name.rpartition("#")[2].partition("/")
    return f"{site} shard {i} of {n}" if n else f"{site} shard {i}"


class NatsSource:
    def __init__(self, options: NatsOptions, *, site: str | None = None, prefixes: tuple[str, ...] | None = None,
                 silence_factor: float = 3.0, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.site = site
        self._fixed_prefixes = prefixes is not None
        self.timeline = Timeline(anycast_prefixes=prefixes or DEFAULT_PREFIXES, clock=clock)
        self.interval_s = 1.0
        self.silence_factor = silence_factor
        self.clock = clock
        self.counters = {"messages": 0, "applied": 0, "skipped": 0, "bad": 0, "newer": 0, "gaps": 0,
                         "repaired": 0, "kv_devices": 0, "duplicate": 0}
        self.connected = False
        self.ready = asyncio.Event()  # the KV is read and the stream subscribed
        self.nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._bus: dict[str, DeviceState] = {}  # per device: its state as its collector published it
        self._seq: dict[str, tuple[int, int]] = {}  # per device: (newest message, newest state message) applied
        self._owner: dict[str, str] = {}  # device -> collector key
        self._collectors: dict[str, _Collector] = {}
        # the collectors' sampled traffic (``[flow_export]``): per process its newest summary, as the recording
        # stores it; ``on_sampled(summary)`` hears each (``record --source``: ``Recorder.record_sampled``)
        self.sampled: dict[str, tuple[int, dict]] = {}
        self.on_sampled: Callable[[dict], None] | None = None
        self._parts: dict[int, bytes] = {}  # pieces of split messages seen on the stream, by sequence
        self._parts_bytes = 0
        self._from: dict[str, _From] = {}  # device -> the collector process its messages are taken from
        self.overlaps: dict[tuple[str, str], set[str]] = {}  # (label taken, label skipped) -> devices of both
        self._bus_down: str | None = None  # the reason every device is stale while NATS is away
        self._bus_down_ms = 0
        self._tasks: list[asyncio.Task] = []
        self._last_seq = 0  # the newest stream sequence handled
        self._logged = 0
        self.running = False

    # ------------------------------------------------------------------ LiveSession's face

    async def start(self) -> None:
        if self.running:
            return
        import nats

        quiet_client_logs()
        self.running = True
        kw = self.options.connect_kwargs()
        self.nc = await nats.connect(**kw, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                     disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                                     error_cb=self._error, allow_reconnect=True)
        self.connected = True
        self._js = self.nc.jetstream()
        self._tasks = [asyncio.create_task(self._join()), asyncio.create_task(self._watchdog())]

    async def stop(self) -> None:
        self.running = False
        if self._froze:  # what the catch-up froze is collectable again (this source is in cycles: callbacks)
            self._froze = False
            gc.unfreeze()
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks = []
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.close()
            except Exception:
                pass

    def health(self) -> dict[str, Health]:
        snap = self.timeline.snapshot
        return {n: s.health for n, s in (snap.devices.items() if snap is not None else ())}

    async def __aenter__(self) -> "NatsSource":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ joining

    async def _join(self) -> None:
        waited = False
        while True:
            try:
                info = await self._js.stream_info(wire.STREAM)
                kv = await self._js.key_value(wire.KV_BUCKET)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not waited:
                    log.info("nats: waiting for stream %s (no collector has published yet)", wire.STREAM)
                    waited = True
                await asyncio.sleep(0.5)
                continue
            try:  # a request timing out half-way (a loaded server, a reconnect) is tried again, not fatal
                last = info.state.last_seq
                await self._read_kv(kv)
                self._last_seq = last
                await self._subscribe()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("nats: joining stream %s failed (%s), trying again", wire.STREAM, type(exc).__name__)
                await asyncio.sleep(0.5)
        log.info("nats: %d devices from KV, following stream %s from sequence %d", self.counters["kv_devices"],
                 wire.STREAM, last + 1)
        self.ready.set()

    async def _subscribe(self) -> None:
        """An ordered consumer of the stream from after the newest sequence handled."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._last_seq + 1)
        self._sub = await self._js.subscribe(wire.site_filter(self.site), stream=wire.STREAM, cb=self._on_msg,
                                             ordered_consumer=True, config=cfg, pending_bytes_limit=256 * 2**20)

    async def _resume(self) -> None:
        """After a reconnect: the consumer again from after the newest sequence handled (the server may have
        lost the old one with its restart; nats-py would recreate it only after missed idle heartbeats)."""
        try:
            await self._subscribe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("nats: cannot follow the stream again (%s); nats-py retries", type(exc).__name__)

    async def _read_kv(self, kv: Any) -> None:
        """Every KV entry (one watcher delivers them all), then decoded together with the cyclic garbage
        collector paused (``codec.gc_paused``: the decoded JSON otherwise triggers collections that walk every
        object made so far), and what was made frozen out of later collections.  Route tables are checked
        but not built (``model.types.RouteTable``): building a 2,000-device fabric's 4 M routes was most of
        its catch-up (3.9 s of it), and lookups read a few routes per device."""
        entries = await _kv_entries(kv)
        if self.site is not None:
            entries = [(k, v) for k, v in entries if k.startswith(wire.token(self.site) + ".")]
        states: dict[str, DeviceState] = {}
        self._froze = True
        with gc_paused(freeze=True):
            for i, (key, value) in enumerate(entries):
                if i % 256 == 255:
                    await asyncio.sleep(0)  # the event loop runs between batches of devices
                try:
                    body = wire.loads(value)
                    if f".{wire.COLLECTOR}." in key:
                        self._heard(wire.read_heartbeat(body), arrived=False)
                        continue
                    s, ss = body.get("s"), body.get("ss")
                    if type(s) is not int or type(ss) is not int:
                        raise wire.WireError("KV entry: no sequences")
                    ref = bool(body.get("ref"))  # a state too large for KV: read from the stream
                    msg: wire.StateMsg | wire.HealthMsg = wire.read_health(body) if ref else wire.read_state(body)
                    if not ref and not msg.full:  # type: ignore[union-attr]
                        raise wire.WireError("KV entry: not a full state")
                except wire.WireError as exc:
                    self._bad(f"KV {key}", exc)
                    continue
                name = msg.device.name if isinstance(msg, wire.HealthMsg) else msg.device
                owner = self._accept(name, msg.site, msg.collector, wire.read_origin(body), msg.collected_at_ms)
                if owner is None:
                    continue
                base = await self._repair(name, ss, 0) if ref else None
                if ref and base is None:
                    self._bad(f"KV {key}", wire.WireError(f"the state message it names ({ss}) is gone"))
                    continue
                state = msg.apply(base)
                self._bus[name] = state
                self._seq[name] = (s, ss)
                self._owner[name] = owner
                states[name] = state
        self.counters["kv_devices"] = len(states)
        if states:
            before = self.timeline.snapshot.devices if self.timeline.snapshot is not None else {}
            devices = dict(before)
            for name, st in states.items():
                devices[name] = self._watched(before.get(name), st)
            self.timeline.apply(FabricSnapshot(int(self.clock() * 1000), devices, self.timeline.anycast_prefixes))

    # ------------------------------------------------------------------ messages

    async def _on_msg(self, msg: Any) -> None:
        self.counters["messages"] += 1
        try:
            seq = msg.metadata.sequence.stream
        except Exception:
            seq = 0
        if seq and seq <= self._last_seq:  # delivered again (a consumer made anew after a reconnect)
            self.counters["skipped"] += 1
            return
        self._last_seq = max(self._last_seq, seq)
        try:
            await self._handle(msg.subject, msg.data, seq, getattr(msg, "headers", None))
        except wire.WireError as exc:
            self._bad(f"{msg.subject} (seq {seq})", exc)
        except Exception as exc:  # never let one message stop the consumer
            self._bad(f"{msg.subject} (seq {seq})", wire.WireError(f"{type(exc).__name__}"))

    async def _handle(self, subject: str, data: bytes, seq: int, headers: dict | None = None) -> None:
        kind = wire.kind_of(subject)
        if kind == wire.PART:  # a piece of a split message: kept until its last piece comes
            self._parts[seq] = piece = bytes(data)
            self._parts_bytes += len(piece)
            # bounded: orphans (a publish that failed half-way) go, oldest first
            while len(self._parts) > 4 * wire.MAX_PARTS or self._parts_bytes > PARTS_BYTES:
                self._parts_bytes -= len(self._parts.pop(next(iter(self._parts))))
            return
        body = wire.loads(await self._whole(data, headers))
        if kind == "heartbeat":
            self._heard(wire.read_heartbeat(body), arrived=True)
            return
        if kind == "sampled":
            site, collector, t_ms, summary = wire.read_sampled(body)
            origin = wire.read_origin(body)
            key = _process_key(site, collector, origin[0] if origin is not None else "")
            self.sampled[key] = (t_ms, summary)
            if self.on_sampled is not None:
                self.on_sampled(summary)
            return
        if kind == "health":
            hm = wire.read_health(body)
            name = hm.device.name
            if seq and seq <= self._seq.get(name, (0, 0))[0]:
                self.counters["skipped"] += 1
                return
            owner = self._accept(name, hm.site, hm.collector, wire.read_origin(body), hm.collected_at_ms)
            if owner is None:
                return
            self._set(name, hm.apply(self._bus.get(name)), seq, self._seq.get(name, (0, 0))[1], owner)
            return
        sm = wire.read_state(body)
        name = sm.device
        have, have_ss = self._seq.get(name, (0, 0))
        if seq and seq <= have:
            self.counters["skipped"] += 1
            return
        owner = self._accept(name, sm.site, sm.collector, wire.read_origin(body), sm.collected_at_ms)
        if owner is None:
            return
        base = self._bus.get(name)
        if not sm.full and (base is None or sm.prev_seq != have_ss):
            self.counters["gaps"] += 1
            base = await self._repair(name, sm.prev_seq, have_ss)
            if base is None:
                log.warning("%s: state message %d needs sequence %s, which is gone; waiting for the next full one",
                            safe(name), seq, sm.prev_seq)
                return
            self.counters["repaired"] += 1
        self._set(name, sm.apply(base), seq, seq, owner)

    async def _repair(self, name: str, want: int | None, have_ss: int) -> DeviceState | None:
        """The device's state as of state message ``want``, walked back from the stream to a full message
        (or to the one the viewer holds)."""
        chain: list[wire.StateMsg] = []
        at = want
        while at and len(chain) < MAX_CHAIN:
            if at == have_ss and name in self._bus:
                break
            try:
                raw = await self._js.get_msg(wire.STREAM, seq=at, direct=True)
                sm = wire.read_state(wire.loads(await self._whole(raw.data or b"", raw.headers)))
            except wire.WireError:
                return None
            except Exception:
                return None
            if sm.device != name:
                return None
            chain.append(sm)
            if sm.full:
                break
            at = sm.prev_seq
        else:
            if not chain or not chain[-1].full:
                return None
        base = None if chain and chain[-1].full else self._bus.get(name)
        for sm in reversed(chain):
            base = sm.apply(base)
        return base

    def _accept(self, name: str, site: str, collector: str, origin: tuple[str, int] | None,
                t_ms: int | None) -> str | None:
        """The collector process (``_owner`` key) of a message of device ``name`` when it is used, else None.  The first process heard
        publishing a device is kept; another is taken instead when it started after the kept one's newest
        message of the device (a restart, a re-shard) or the kept one has published nothing newer of it for
        ``silence_factor`` heartbeats.  Otherwise both publish it (overlapping inventories or shards): the
        other's messages are skipped (counted as ``duplicate``) and the pair is said once (log and an event)."""
        instance, started = origin if origin is not None else ("", 0)
        who = _process_key(site, collector, instance)
        now = t_ms if t_ms is not None else int(self.clock() * 1000)
        cur = self._from.get(name)
        if cur is not None and cur.who == who:
            cur.last_t = max(cur.last_t, now)
            return who
        label = collector_label(site, collector) + (f" ({instance})" if instance else "")
        c = self._collectors.get(cur.who) if cur is not None else None
        gone_ms = self.silence_factor * (c.every_s if c is not None else self.interval_s) * 1000
        if cur is None or started > cur.last_t or now - cur.last_t > gone_ms:
            self._from[name] = _From(who, label, now)
            return who
        self.counters["duplicate"] += 1
        pair = (cur.label, label)
        seen = self.overlaps.get(pair)
        if seen is None:
            seen = self.overlaps[pair] = set()
            text = (f"collectors {cur.label} and {label} both publish {name} (overlapping inventories or shards?): "
                    f"this viewer shows {cur.label}'s for the devices they share")
            log.warning("%s", safe(text))
            t = int(self.clock() * 1000)
            self.timeline.add([Event(t, name, EventKind.FINDING_RAISED, f"collectors-overlap {name}",
                                     f"warning collectors-overlap: {text}", after="warning")])
        seen.add(name)
        return None

    async def _whole(self, data: bytes, headers: dict | None) -> bytes:
        """A message's body: ``data``, after the pieces its headers name when it was split (those seen on the
        stream, else fetched by sequence); WireError when one is gone or is not a piece."""
        seqs = wire.part_seqs(headers)
        if seqs is None:
            return data
        pieces = []
        for at in seqs:
            piece = self._parts.pop(at, None)
            self._parts_bytes -= len(piece) if piece is not None else 0
            if piece is None:
                try:
                    raw = await self._js.get_msg(wire.STREAM, seq=at, direct=True)
                except Exception as exc:
                    raise wire.WireError(f"piece {at} of a split message is gone ({type(exc).__name__})") from None
                if not (raw.subject or "").endswith("." + wire.PART):
                    raise wire.WireError(f"piece {at} of a split message is not a piece")
                piece = raw.data or b""
            pieces.append(piece)
        return b"".join(pieces) + bytes(data)

    def _set(self, name: str, state: DeviceState, seq: int, ss: int, owner: str) -> None:
        self._bus[name] = state
        self._seq[name] = (seq, ss)
        self._owner[name] = owner
        self.counters["applied"] += 1
        c = self._collectors.get(owner)
        if c is not None and not c.silent:  # any message of a collector shows it alive, not only its heartbeat
            c.last_mono = max(c.last_mono, time.monotonic())
        snap = self.timeline.snapshot
        prev = snap.devices.get(name) if snap is not None else None
        self.timeline.update(self._watched(prev, self._shown(state, c)))

    def _shown(self, state: DeviceState, c: _Collector | None) -> DeviceState:
        """``state`` as the viewer shows it: unobserved while the bus is down or its collector silent."""
        if self._bus_down is not None:
            return _stale(state, self._bus_down, self._bus_down_ms)
        if c is not None and c.silent:
            return _stale(state, self._silent_reason(c), c.last_ms)
        return state

    @staticmethod
    def _watched(prev: DeviceState | None, state: DeviceState) -> DeviceState:
        """``state`` with its RIB/FIB watch carried from ``prev``, as the poller does."""
        if state.rib is not None or (prev is not None and prev.rib_watch is not None):
            return rib_watch(prev, state)
        return state

    def _heard(self, hb: wire.Heartbeat, *, arrived: bool) -> None:
        instance = hb.instance
        key = _process_key(hb.site, hb.collector, instance)
        now = time.monotonic()
        c = self._collectors.get(key)
        if arrived:
            mono = now
        else:  # from KV: as old as its own clock says (clocks in NTP sync)
            mono = now - max(0.0, (self.clock() * 1000 - hb.t_ms) / 1000)
        if c is None:
            c = self._collectors[key] = _Collector(hb.site, hb.collector, hb.every_s, mono, hb.t_ms, instance)
        elif mono >= c.last_mono:
            c.last_mono, c.last_ms, c.every_s = mono, hb.t_ms, hb.every_s
        self.interval_s = min(x.every_s for x in self._collectors.values())
        if hb.prefixes and not self._fixed_prefixes:
            have = self.timeline.anycast_prefixes if self._prefixes_set else ()
            merged = tuple(dict.fromkeys((*have, *hb.prefixes)))
            if merged != self.timeline.anycast_prefixes:
                self.timeline.anycast_prefixes = merged
            self._prefixes_set = True
        if arrived and c.silent:  # its devices are fresh again with their next messages
            c.silent = False
            log.info("collector %s heard again", safe(collector_label(c.site, c.name)))

    _prefixes_set = False
    _froze = False  # the catch-up froze its states out of the cyclic collector (until stop)

    # ------------------------------------------------------------------ faults

    def _silent_reason(self, c: _Collector) -> str:
        return f"collector {collector_label(c.site, c.name)} silent since {_clock_text(c.last_ms)}" + (
            f" ({c.instance})" if c.instance else "")

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self._bus_down is not None:
                continue
            now = time.monotonic()
            for key, c in self._collectors.items():
                if not c.silent and now - c.last_mono > self.silence_factor * c.every_s:
                    c.silent = True
                    n = sum(1 for o in self._owner.values() if o == key)
                    log.warning("%s: %d devices stale", safe(self._silent_reason(c)), n)
                    self._refresh(key)

    def _refresh(self, owner: str | None) -> None:
        """Show the devices of ``owner`` (every device: None) stale where the collector is silent or the bus
        is down (they are fresh again with their next messages)."""
        snap = self.timeline.snapshot
        for name, st in list(self._bus.items()):
            o = self._owner.get(name)
            if owner is not None and o != owner:
                continue
            shown = self._shown(st, self._collectors.get(o) if o is not None else None)
            prev = snap.devices.get(name) if snap is not None else None
            if prev is not None and prev.health == shown.health and prev.collected_at_ms == shown.collected_at_ms:
                continue
            self.timeline.update(self._watched(prev, shown))
            snap = self.timeline.snapshot

    async def _disconnected(self) -> None:
        if not self.running or self._bus_down is not None:
            return
        self.connected = False
        self._bus_down_ms = int(self.clock() * 1000)
        self._bus_down = f"NATS {self.options.shown()} disconnected since {_clock_text(self._bus_down_ms)}"
        log.warning("nats: disconnected from %s; every device stale until it is back", self.options.shown())
        self._refresh(None)

    async def _reconnected(self) -> None:
        self.connected = True
        self._bus_down = None
        now = time.monotonic()
        for c in self._collectors.values():  # silence is judged again from now
            c.last_mono = max(c.last_mono, now)
        log.info("nats: reconnected to %s; catching up from the stream", self.options.shown())
        if self._sub is not None and self.running:
            self._tasks.append(asyncio.create_task(self._resume()))

    async def _error(self, exc: Exception) -> None:
        text = str(exc).strip().splitlines()
        log.debug("nats: %s%s", type(exc).__name__, f": {text[0]}" if text else "")

    def _bad(self, where: str, exc: wire.WireError) -> None:
        newer = isinstance(exc, wire.NewerSchema)
        self.counters["newer" if newer else "bad"] += 1
        self._logged += 1
        n = self.counters["bad"] + self.counters["newer"]
        if self._logged <= LOG_LINES or n % 1000 == 0:
            log.warning("skipped %s: %s (%d skipped so far)", safe(where), exc, n)


async def _kv_entries(kv: Any) -> list[tuple[str, bytes]]:
    """Every key's newest value in the bucket, as (key, value).

    The watcher's "no more pending" marker (``None``) is not trusted alone: nats-py decides it from the
    consumer's pending count and the messages its callback has handled, so when the first entries are
    delivered before that check runs the marker comes *before* them (seen: a viewer joining a 10-device
    bucket read 0 devices, about one join in 30 on a loaded machine).  The end is the entry the server sent
    with nothing pending after it (``delta == 0``); the marker ends the read only when the bucket held no
    value when the watch began.  Deleted and purged keys are read (their markers carry ``delta`` too) and
    left out here."""
    from nats.js.kv import KV_DEL, KV_PURGE

    empty = (await kv.status()).values == 0
    out: dict[str, bytes] = {}
    watcher = await kv.watchall()
    try:
        while True:
            entry = await watcher.updates(timeout=30)
            if entry is None:
                if empty:
                    break
                continue
            if entry.operation in (KV_DEL, KV_PURGE):
                out.pop(entry.key, None)
            else:
                out[entry.key] = entry.value or b""
            if entry.delta == 0:
                break
    finally:
        await watcher.stop()
    return list(out.items())


def _stale(state: DeviceState, reason: str, since_ms: int) -> DeviceState:
    """``state`` as a viewer shows it while nobody can ask the device: STALE and ``unobserved`` with ``reason``
    (no failure event, no incident: ``model.events``).  A device already failing keeps its own health (its last
    known fact), one never collected stays as it is."""
    h = state.health
    if h.status is not HealthStatus.OK:
        return state
    return dataclasses.replace(state, health=Health(HealthStatus.STALE, since_ms=since_ms, error=reason,
                                                    last_ok_ms=h.last_ok_ms, unobserved=True))
