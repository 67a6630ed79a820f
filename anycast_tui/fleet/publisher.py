"""The collector's side: every device state a LiveSession's poller hands over goes to JetStream.

``Publisher.offer(state)`` is called for each poll of each device (the poller's ``on_state``); a task
publishes, one device at a time (those whose health changed first), what changed since that device's previous
message (``wire``): a state message when its content changed (a delta of the changed fields, a full one every
``keyframe_every``), else a small health message.  States are coalesced per device while the bus is slower
than the polls (memory is one pending state per device).  The KV bucket gets the device's full state on every
content or health change and at least every ``keyframe_every`` polls; the heartbeat (stream and KV) every
``every_s``.  Each device's fields are encoded once per change (kept with what was sent): a keyframe or KV put
of an unchanged table re-encodes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from typing import Any

from anycast_tui.fleet import wire
from anycast_tui.fleet.conn import Retention
from anycast_tui.model.types import DeviceState, HealthStatus

log = logging.getLogger("anycast_tui.collect")


@dataclasses.dataclass
class _Sent:
    state: DeviceState
    ss: int  # stream sequence of its newest state message
    s: int  # of its newest message
    since_full: int  # state messages since the last full one
    since_kv: int  # messages since the last KV put
    kv_health: tuple  # (status, error) at the last KV put
    enc: dict  # every field of ``state`` encoded (``wire.encode_fields``): keyframes and KV puts reuse them


@dataclasses.dataclass
class PublishStats:
    state_full: int = 0
    state_delta: int = 0
    health: int = 0
    heartbeats: int = 0
    kv_puts: int = 0
    bytes: int = 0
    failures: int = 0
    too_large: int = 0
    split: int = 0  # messages published in pieces (over the server's max_payload)
    kv_refs: int = 0  # KV entries naming the stream message instead (a state over max_payload)
    sampled: int = 0  # sampled-traffic summaries


async def ensure_stream(js: Any, retention: Retention) -> None:
    """The stream ``wire.STREAM`` over ``anycast.>`` and the KV bucket, created with ``retention`` when
    missing; an existing one is kept as it is (its limits are logged when they differ)."""
    from nats.js.api import DiscardPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    want = StreamConfig(name=wire.STREAM, subjects=[f"{wire.ROOT}.>"], max_age=retention.max_age_s,
                        max_bytes=retention.max_bytes, storage=StorageType.FILE, discard=DiscardPolicy.OLD,
                        num_replicas=retention.replicas, allow_direct=True)
    try:
        info = await js.stream_info(wire.STREAM)
        cfg = info.config
        if (cfg.max_bytes, round(cfg.max_age or 0)) != (want.max_bytes, round(want.max_age)):
            log.info("stream %s exists with max_age %gs, max_bytes %d: kept as it is", wire.STREAM,
                     cfg.max_age or 0, cfg.max_bytes or -1)
    except NotFoundError:
        await js.add_stream(want)
        log.info("stream %s created: max_age %gs, max_bytes %d", wire.STREAM, retention.max_age_s,
                 retention.max_bytes)
    try:
        await js.key_value(wire.KV_BUCKET)
    except Exception:  # BucketNotFoundError
        from nats.js.api import KeyValueConfig

        await js.create_key_value(KeyValueConfig(bucket=wire.KV_BUCKET, history=1, ttl=retention.max_age_s,
                                                 max_bytes=retention.kv_max_bytes, storage=StorageType.FILE,
                                                 replicas=retention.replicas))
        log.info("KV bucket %s created: ttl %gs, max_bytes %d", wire.KV_BUCKET, retention.max_age_s,
                 retention.kv_max_bytes)


class Publisher:
    def __init__(self, nc: Any, *, site: str, collector: str, prefixes: tuple[str, ...], every_s: float,
                 keyframe_every: int = 60, instance: str | None = None, ack_timeout_s: float = 5.0,
                 clock=time.time) -> None:  # noqa: ANN001
        self.nc = nc
        self.js = nc.jetstream()
        self.kv: Any = None
        self.site = site
        self.collector = collector
        self.prefixes = prefixes
        self.every_s = every_s
        self.keyframe_every = keyframe_every
        # how long a batch's pipelined health messages wait for their acks, together: nats-py's publish_async
        # future has no deadline of its own, and an ack lost with a server (a cluster node killed after the
        # message left) would hold the publisher forever
        self.ack_timeout_s = ack_timeout_s
        self.clock = clock
        self.stats = PublishStats()
        self.devices: dict[str, DeviceState] = {}  # newest state per device (for the heartbeat's counts)
        self._pending: dict[str, DeviceState] = {}
        self._wake = asyncio.Event()
        self._sent: dict[str, _Sent] = {}
        self._started_ms = int(clock() * 1000)
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self._origin = wire.origin(self.instance, self._started_ms)
        self._tasks: list[asyncio.Task] = []
        self._failing = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.kv = await self.js.key_value(wire.KV_BUCKET)
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._beat())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    def offer(self, state: DeviceState) -> None:
        """A device's newest state (the poller's ``on_state``): published soon, coalesced per device."""
        self._pending[state.device.name] = state
        self.devices[state.device.name] = state
        self._wake.set()

    def offer_sampled(self, summary: dict) -> None:
        """The flow-export collector's summary (``FlowExport.on_record``; called from its check thread too):
        published soon, only the newest while one is in flight."""
        self._loop.call_soon_threadsafe(self._sampled_soon, summary)

    def _sampled_soon(self, summary: dict) -> None:
        first = self._sampled is None
        self._sampled = summary
        if first:
            self._tasks = [t for t in self._tasks if not t.done()]
            self._tasks.append(asyncio.create_task(self._publish_sampled()))

    _sampled: dict | None = None

    async def _publish_sampled(self) -> None:
        while self._sampled is not None:
            summary = self._sampled
            body = wire.sampled_body(self.site, self.collector, int(self.clock() * 1000), summary) | self._origin
            try:
                await self._send(wire.sampled_subject(self.site), body)
                self.stats.sampled += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("nats: sampled traffic not published (%s)", _why(exc))
            if self._sampled is summary:
                self._sampled = None

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything offered so far is published (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._pending or self._busy or self._sampled is not None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    _busy = False

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = sorted(self._pending.items(), key=self._later)
                self._pending.clear()
                self._busy = True
                acks: list[tuple[str, DeviceState, Any, bool]] = []  # health messages in flight
                try:
                    for name, state in batch:
                        try:
                            await self._publish(state, acks)
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:
                            await self._failed(name, state, exc)
                    deadline = time.monotonic() + self.ack_timeout_s
                    lost = False
                    for name, state, fut, put in acks:
                        try:
                            ack = await asyncio.wait_for(fut, max(0.0, deadline - time.monotonic()))
                            await self._acked(name, ack.seq, put)
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:  # at the deadline: TimeoutError (the future is cancelled)
                            lost = True
                            if isinstance(exc, TimeoutError) and not str(exc):
                                exc = TimeoutError(f"no ack within {self.ack_timeout_s:g} s")
                            await self._failed(name, state, exc, pause=False)
                    if lost:
                        await asyncio.sleep(0.5)
                    if self._failing and not any(n in self._pending for n, _ in batch):
                        self._failing = False
                        log.info("nats: publishing again")
                finally:
                    self._busy = False

    def _later(self, item: tuple[str, DeviceState]) -> bool:
        """Sort key of a batch: devices whose health changed first (a device going down or coming back is what a
        viewer shows at once), the rest in the order offered.  A poll touching a spine and the leaf that failed
        offers both; the spine's state message (tens of thousands of routes: compressed, acknowledged, its KV
        put) no longer holds back the leaf's health message."""
        name, state = item
        prev = self._sent.get(name)
        return prev is not None and (prev.state.health.status, prev.state.health.error) == \
            (state.health.status, state.health.error)

    async def _failed(self, name: str, state: DeviceState, exc: BaseException, *, pause: bool = True) -> None:
        self.stats.failures += 1
        self._sent.pop(name, None)  # unknown whether it was stored: the next message is full
        self._pending.setdefault(name, state)
        if not self._failing:
            self._failing = True
            log.warning("nats: publish failed (%s); retrying, states coalesced per device meanwhile", _why(exc))
        if pause:
            await asyncio.sleep(0.5)

    async def _send(self, subject: str, body: dict) -> int:
        """Publish ``body``; one over the server's max_payload (after compression) goes in pieces (``wire.split``):
        the earlier ones on the device's ``.part`` subject, the last on ``subject`` naming their sequences."""
        data = wire.dumps(body)
        pieces = wire.split(data, self.nc.max_payload)
        if pieces is None:
            self.stats.too_large += 1
            raise _TooLarge(f"{len(data)} bytes compressed, more than {wire.MAX_PARTS} pieces of the server's "
                            f"max_payload {self.nc.max_payload}")
        headers = None
        if len(pieces) > 1:
            seqs = []
            for piece in pieces[:-1]:
                seqs.append((await self.js.publish(wire.part_subject(subject), piece, stream=wire.STREAM)).seq)
            headers = {wire.PARTS_HEADER: ",".join(map(str, seqs))}
            self.stats.split += 1
        ack = await self.js.publish(subject, pieces[-1], stream=wire.STREAM, headers=headers)
        self.stats.bytes += len(data)
        return ack.seq

    async def _publish(self, state: DeviceState, acks: list) -> None:
        """One device's message: a state message is awaited (the next delta names its sequence); a health
        message is pipelined (``acks``: its KV put, when due, waits for its ack in ``_acked``)."""
        name = state.device.name
        prev = self._sent.get(name)
        fields = wire.changed_fields(prev.state if prev is not None else None, state)
        health_key = (state.health.status, state.health.error)
        if fields:
            full = prev is None or prev.since_full + 1 >= self.keyframe_every or len(fields) == len(wire.FIELDS)
            enc = prev.enc | wire.encode_fields(state, fields) if prev is not None else \
                wire.encode_fields(state, wire.FIELDS)
            body = wire.state_body(self.site, self.collector, state, fields, full=full,
                                   prev_seq=None if prev is None else prev.ss, encoded=enc) | self._origin
            try:
                seq = await self._send(wire.state_subject(self.site, name), body)
            except _TooLarge as exc:
                log.warning("%s: state not published: %s", name, exc)
                return
            if full:
                self.stats.state_full += 1
            else:
                self.stats.state_delta += 1
            sent = _Sent(state, seq, seq, 0 if full else prev.since_full + 1,  # type: ignore[union-attr]
                         prev.since_kv + 1 if prev is not None else 1, prev.kv_health if prev is not None else (), enc)
            put = True
        else:
            assert prev is not None
            data = wire.dumps(wire.health_body(self.site, self.collector, state) | self._origin)
            fut = await self.js.publish_async(wire.health_subject(self.site, name), data, stream=wire.STREAM)
            self.stats.health += 1
            self.stats.bytes += len(data)
            sent = _Sent(state, prev.ss, prev.s, prev.since_full, prev.since_kv + 1, prev.kv_health, prev.enc)
            self._sent[name] = sent
            acks.append((name, state, fut, health_key != prev.kv_health or sent.since_kv >= self.keyframe_every))
            return
        self._sent[name] = sent
        if put:
            await self._put(name, sent)

    async def _acked(self, name: str, seq: int, put: bool) -> None:
        sent = self._sent.get(name)
        if sent is None:
            return
        sent.s = max(sent.s, seq)
        if put:
            await self._put(name, sent)

    async def _put(self, name: str, sent: _Sent) -> None:
        """The device's full state into KV, with the sequences it reflects."""
        kv_body = wire.state_body(self.site, self.collector, sent.state, wire.FIELDS, full=True, prev_seq=None,
                                  encoded=sent.enc)
        kv_body["s"], kv_body["ss"] = sent.s, sent.ss
        data = wire.dumps(kv_body | self._origin)
        if len(data) > self.nc.max_payload:  # too large for one value: the viewers read it from the stream
            data = wire.dumps(wire.ref_body(self.site, self.collector, sent.state, sent.s, sent.ss) | self._origin)
            self.stats.kv_refs += 1
        await self.kv.put(wire.device_key(self.site, name), data)
        self.stats.kv_puts += 1
        sent.since_kv, sent.kv_health = 0, (sent.state.health.status, sent.state.health.error)

    async def _beat(self) -> None:
        while True:
            now_ms = int(self.clock() * 1000)
            ok = sum(1 for s in self.devices.values() if s.health.status is HealthStatus.OK)
            body = wire.heartbeat_body(self.site, self.collector, t_ms=now_ms, every_s=self.every_s,
                                       devices=len(self.devices), ok=ok, prefixes=self.prefixes,
                                       started_ms=self._started_ms) | self._origin
            try:
                await self.js.publish(wire.heartbeat_subject(self.site), wire.dumps(body), stream=wire.STREAM)
                await self.kv.put(wire.collector_key(self.site, self.collector), wire.dumps(body))
                self.stats.heartbeats += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._failing:
                    log.warning("nats: heartbeat failed (%s)", _why(exc))
            await asyncio.sleep(self.every_s)


class _TooLarge(Exception):
    pass


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
